#!/usr/bin/python3
"""Reloads under load: zones added, a broken config refused, a zone removed, while
dnsperf keeps querying tandemd on loopback.

    /usr/bin/python3 tests/integration/test_reload.py \
        --tandemd build/tandemd --tandemctl build/tandemctl

(a) Under a steady dnsperf load on zone a.test, the config gains b.test (reloaded with
    SIGHUP) and then c.test (reloaded with `tandemctl reload`): both are then answered
    (AA, the right address) and dnsperf loses no query.
(b) A config with a syntax error on a known line: `tandemctl reload` exits 1 naming
    FILE:LINE, SIGHUP changes nothing either, a.test keeps being answered (dnsperf again
    loses nothing).
(c) c.test removed from the config and reloaded: it is REFUSED, the others still answer.

Exit status: 0 when every check passes, 1 when one fails, 2 when the test could not run.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.flags     # noqa: E402
import dns.rcode     # noqa: E402
import dns.rdatatype  # noqa: E402

import procs  # noqa: E402
from procs import Failure, expect  # noqa: E402

QUERIES = ["app.a.test A", "a.test SOA", "www.a.test A", "a.test NS", "missing.a.test A"]
ADDRESSES = {"a.test": "192.0.2.10", "b.test": "198.51.100.20", "c.test": "203.0.113.30"}


class Env:
    def __init__(self, args, workdir):
        self.args = args
        self.workdir = workdir
        self.socket = os.path.join(workdir, "control.sock")
        self.server = None
        self.zone_files = {}
        for zone, address in ADDRESSES.items():
            path = os.path.join(workdir, zone + ".zone")
            procs.write_zone(path, zone, 1, extra=["app IN A %s" % address])
            self.zone_files[zone] = path

    def config_text(self, zones, port=None):
        port = port if port is not None else self.server.port
        return procs.tandem_config_zones(port, [(z, self.zone_files[z]) for z in zones], self.socket)

    def write_config(self, text):
        tmp = self.server.config + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.server.config)

    def start(self):
        self.server = procs.start_tandemd_with(self.args.tandemd, self.workdir, "a.test",
                                               lambda port: self.config_text(["a.test"], port))

    def ctl(self, *args):
        return procs.run_tandemctl(self.args.tandemctl, self.socket, *args)

    def ask(self, zone, timeout=1.0):
        return procs.udp_query(self.server.addr, "app." + zone, dns.rdatatype.A, timeout=timeout)


def answers(reply, zone):
    """True when reply is an authoritative NOERROR with the zone's address for app.ZONE."""
    if reply.rcode() != dns.rcode.NOERROR or not reply.flags & dns.flags.AA:
        return False
    return [rr.address for rrset in reply.answer for rr in rrset] == [ADDRESSES[zone]]


def wait_for(env, zone, want_refused=False, timeout=5.0):
    """Polls app.ZONE until it is answered (or REFUSED); returns the last reply."""
    deadline = time.monotonic() + timeout
    reply = None
    while time.monotonic() < deadline:
        try:
            reply = env.ask(zone, timeout=0.5)
            if (reply.rcode() == dns.rcode.REFUSED) if want_refused else answers(reply, zone):
                return reply
        except Exception:  # noqa: BLE001 - retried until the deadline
            pass
        time.sleep(0.1)
    return reply


