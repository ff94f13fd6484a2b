"""bench/submission.py — STARTTLS + AUTH submissions per second, one message per connection,
clearmta beside a private Postfix (TLS with the same certificate, Cyrus SASL with a private
sasldb), and the load generator against a trivial TLS sink as the ceiling of this machine.
The load is bench/submit_load.c (built here): WORKERS processes, each connecting, EHLO,
STARTTLS (a full handshake: no session offered), EHLO, AUTH PLAIN, MAIL, RCPT, DATA (2 KB),
QUIT, one connection after another. Rounds alternate the three servers; medians are reported.
Run as root through bench/run.sh (Postfix's master must start as root).
Usage: submission.py [--append FILE]. Knobs: BENCH_SUB_ROUNDS (3), BENCH_SUB_WORKERS (20),
BENCH_SUB_SECONDS (10), BENCH_SERVERS (default "clearmta postfix"), BENCH_SUB_BASELINE (the path
of another clearmta binary, measured in the same rounds as "clearmta (baseline)")."""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys

import bench
import procs

HERE, ROOT, WORK = bench.HERE, bench.ROOT, bench.WORK
ROUNDS = bench.env_int("BENCH_SUB_ROUNDS", 3)
WORKERS = bench.env_int("BENCH_SUB_WORKERS", 20)
SECONDS = bench.env_int("BENCH_SUB_SECONDS", 10)
USERS = (("alice", "alice-secret"), ("bob", "bob-secret"))  # the test contract's
RCPT = "bob@example.test"
TARGET = 3.0  # issue 16: at least 3× Postfix
CERT_KIND = "EC P-256 (prime256v1), self-signed, chain of one certificate"


