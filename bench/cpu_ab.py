"""bench/cpu_ab.py A_BIN B_BIN [--size OCTETS] [--msgs N] [--per-conn] [--rounds N] — two
clearmta builds side by side on one load, run in turn A B A B ... (a fresh server each run,
bench.py's load and accounting): server CPU per message, delivered and accepted messages per
second, medians of the rounds and the ratio A/B. For the before/after figures of a change on a
machine whose speed drifts (other work shares it): only the pairing makes them comparable."""
import argparse
import os
import shutil
import statistics

import bench


def one_run(binary, size, msgs, per_session):
    os.environ["CLEARMTA_BIN"] = binary  # tests/contract-server.sh starts this build
    server = bench.Clearmta()
    server.start()
    try:
        return bench.run_load(server, size, msgs, per_session)
    finally:
        server.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a_bin")
    ap.add_argument("b_bin")
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--msgs", type=int, default=10000)
    ap.add_argument("--per-conn", action="store_true", help="one message per connection")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    runs = {"A": [], "B": []}
    try:
        for r in range(args.rounds):
            for name, binary in (("A", args.a_bin), ("B", args.b_bin)):
                res = one_run(os.path.abspath(binary), args.size, args.msgs, not args.per_conn)
                runs[name].append(res)
                bench.log(f"{name} round {r + 1}: {res['cpu_per_1000']:.3f} s CPU per 1000 msgs, "
                          f"{res['rate']:.0f} delivered/s, {res['accept_rate']:.0f} accepted/s")
    finally:
        shutil.rmtree(os.path.join(bench.WORK, "data"), ignore_errors=True)
    load = "one per connection" if args.per_conn else "many per session"
    print(f"{args.msgs} messages of {args.size} octets, 20 sessions, {load}; "
          f"median of {args.rounds} rounds (A/B)")
    for key, what, digits in (("cpu_per_1000", "server CPU s per 1000 msgs", 3),
                              ("rate", "delivered msgs/s", 0), ("accept_rate", "accepted msgs/s", 0)):
        a = statistics.median(x[key] for x in runs["A"])
        b = statistics.median(x[key] for x in runs["B"])
        print(f"  {what}: A {a:.{digits}f}  B {b:.{digits}f}  "
              f"A/B {a / b if b else float('nan'):.2f}")


if __name__ == "__main__":
    main()