class Load:
    """dnsperf against a.test for `seconds` at `qps`, bounded in time and count."""

    def __init__(self, env, seconds, qps, name):
        self.env = env
        self.seconds = seconds
        self.qps = qps
        self.out_path = os.path.join(env.workdir, "%s.out" % name)
        self.query_file = os.path.join(env.workdir, "queries.txt")
        with open(self.query_file, "w") as f:
            f.write("\n".join(QUERIES) + "\n")
        self.proc = None

    def __enter__(self):
        argv = ["dnsperf", "-s", procs.LOOPBACK, "-p", str(self.env.server.port), "-d", self.query_file,
                "-l", str(self.seconds), "-Q", str(self.qps),
                "-n", str(self.seconds * self.qps // len(QUERIES) + 1),  # passes over the file
                "-t", "2", "-c", "4"]
        with open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        time.sleep(1.0)  # let the load settle before reloading
        return self

    def __exit__(self, *exc):
        procs.stop_process(self.proc)
        return False

    def result(self):
        """Waits for dnsperf to finish; returns (sent, lost, output)."""
        try:
            self.proc.wait(timeout=self.seconds + 15)
        except subprocess.TimeoutExpired:
            procs.stop_process(self.proc)
            raise Failure("dnsperf did not finish within %d s" % (self.seconds + 15))
        with open(self.out_path) as f:
            text = f.read()
        sent = re.search(r"Queries sent:\s+(\d+)", text)
        lost = re.search(r"Queries lost:\s+(\d+)", text)
        expect(self.proc.returncode == 0 and sent and lost, "dnsperf failed (exit %s)" % self.proc.returncode, text)
        return int(sent.group(1)), int(lost.group(1)), text


def check_reload_under_load(env, log):
    with Load(env, seconds=8, qps=2000, name="dnsperf-add") as load:
        env.write_config(env.config_text(["a.test", "b.test"]))
        os.kill(env.server.proc.pid, signal.SIGHUP)
        reply = wait_for(env, "b.test")
        expect(reply is not None and answers(reply, "b.test"), "b.test not answered after SIGHUP", reply,
               env.server.stderr_text())
        env.write_config(env.config_text(["a.test", "b.test", "c.test"]))
        r = env.ctl("reload")
        expect(r.returncode == 0, "tandemctl reload: exit %d" % r.returncode, r.stderr)
        reply = env.ask("c.test")
        expect(answers(reply, "c.test"), "c.test not answered after tandemctl reload", reply)
        expect(answers(env.ask("b.test"), "b.test"), "b.test no longer answered")
        expect(load.proc.poll() is None, "dnsperf had finished before the reloads were done")
        sent, lost, text = load.result()
    log("      dnsperf during the reloads: %d queries sent, %d lost" % (sent, lost))
    expect(sent >= 8000 and lost == 0, "dnsperf: %d sent, %d lost" % (sent, lost), text)
    r = env.ctl("zones")
    for zone in ("a.test.", "b.test.", "c.test."):
        expect(zone in r.stdout, "zones does not list %s" % zone, r.stdout)


def check_invalid_config(env, log):
    good = env.config_text(["a.test", "b.test", "c.test"])
    lines = good.splitlines()
    expect(lines[2].startswith("listen"), "config layout changed", good)
    lines[3] = "workers = = 1"   # line 4: a TOML syntax error
    with Load(env, seconds=4, qps=2000, name="dnsperf-invalid") as load:
        env.write_config("\n".join(lines) + "\n")
        r = env.ctl("reload")
        where = "%s:4" % env.server.config
        expect(r.returncode == 1 and where in r.stderr,
               "reload of a broken config: exit %d, want 1 and %s" % (r.returncode, where), r.stderr)
        os.kill(env.server.proc.pid, signal.SIGHUP)
        time.sleep(0.5)
        expect(env.server.alive(), "tandemd exited after SIGHUP with a broken config", env.server.stderr_text())
        for zone in ("a.test", "b.test", "c.test"):
            expect(answers(env.ask(zone), zone), "%s not answered after a failed reload" % zone)
        expect(load.proc.poll() is None, "dnsperf had finished before the reloads were done")
        sent, lost, text = load.result()
    log("      dnsperf during the failed reloads: %d queries sent, %d lost" % (sent, lost))
    expect(sent >= 4000 and lost == 0, "dnsperf: %d sent, %d lost" % (sent, lost), text)
    expect(where in env.server.stderr_text(), "the SIGHUP reload error is not logged with %s" % where)
    env.write_config(good)


def check_remove_zone(env, log):
    env.write_config(env.config_text(["a.test", "b.test"]))
    r = env.ctl("reload")
    expect(r.returncode == 0, "reload without c.test: exit %d" % r.returncode, r.stderr)
    reply = wait_for(env, "c.test", want_refused=True)
    expect(reply is not None and reply.rcode() == dns.rcode.REFUSED, "c.test is not REFUSED after removal", reply)
    for zone in ("a.test", "b.test"):
        expect(answers(env.ask(zone), zone), "%s not answered after removing c.test" % zone)
    r = env.ctl("zones")
    expect("c.test." not in r.stdout and "b.test." in r.stdout, "zones still lists c.test", r.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tandemd", required=True)
    ap.add_argument("--tandemctl", required=True)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    procs.stop_on_sigterm()
    if shutil.which("dnsperf") is None:
        print("dnsperf is not installed (apt-get install dnsperf)")
        return 2

    def log(msg):
        print(msg, flush=True)

    failed = 0
    env = None
    with procs.TempDir(prefix="tandem-reload-", keep=args.keep) as workdir:
        try:
            env = Env(args, workdir)
            env.start()
            for name, check in (("(a) zones added under load, SIGHUP and tandemctl reload", check_reload_under_load),
                                ("(b) an invalid config leaves serving unchanged", check_invalid_config),
                                ("(c) a removed zone is REFUSED", check_remove_zone)):
                try:
                    check(env, log)
                    log("ok    %s" % name)
                except Exception as e:  # noqa: BLE001 - reported, then the next check runs
                    failed += 1
                    log("FAIL  %s: %s: %s" % (name, type(e).__name__, e))
                    if not env.server.alive():
                        log("tandemd has exited; stderr:\n%s" % env.server.stderr_text())
                        break
        except procs.ServerError as e:
            log("could not start tandemd: %s" % e)
            return 2
        finally:
            if env is not None and env.server is not None:
                env.server.stop()
    log("reload: %s" % ("all checks passed" if failed == 0 else "%d checks failed" % failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