def make_certificate(tls_dir):
    """One key and certificate for every server of the run (the same type and size)."""
    os.makedirs(tls_dir, exist_ok=True)
    cert, key = os.path.join(tls_dir, "cert.pem"), os.path.join(tls_dir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "30", "-subj", "/CN=mx.example.test"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    os.chmod(key, 0o644)  # Postfix's smtpd reads it as root, the sink as any user
    return cert, key


def build_load():
    binary = os.path.join(WORK, "submit_load")
    subprocess.run(["gcc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-o", binary,
                    os.path.join(HERE, "submit_load.c"), "-lssl", "-lcrypto", "-lpthread"],
                   check=True, timeout=120)
    return binary


class Clearmta(bench.Clearmta):
    """The test contract's clearmta; its submission port speaks STARTTLS then AUTH."""

    def __init__(self, cert, key, binary=os.path.join(ROOT, "build", "clearmta"),
                 name="clearmta"):
        super().__init__()
        self.sub_port = bench.free_port()
        self.cert, self.key = cert, key
        self.binary, self.name = binary, name

    def start(self):
        """The settings of tests/contract-server.sh, with the per-address handshake limit off:
        every client of the benchmark is 127.0.0.1 (Postfix's per-client limits are off too)."""
        self.dir = bench.fresh_dir("clearmta.sub", self)
        tls = os.path.join(self.dir, "tls")
        os.makedirs(tls, mode=0o700)
        shutil.copy(self.cert, os.path.join(tls, "cert.pem"))
        shutil.copy(self.key, os.path.join(tls, "key.pem"))
        users = os.path.join(self.dir, "users")
        with open(users, "w") as f:
            for user, password in USERS:
                hashed = subprocess.run(["openssl", "passwd", "-6", password], check=True,
                                        capture_output=True, text=True, timeout=30).stdout
                f.write(f"{user}:{hashed.strip()}\n")
        conf = os.path.join(self.dir, "clearmta.conf")
        with open(conf, "w") as f:
            f.write(f"hostname mx.example.test\nlisten mx 127.0.0.1:{self.port}\n"
                    f"listen submission 127.0.0.1:{self.sub_port}\ndata_dir {self.dir}\n"
                    f"maildir_root {self.dir}/maildir\n"
                    "domain example.test users alice bob postmaster\n"
                    f"users_file {users}\ntls_handshakes_per_second 0\n"
                    + ("user root\n" if os.geteuid() == 0 else ""))
        self.logf = open(os.path.join(WORK, "clearmta.log"), "ab")
        self.proc = subprocess.Popen([self.binary, "serve", "-c", conf], stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        with open(os.path.join(WORK, "clearmta.pid"), "w") as f:
            f.write(f"{self.proc.pid}\n")
        if not bench.wait_banner(self.sub_port):
            self.stop()
            raise RuntimeError("clearmta did not start (see build/bench/clearmta.log)")


class Postfix(bench.Postfix):
    """bench/postfix.sh's instance with STARTTLS (the run's certificate) and SASL: Cyrus with
    a private smtpd.conf (auxprop, sasldb) and sasldb holding alice and bob."""

    def __init__(self, cert, key):
        super().__init__()
        self.sub_port = self.port
        self.cert, self.key = cert, key

    def start(self):
        self.dir = bench.fresh_dir("postfix.sub", self)
        self._script("setup", self.dir, str(self.port))
        etc = os.path.join(self.dir, "etc")
        sasl = os.path.join(etc, "sasl")
        os.makedirs(sasl)
        sasldb = os.path.join(sasl, "sasldb2")
        with open(os.path.join(sasl, "smtpd.conf"), "w") as f:
            f.write(f"pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: {sasldb}\n"
                    "mech_list: PLAIN LOGIN\n")
        for user, password in USERS:
            subprocess.run(["saslpasswd2", "-p", "-c", "-f", sasldb, "-u", "example.test", user],
                           input=password.encode(), check=True, timeout=30)
        shutil.chown(sasldb, "postfix", "postfix")
        with open(os.path.join(etc, "main.cf"), "a") as f:
            f.write(f"""# STARTTLS + AUTH for bench/submission.py
smtpd_tls_cert_file = {self.cert}
smtpd_tls_key_file = {self.key}
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = {sasl}
smtpd_sasl_local_domain = example.test
""")
        subprocess.run(["postconf", "-c", etc, "-e", "smtpd_relay_restrictions = "
                        "permit_sasl_authenticated, permit_mynetworks, reject_unauth_destination"],
                       check=True, timeout=30)
        self._script("start", self.dir)
        if not bench.wait_banner(self.port):
            self.stop()
            raise RuntimeError(f"Postfix did not start (see {self.dir}/maillog)")


class TlsSink:
    """submit_load's own sink: fixed replies after a real handshake; the client's ceiling."""
    name = "TLS sink"

    def __init__(self, binary, cert, key):
        self.binary, self.cert, self.key = binary, cert, key
        self.sub_port = bench.free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([self.binary, "sink", str(self.sub_port), self.cert,
                                      self.key])
        if not bench.wait_banner(self.sub_port):
            self.stop()
            raise RuntimeError("the TLS sink did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def root_pid(self):
        return self.proc.pid


def load(binary, server):
    """(submissions per second, failures, server CPU seconds per 1000 submissions)."""
    user, password = USERS[0]
    cpu0 = procs.cpu_seconds(server.root_pid())
    out = subprocess.run([binary, "client", str(server.sub_port), str(WORKERS), str(SECONDS),
                          user, password, RCPT], capture_output=True, text=True, check=True,
                         timeout=SECONDS + 120).stdout.split()
    cpu = procs.cpu_seconds(server.root_pid()) - cpu0
    sessions, failures, took = int(out[1]), int(out[3]), float(out[5])
    return sessions / took, failures, 1000 * cpu / max(sessions, 1)


def measure(binary, servers):
    figures = {s.name: {"rate": [], "failures": 0, "cpu": []} for s in servers}
    for r in range(ROUNDS):
        for s in servers:
            s.start()
            try:
                rate, failures, cpu = load(binary, s)
            finally:
                s.stop()
            bench.log(f"submission round {r + 1}: {s.name}: {rate:.0f}/s, {failures} failed, "
                      f"{cpu:.2f} CPU s / 1000")
            figures[s.name]["rate"].append(rate)
            figures[s.name]["failures"] += failures
            figures[s.name]["cpu"].append(cpu)
    return figures


def cell(values, fmt):
    med = statistics.median(values)
    if len(values) > 1 and min(values) != max(values):
        return f"{fmt(med)} ({fmt(min(values))}–{fmt(max(values))})"
    return fmt(med)


def render(figures):
    names = list(figures)
    out = ["", "## Submission: STARTTLS + AUTH, one message per connection", "",
           f"`bench/submission.py`: {WORKERS} client processes (`bench/submit_load.c`) for "
           f"{SECONDS} s per round, {ROUNDS} rounds alternating the servers; each connection "
           "EHLO, STARTTLS (full handshake), EHLO, AUTH PLAIN, MAIL, RCPT, DATA (2 KB), QUIT. "
           f"Certificate for every server: {CERT_KIND}. Postfix: Cyrus SASL, sasldb (plain "
           "secrets); clearmta: the contract's users file (SHA-512-crypt). The TLS sink answers "
           "with fixed replies after a real handshake: the ceiling of client and machine. "
           "The client leaves Nagle on, as mail clients do. Median (min–max).", "",
           "| figure | " + " | ".join(names) + " | clearmta / Postfix | target |",
           "|---|" + "---|" * (len(names) + 2)]
    pf, cm = figures.get("Postfix"), figures.get("clearmta")
    ratio = statistics.median(cm["rate"]) / statistics.median(pf["rate"]) if pf and cm else None
    verdict = "—" if ratio is None else ("✅" if ratio >= TARGET else "❌")
    out.append("| submissions/s | " + " | ".join(
        cell(figures[n]["rate"], lambda x: f"{x:.0f}") for n in names) + " | "
        + ("—" if ratio is None else f"{ratio:.2f}") + f" | ≥ {TARGET:g}× {verdict} |")
    cpu_ratio = (statistics.median(pf["cpu"]) / statistics.median(cm["cpu"])
                 if pf and cm and statistics.median(cm["cpu"]) > 0 else None)
    out.append("| server CPU s / 1000 submissions | " + " | ".join(
        cell(figures[n]["cpu"], lambda x: f"{x:.2f}") for n in names) + " | "
        + ("—" if cpu_ratio is None else f"{cpu_ratio:.1f}× less CPU") + " | |")
    out.append("| failed sessions (all rounds) | " + " | ".join(
        str(figures[n]["failures"]) for n in names) + " | | |")
    return "\n".join(out) + "\n"


def publish(text, append_to):
    print(text)
    if append_to:
        with open(append_to, "a") as out:
            out.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--append", metavar="FILE", help="add the section to this Markdown file")
    args = ap.parse_args()
    for tool in ("gcc", "openssl", "saslpasswd2"):
        if not shutil.which(tool):
            sys.exit(f"submission: {tool} missing (scripts/deps.sh bench installs it)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("submission: terminated"))
    os.makedirs(WORK, exist_ok=True)
    binary = build_load()
    cert, key = make_certificate(os.path.join(WORK, "submission-tls"))
    wanted = os.environ.get("BENCH_SERVERS", "clearmta postfix").split()
    servers = [cls(cert, key) for name, cls in (("clearmta", Clearmta), ("postfix", Postfix))
               if name in wanted]
    baseline = os.environ.get("BENCH_SUB_BASELINE")
    if baseline:
        servers.insert(1, Clearmta(cert, key, os.path.abspath(baseline), "clearmta (baseline)"))
    servers.append(TlsSink(binary, cert, key))
    try:
        figures = measure(binary, servers)
    finally:
        for s in servers:
            s.stop()
    publish(render(figures), args.append)


if __name__ == "__main__":
    main()
