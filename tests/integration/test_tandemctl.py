#!/usr/bin/python3
"""tandemctl end to end: tandemd with a control socket and one zone file, every command
checked in text and JSON form, and the control socket's life cycle.

    /usr/bin/python3 tests/integration/test_tandemctl.py \
        --tandemd build/tandemd --tandemctl build/tandemctl

Exit status: 0 when every check passes, 1 when one fails, 2 when the test could not run.
"""

import argparse
import json
import os
import pwd
import socket
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.flags     # noqa: E402
import dns.rcode     # noqa: E402
import dns.rdatatype  # noqa: E402

import procs  # noqa: E402
from procs import Failure, expect  # noqa: E402

ZONE = "example.test"
FILE_ZONE_ERROR = "zone example.test. is served from its file; it has no sources"


class Env:
    """The running tandemd and how to reach it."""

    def __init__(self, args, workdir):
        self.tandemd = args.tandemd
        self.tandemctl = args.tandemctl
        self.workdir = workdir
        self.zone_file = os.path.join(workdir, "example.test.zone")
        # The parent directory does not exist: tandemd creates it.
        self.socket = os.path.join(workdir, "run", "tandem", "control.sock")
        self.server = None

    def config(self, port):
        return procs.tandem_config_zones(port, [(ZONE, self.zone_file)], self.socket,
                                         os.path.join(self.workdir, "state"))

    def start(self, name="tandemd"):
        self.server = procs.start_tandemd_with(self.tandemd, self.workdir, ZONE, self.config,
                                               name=name)
        return self.server

    def ctl(self, *args, json_output=False, **kw):
        return procs.run_tandemctl(self.tandemctl, self.socket, *args, json_output=json_output, **kw)

    def ctl_json(self, *args):
        r = self.ctl(*args, json_output=True)
        try:
            doc = json.loads(r.stdout)
        except ValueError:
            raise Failure("tandemctl --json %s: not JSON (exit %d)\n  stdout: %r\n  stderr: %r"
                          % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r, doc

    def soa_serial(self):
        reply = procs.udp_query(self.server.addr, ZONE, dns.rdatatype.SOA)
        expect(reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AA,
               "SOA %s: not an authoritative NOERROR" % ZONE, reply)
        return reply.answer[0][0].serial


def table_row(text, first):
    """The whitespace-split row of a text table whose first cell is `first`."""
    for line in text.splitlines():
        cells = line.split()
        if cells and cells[0] == first:
            return cells
    return None


# ---------------------------------------------------------------------------------------
# Checks, in order; each raises Failure.

def check_socket_mode(env):
    st = os.lstat(env.socket)
    expect(stat.S_ISSOCK(st.st_mode), "%s is not a socket" % env.socket)
    expect(stat.S_IMODE(st.st_mode) == 0o600, "socket mode is %o, not 600" % stat.S_IMODE(st.st_mode))


def check_status(env):
    r = env.ctl("status")
    expect(r.returncode == 0, "status: exit %d" % r.returncode, r.stderr)
    for key, value in (("mode", "socket"), ("workers", "1"), ("zones", "1"),
                       ("listen", "127.0.0.1:%d" % env.server.port)):
        row = table_row(r.stdout, key)
        expect(row is not None and row[1] == value, "status: %s is not %s" % (key, value), r.stdout)
    for key in ("version", "uptime", "queries", "queries/s", "reloads"):
        expect(table_row(r.stdout, key) is not None, "status: no %s line" % key, r.stdout)
    r, doc = env.ctl_json("status")
    expect(r.returncode == 0 and doc.get("ok") is True, "status --json: not ok", r.stdout)
    expect(doc["mode"] == "socket" and doc["workers"] == 1 and doc["zones"] == 1,
           "status --json: wrong mode, workers or zones", doc)
    expect(doc["listen"] == ["127.0.0.1:%d" % env.server.port], "status --json: listen", doc)
    expect(isinstance(doc["uptime_seconds"], int) and doc["version"], "status --json: uptime/version", doc)
    expect(isinstance(doc["queries_per_second"], (int, float)), "status --json: queries_per_second", doc)


def check_zones(env, serial):
    r = env.ctl("zones")
    expect(r.returncode == 0, "zones: exit %d" % r.returncode, r.stderr)
    row = table_row(r.stdout, ZONE + ".")
    expect(row is not None, "zones: %s not listed" % ZONE, r.stdout)
    expect(row[1] == str(serial) and row[2] == "file" and row[3] == "serving",
           "zones: expected serial %d, source file, state serving" % serial, r.stdout)
    r, doc = env.ctl_json("zones")
    expect(doc.get("ok") is True and len(doc["zones"]) == 1, "zones --json: one zone", doc)
    z = doc["zones"][0]
    expect(z["name"] == ZONE + "." and z["serial"] == serial and z["source"] == "file"
           and z["state"] == "serving" and z["nodes"] > 0 and z["file"] == env.zone_file,
           "zones --json: wrong entry", z)


def check_zone_commands(env):
    for args in (("sources", ZONE), ("refresh", ZONE + "."), ("use", ZONE, "primary"),
                 ("use", ZONE.upper(), "auto")):
        r = env.ctl(*args)
        expect(r.returncode == 1, "%s: exit %d, not 1" % (" ".join(args), r.returncode), r.stdout)
        expect(FILE_ZONE_ERROR in r.stderr, "%s: no file-zone error" % " ".join(args), r.stderr)
        r, doc = env.ctl_json(*args)
        expect(r.returncode == 1 and doc.get("ok") is False and FILE_ZONE_ERROR in doc.get("error", ""),
               "%s --json: not the file-zone error" % " ".join(args), doc)
    for args in (("sources", "nope.test"), ("refresh", "nope.test"), ("use", "nope.test", "auto")):
        r = env.ctl(*args)
        expect(r.returncode == 1 and "no such zone" in r.stderr,
               "%s: exit %d, want 1 and 'no such zone'" % (" ".join(args), r.returncode), r.stderr)


def send_queries(env, count, spread=0.0):
    answered = 0
    for i in range(count):
        try:
            reply = procs.udp_query(env.server.addr, "www." + ZONE, dns.rdatatype.A)
            answered += reply.rcode() == dns.rcode.NOERROR
        except Exception:  # noqa: BLE001 - a lost reply shows in the count below
            pass
        if spread:
            time.sleep(spread / count)
    return answered


def check_stats(env):
    _, before = env.ctl_json("stats")
    expect(before.get("ok") is True, "stats --json: not ok", before)
    n = 40
    answered = send_queries(env, n, spread=1.5)
    expect(answered == n, "only %d of %d queries answered" % (answered, n))
    _, after = env.ctl_json("stats")
    t0, t1 = before["total"], after["total"]
    expect(t1["queries_udp"] - t0["queries_udp"] == n,
           "stats: queries_udp went from %d to %d, not +%d" % (t0["queries_udp"], t1["queries_udp"], n))
    expect(t1["responses"].get("NOERROR", 0) - t0["responses"].get("NOERROR", 0) == n,
           "stats: NOERROR responses did not grow by %d" % n, t0, t1)
    names = [w["name"] for w in after["workers"]]
    expect(names == ["udp0", "tcp"], "stats: workers %s, want udp0, tcp" % names)
    expect(sum(w["counters"]["queries"] for w in after["workers"]) == t1["queries"],
           "stats: per-worker queries do not add up to the total", after)
    r = env.ctl("stats")
    row = table_row(r.stdout, "queries_udp")
    expect(r.returncode == 0 and row is not None and int(row[1]) >= t1["queries_udp"],
           "stats: text table has no queries_udp row with the total", r.stdout)


def check_query_rate(env):
    """The rate comes from one-second samples: it is positive while queries flow."""
    deadline = time.monotonic() + 6
    rate = 0
    while time.monotonic() < deadline and rate <= 0:
        send_queries(env, 20, spread=0.5)
        _, doc = env.ctl_json("status")
        rate = doc.get("queries_per_second", 0)
    expect(rate > 0, "status: queries_per_second stayed 0 while queries were sent")


def check_reload(env, serial):
    procs.write_zone(env.zone_file, ZONE, serial)
    r = env.ctl("reload")
    expect(r.returncode == 0 and "reloaded" in r.stdout, "reload: exit %d" % r.returncode,
           r.stdout, r.stderr)
    check_zones(env, serial)
    got = env.soa_serial()
    expect(got == serial, "after reload SOA serial is %d, want %d" % (got, serial))
    _, doc = env.ctl_json("status")
    expect(doc["reloads"] >= 1, "status: reloads not counted", doc)


def check_broken_reload(env, serial):
    procs.write_zone(env.zone_file, ZONE, serial + 1, extra=["bad IN A not-an-address"])
    r = env.ctl("reload")
    where = "%s:7" % env.zone_file
    expect(r.returncode == 1, "reload of a broken zone: exit %d, not 1" % r.returncode, r.stdout)
    expect(where in r.stderr, "reload of a broken zone: %s not in the message" % where, r.stderr)
    r, doc = env.ctl_json("reload")
    expect(doc.get("ok") is False and where in doc.get("error", ""), "reload --json: no FILE:LINE", doc)
    got = env.soa_serial()
    expect(got == serial, "after a failed reload SOA serial is %d, want the old %d" % (got, serial))
    check_zones(env, serial)
    _, doc = env.ctl_json("status")
    expect(doc["reload_failures"] >= 2, "status: reload failures not counted", doc)
    procs.write_zone(env.zone_file, ZONE, serial)


def check_usage_errors(env):
    for args in (("frobnicate",), ("sources",), ("use", ZONE), ("status", "extra"), ("--bogus", "status"), ()):
        r = env.ctl(*args)
        expect(r.returncode == 2, "tandemctl %s: exit %d, not 2" % (" ".join(args), r.returncode), r.stderr)
    r = subprocess.run([env.tandemctl, "--help"], capture_output=True, text=True, timeout=10)
    expect(r.returncode == 0, "--help: exit %d" % r.returncode)
    for c in ("status", "zones", "sources ZONE", "refresh ZONE", "use ZONE SOURCE|auto", "reload", "stats"):
        expect(c in r.stdout, "--help does not list %s" % c, r.stdout)


def check_missing_socket(env):
    missing = os.path.join(env.workdir, "no-such-dir", "control.sock")
    r = procs.run_tandemctl(env.tandemctl, missing, "status")
    want = "tandemd is not running? cannot connect to %s: No such file or directory" % missing
    expect(r.returncode == 1 and want in r.stderr, "missing socket: exit %d" % r.returncode, r.stderr)


def check_permission_denied(env):
    """As root, run tandemctl as nobody: the private temp dir and the 0600 socket deny it."""
    if os.geteuid() != 0:
        return "skipped (not root)"
    nobody = pwd.getpwnam("nobody")

    def drop():
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)

    try:
        subprocess.run([env.tandemctl, "--help"], capture_output=True, timeout=10, preexec_fn=drop)
    except (OSError, subprocess.SubprocessError):
        return "skipped (nobody cannot run %s)" % env.tandemctl
    r = env.ctl("status", preexec_fn=drop)
    expect(r.returncode == 1 and "Permission denied" in r.stderr and env.socket in r.stderr,
           "as nobody: exit %d, want 1 and Permission denied" % r.returncode, r.stderr)
    return None


