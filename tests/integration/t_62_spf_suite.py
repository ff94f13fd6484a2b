"""t_62_spf_suite — `clearmta auth spf` against the public RFC 7208 test suite (the openspf.org
suite, ../shared/spf/rfc7208-tests.yml, read in place, never copied): each scenario's zone
data is served by tests/dns_test_server.py on loopback (type SPF records served as TXT only
where a name has no TXT record, as the suite's drivers do; TIMEOUT names never answer), each
case runs the binary with --json, and its result (and explanation, where the case gives one)
must be one the suite accepts. KNOWN_FAILURES lists the cases that do not pass yet."""
import json
import os
import subprocess
import sys
import unittest
from concurrent.futures import ThreadPoolExecutor

from authdns import TestDNS, debian_module
from harness import BIN, REPO

yaml = debian_module("yaml")

def find_suite():
    """$CLEARMTA_SPF_SUITE, else ../shared/spf/ beside the repository (or beside the directory
    of worktrees that holds it)."""
    if os.environ.get("CLEARMTA_SPF_SUITE"):
        return os.environ["CLEARMTA_SPF_SUITE"]
    for up in ("..", os.path.join("..", "..")):
        path = os.path.normpath(os.path.join(REPO, up, "shared", "spf", "rfc7208-tests.yml"))
        if os.path.exists(path):
            return path
    return os.path.join(REPO, "..", "shared", "spf", "rfc7208-tests.yml")


SUITE = find_suite()

# Cases that fail today, by "scenario/case"; the test fails when one of them starts to pass
# (take it off the list) or another one fails.
KNOWN_FAILURES = set()


def zone_for(zonedata):
    """The suite's zone data in dns_test_server.py's form."""
    zone = {}
    for name, records in (zonedata or {}).items():
        has_txt = any(isinstance(r, dict) and "TXT" in r for r in records)
        out = []
        for r in records:
            if not isinstance(r, dict):
                out.append(r)  # TIMEOUT
                continue
            for rtype, value in r.items():
                if rtype == "SPF":
                    if not has_txt:
                        out.append({"TXT": value})
                elif rtype == "TXT" and value == "NONE":
                    pass  # the suite's way to say: no TXT here (with TIMEOUT: TXT times out)
                else:
                    out.append({rtype: value})
        zone[name] = out
    return zone


def run_case(resolver, case):
    args = [BIN, "auth", "spf", "--json", "--resolver", resolver,
            "--ip", str(case["host"]), "--helo", str(case.get("helo", "")),
            "--mail-from", str(case.get("mailfrom", ""))]
    out = subprocess.run(args, capture_output=True, timeout=60)
    try:
        return json.loads(out.stdout)
    except ValueError:
        return {"result": "crash rc=%d %s" % (out.returncode, out.stderr[-300:]),
                "explanation": ""}


@unittest.skipIf(yaml is None, "python3-yaml is not installed")
@unittest.skipIf(not os.path.exists(SUITE), "the RFC 7208 test suite is not at %s" % SUITE)
class Suite(unittest.TestCase):
    def test_rfc7208_suite(self):
        with open(SUITE, encoding="utf-8") as f:
            scenarios = list(yaml.safe_load_all(f))
        passed, failed = [], []
        for sc in scenarios:
            dns = TestDNS(zone_for(sc.get("zonedata")))
            try:
                cases = sorted(sc["tests"].items())
                with ThreadPoolExecutor(max_workers=8) as pool:
                    got = list(pool.map(lambda c: run_case(dns.resolver, c[1]), cases))
            finally:
                dns.stop()
            for (name, case), answer in zip(cases, got):
                key = "%s/%s" % (sc["description"], name)
                want = case["result"] if isinstance(case["result"], list) else [case["result"]]
                ok = answer.get("result") in want
                if ok and "explanation" in case and answer.get("result") == "fail":
                    # "DEFAULT" stands for the implementation's default text; ours is "".
                    want_exp = case["explanation"]
                    ok = answer.get("explanation") == ("" if want_exp == "DEFAULT" else want_exp)
                (passed if ok else failed).append(
                    key if ok else "%s: got %s %r, want %s %r" % (
                        key, answer.get("result"), answer.get("explanation"), want,
                        case.get("explanation")))
        total = len(passed) + len(failed)
        sys.stderr.write("\nRFC 7208 suite: %d of %d cases pass\n" % (len(passed), total))
        for f in failed:
            sys.stderr.write("  FAIL %s\n" % f)
        names = {f.split(": got")[0] for f in failed}
        self.assertEqual(sorted(names - KNOWN_FAILURES), [], "new failures")
        self.assertEqual(sorted(KNOWN_FAILURES - names), [], "now passing: off the list")


if __name__ == "__main__":
    unittest.main()