def raw_exchange(path, data, timeout=8.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect(path)
        if data:
            s.sendall(data)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                return b"".join(chunks)
            chunks.append(b)
    finally:
        s.close()


def check_protocol_limits(env):
    reply = json.loads(raw_exchange(env.socket, b'{"command":"zones"}\n'))
    expect(reply.get("ok") is True and reply["zones"][0]["name"] == ZONE + ".", "raw zones", reply)
    reply = json.loads(raw_exchange(env.socket, b'{"command": 5}\n'))
    expect(reply.get("ok") is False and "bad request" in reply["error"], "bad request", reply)
    reply = json.loads(raw_exchange(env.socket, b'{"command":"nope"}\n'))
    expect(reply.get("ok") is False and "unknown command" in reply["error"], "unknown command", reply)
    # Escapes both ways: JSON escapes in the request, invalid UTF-8 answered as U+FFFD.
    name = 'q"b\\c\x01\u00e9\U0001f600'
    reply = json.loads(raw_exchange(env.socket, json.dumps({"command": "sources", "args": [name]}).encode() + b"\n"))
    expect(reply.get("error") == "no such zone: %s." % name, "escaped zone name not echoed", reply)
    raw = raw_exchange(env.socket, b'{"command":"sources","args":["x\xffy\xc3"]}\n')
    reply = json.loads(raw.decode("utf-8"))
    expect(reply.get("error") == "no such zone: x\ufffdy\ufffd.", "invalid UTF-8 not replaced", raw)
    reply = json.loads(raw_exchange(env.socket, b"x" * (70 * 1024)))
    expect(reply.get("ok") is False and "larger than" in reply["error"], "oversized request", reply)
    t0 = time.monotonic()
    got = raw_exchange(env.socket, b"", timeout=10)
    took = time.monotonic() - t0
    expect(got == b"" and 4 <= took <= 8, "a silent client is dropped after 5 s (took %.1f s)" % took)
    r = env.ctl("status")
    expect(r.returncode == 0, "status after a silent client: exit %d" % r.returncode, r.stderr)


def check_second_instance(env):
    """Another tandemd configured with the same socket refuses to start, naming it."""
    def config(port):
        return procs.tandem_config_zones(port, [(ZONE, env.zone_file)], env.socket)

    d = os.path.join(env.workdir, "second")
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "tandem.toml")
    with open(conf, "w") as f:
        f.write(config(procs.free_port()))
    second = procs.Server("second", [env.tandemd, "--config", conf], d, 0).start()
    try:
        second.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pass
    finally:
        second.stop()
    err = second.stderr_text()
    expect(second.proc.returncode not in (0, None) and env.socket in err and "another tandemd" in err,
           "second tandemd on the same socket: exit %s" % second.proc.returncode, err)
    expect(env.ctl("status").returncode == 0, "the first tandemd lost its socket")


def check_stop_and_stale(env):
    env.server.stop()
    expect(not os.path.exists(env.socket), "socket file left after SIGTERM")
    # A socket file nobody listens on, as a killed tandemd leaves it.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(env.socket)
    s.close()
    expect(os.path.exists(env.socket), "could not create a stale socket file")
    env.start(name="tandemd-again")
    check_socket_mode(env)
    r = env.ctl("status")
    expect(r.returncode == 0, "status after replacing a stale socket: exit %d" % r.returncode, r.stderr)


def run_checks(env, log):
    serial = 2024010101
    procs.write_zone(env.zone_file, ZONE, serial)
    env.start()
    checks = [
        ("socket mode 0600", lambda: check_socket_mode(env)),
        ("status", lambda: check_status(env)),
        ("zones", lambda: check_zones(env, serial)),
        ("sources/refresh/use on a file zone", lambda: check_zone_commands(env)),
        ("stats counts queries", lambda: check_stats(env)),
        ("queries per second", lambda: check_query_rate(env)),
        ("reload picks up a new serial", lambda: check_reload(env, serial + 1)),
        ("broken zone reload keeps the old serial", lambda: check_broken_reload(env, serial + 1)),
        ("usage errors exit 2", lambda: check_usage_errors(env)),
        ("missing socket", lambda: check_missing_socket(env)),
        ("permission denied", lambda: check_permission_denied(env)),
        ("protocol limits", lambda: check_protocol_limits(env)),
        ("second instance on the same socket", lambda: check_second_instance(env)),
        ("socket removed on stop, stale socket replaced", lambda: check_stop_and_stale(env)),
    ]
    failed = 0
    for name, check in checks:
        try:
            note = check()
            log("ok    %s%s" % (name, " (%s)" % note if note else ""))
        except (Failure, subprocess.TimeoutExpired, procs.ServerError, OSError, ValueError, KeyError) as e:
            failed += 1
            log("FAIL  %s: %s: %s" % (name, type(e).__name__, e))
            if env.server is not None and not env.server.alive():
                log("tandemd has exited; stderr:\n%s" % env.server.stderr_text())
                break
    return failed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tandemd", required=True)
    ap.add_argument("--tandemctl", required=True)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    procs.stop_on_sigterm()

    def log(msg):
        print(msg, flush=True)

    env = None
    with procs.TempDir(prefix="tandem-ctl-", keep=args.keep) as workdir:
        try:
            env = Env(args, workdir)
            failed = run_checks(env, log)
        except procs.ServerError as e:
            log("could not start tandemd: %s" % e)
            return 2
        finally:
            if env is not None and env.server is not None:
                env.server.stop()
    log("tandemctl: %s" % ("all checks passed" if failed == 0 else "%d checks failed" % failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
