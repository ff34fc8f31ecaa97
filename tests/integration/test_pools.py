#!/usr/bin/python3
"""Load-balancing pools end to end: tandemd with [[pool]] tables whose members are real
servers on loopback addresses (127.0.0.10, 127.0.0.11, ... are all loopback on Linux).

    /usr/bin/python3 tests/integration/test_pools.py \
        --tandemd build/tandemd --tandemctl build/tandemctl

(1) http checks, all-healthy: a killed member leaves the answer within
    fall x interval + interval, and comes back `rise` checks after its restart;
(2) every member down: all of them answered, counted in tandem_pool_all_down_answers_total;
(3) weighted 3:1 over 4000 queries; failover to the second member and back;
(4) tcp checks (a listener, a closed port); dns checks against Knot DNS (rcode as wanted,
    another rcode, no server);
(5) https with a self-signed certificate: trusted through ca_file, refused without;
(6) operator overrides (down, auto, up) through tandemctl;
(7) AAAA from the IPv6 members; other types at a pooled name from the zone or NODATA.

Every server is a child process (or a thread) stopped by pid in `finally`; every wait has
a deadline. Exit status: 0 when every check passes, 1 when one fails, 2 when the test
could not run.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.exception  # noqa: E402
import dns.message    # noqa: E402
import dns.query      # noqa: E402
import dns.rcode      # noqa: E402
import dns.rdatatype  # noqa: E402

import procs  # noqa: E402
from procs import Failure, expect  # noqa: E402

ZONE = "example.com"
INTERVAL = 0.5          # every check's interval, seconds
TIMEOUT = 0.3
RISE = 2
FALL = 2
MARGIN = 0.25           # scheduling slack on the timing bounds, seconds

WEB = [("a", "127.0.0.10"), ("b", "127.0.0.11"), ("c", "127.0.0.12")]
WTD = [("heavy", "127.0.0.20", 3), ("light", "127.0.0.21", 1)]
FO = [("primary", "127.0.0.30"), ("backup", "127.0.0.31")]
TCP = [("open", "127.0.0.40"), ("closed", "127.0.0.41")]
DNS_ADDR, DNS_SILENT = "127.0.0.50", "127.0.0.51"
TLS_ADDR = "127.0.0.60"
MIXED = [("v4", "192.0.2.10"), ("v6a", "2001:db8::10"), ("v6b", "2001:db8::11")]
SIX = [("lo6", "::1"), ("gone6", "2001:db8::99")]
CAP = [("c1", "192.0.2.21"), ("c2", "192.0.2.22"), ("c3", "192.0.2.23")]

HTTP_SERVER = r'''
import socket, socketserver, ssl, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

addr, port = sys.argv[1], int(sys.argv[2])
cert = sys.argv[3] if len(sys.argv) > 4 else None
key = sys.argv[4] if len(sys.argv) > 4 else None

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok\n" if self.path == "/health" else b"not here\n"
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

class Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    daemon_threads = True
    def server_bind(self):  # no getfqdn(): no name lookups
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = addr, port
    def finish_request(self, request, client_address):
        if cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            request.settimeout(5)
            request = ctx.wrap_socket(request, server_side=True)
        super().finish_request(request, client_address)
    def handle_error(self, request, client_address):
        pass

Server((addr, port), Handler).serve_forever()
'''


def free_port_on(addresses, udp=False, tries=100):
    """A port free for TCP (and UDP when asked) on every one of `addresses` at once."""
    for _ in range(tries):
        socks = []
        try:
            first = socket.socket(socket.AF_INET6 if ":" in addresses[0] else socket.AF_INET,
                                  socket.SOCK_STREAM)
            socks.append(first)
            first.bind((addresses[0], 0))
            port = first.getsockname()[1]
            ok = True
            for a in addresses:
                fam = socket.AF_INET6 if ":" in a else socket.AF_INET
                kinds = [socket.SOCK_STREAM, socket.SOCK_DGRAM] if udp else [socket.SOCK_STREAM]
                for kind in kinds:
                    if a == addresses[0] and kind == socket.SOCK_STREAM:
                        continue
                    s = socket.socket(fam, kind)
                    socks.append(s)
                    try:
                        s.bind((a, port))
                    except OSError:
                        ok = False
                        break
                if not ok:
                    break
            if ok:
                return port
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no port free on all of %s" % (addresses,))


def wait_listening(addr, port, proc=None, timeout=10.0):
    """Polls a TCP connect to addr:port until it succeeds; the monotonic time it did."""
    deadline = time.monotonic() + timeout
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise procs.ServerError("server on %s:%d exited with %s" % (addr, port, proc.returncode))
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(0.2)
        try:
            s.connect((addr, port))
            return time.monotonic()
        except OSError:
            pass
        finally:
            s.close()
        time.sleep(0.005)
    raise procs.ServerError("nothing listens on %s:%d after %.0f s" % (addr, port, timeout))


class HttpMember:
    """An http(s) server process on ADDR:PORT answering GET /health with 200 "ok"."""

    def __init__(self, script, addr, port, workdir, cert=None, key=None):
        self.argv = [sys.executable, script, addr, str(port)] + ([cert, key] if cert else [])
        self.addr, self.port = addr, port
        self.log = os.path.join(workdir, "http-%s.stderr" % addr.replace(":", "_"))
        self.proc = None

    def start(self, timeout=10.0):
        """Starts the server; returns the monotonic time it was first seen listening."""
        deadline = time.monotonic() + timeout
        while True:
            with open(self.log, "ab") as err:
                self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                             stdout=subprocess.DEVNULL, stderr=err, close_fds=True)
            try:
                return wait_listening(self.addr, self.port, self.proc,
                                      timeout=max(0.5, deadline - time.monotonic()))
            except procs.ServerError:
                procs.stop_process(self.proc)
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)     # the port may still be held: try again

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL by pid; returns the monotonic time just before the signal."""
        t = time.monotonic()
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        return t

    def stop(self):
        procs.stop_process(self.proc, grace=2.0)


class TcpListener:
    """A listening TCP socket (in a thread) that accepts and closes every connection."""

    def __init__(self, addr, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, port))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            c.close()

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def pool_table(name, members, policy="all-healthy", check=None, max_answers=8):
    text = '\n[[pool]]\nname = "%s"\npolicy = "%s"\nmax_answers = %d\n' % (name, policy, max_answers)
    if check:
        text += "check = %s\n" % procs._toml_value(check)
    text += "members = [\n"
    for m in members:
        entry = {"address": m[1], "name": m[0]}
        if len(m) > 2:
            entry["weight"] = m[2]
        text += "  %s,\n" % procs._toml_value(entry)
    return text + "]\n"


class Lab:
    """Every server of the test, tandemd last; stop() stops them all by pid."""

    def __init__(self, args, workdir, log):
        self.args = args
        self.workdir = workdir
        self.log = log
        self.socket = os.path.join(workdir, "ctl.sock")
        self.http = {}          # address -> HttpMember
        self.tcp = None
        self.knot = None
        self.tandem = None
        self.metrics_port = None

    # ---- setup ----

    def start(self):
        w = self.workdir
        script = os.path.join(w, "httpd.py")
        with open(script, "w") as f:
            f.write(HTTP_SERVER)
        http_addrs = [a for _, a in WEB] + [a for _, a in FO] + ["::1"]
        self.http_port = free_port_on(http_addrs + [TLS_ADDR])
        # A self-signed certificate for the https member (its own CA).
        self.cert = os.path.join(w, "member.pem")
        key = os.path.join(w, "member.key")
        r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                            "-subj", "/CN=%s" % TLS_ADDR, "-addext", "subjectAltName=IP:%s" % TLS_ADDR,
                            "-keyout", key, "-out", self.cert],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise procs.ServerError("openssl req failed: %s" % r.stderr)
        for a in http_addrs:
            self.http[a] = HttpMember(script, a, self.http_port, w)
        self.http[TLS_ADDR] = HttpMember(script, TLS_ADDR, self.http_port, w, cert=self.cert, key=key)
        for m in self.http.values():
            m.start()
        self.tcp_port = free_port_on([a for _, a in TCP])
        self.tcp = TcpListener(TCP[0][1], self.tcp_port)
        self.start_knot()
        self.start_tandem()

    def start_knot(self):
        d = os.path.join(self.workdir, "knot")
        os.makedirs(d, exist_ok=True)
        zf = os.path.join(d, "example.org.zone")
        with open(zf, "w") as f:
            f.write("$ORIGIN example.org.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n"
                    "@ NS ns1\nns1 A 192.0.2.53\n")
        last = None
        for _ in range(3):
            port = free_port_on([DNS_ADDR, DNS_SILENT], udp=True)
            conf = os.path.join(d, "knot.conf")
            text = procs.knot_config(d, port, "example.org", zf)
            text = text.replace("listen: %s@%d" % (procs.LOOPBACK, port), "listen: %s@%d" % (DNS_ADDR, port))
            with open(conf, "w") as f:
                f.write(text)
            srv = procs.AddrServer("knotd", ["knotd", "-c", conf], d, DNS_ADDR, port)
            srv.start()
            try:
                srv.wait_ready("example.org", timeout=20)
                self.knot = srv
                self.dns_port = port
                return
            except procs.ServerError as e:
                srv.stop()
                last = e
        raise last

    def config(self, port):
        self.metrics_port = procs.free_port()
        state = os.path.join(self.workdir, "state")
        os.makedirs(state, exist_ok=True)
        http = {"kind": "http", "port": self.http_port, "path": "/health", "interval": "500ms",
                "timeout": "300ms", "rise": RISE, "fall": FALL, "expect": [200], "body": "ok"}
        timing = {"interval": "500ms", "timeout": "300ms", "rise": RISE, "fall": FALL}
        dns_check = dict(kind="dns", port=self.dns_port, **timing)
        tls = dict(kind="https", port=self.http_port, path="/health", body="ok", **timing)
        text = ('[server]\nmode = "socket"\nlisten = ["%s:%d"]\nworkers = 2\nstate_dir = "%s"\n'
                % (procs.LOOPBACK, port, state))
        text += '\n[control]\nsocket = "%s"\n' % self.socket
        text += '\n[metrics]\nlisten = "%s:%d"\n' % (procs.LOOPBACK, self.metrics_port)
        text += pool_table("web", WEB, check=http)
        text += pool_table("wtd", WTD, policy="weighted")
        text += pool_table("fo", FO, policy="failover", check=http)
        text += pool_table("tcp", TCP, check=dict(kind="tcp", port=self.tcp_port, **timing))
        text += pool_table("dnsok", [("knot", DNS_ADDR), ("silent", DNS_SILENT)],
                           check=dict(dns_check, query="example.org.", query_type="SOA", rcode="NOERROR"))
        text += pool_table("dnsbad", [("knot", DNS_ADDR)],
                           check=dict(dns_check, query="missing.example.org.", query_type="A", rcode="NOERROR"))
        text += pool_table("dnsnx", [("knot", DNS_ADDR)],
                           check=dict(dns_check, query="missing.example.org.", query_type="A", rcode="NXDOMAIN"))
        text += pool_table("tlsca", [("tls", TLS_ADDR)], check=dict(tls, ca_file=self.cert))
        text += pool_table("tlsnoca", [("tls", TLS_ADDR)], check=tls)
        text += pool_table("mixed", MIXED)
        text += pool_table("six", SIX, check=http)
        text += pool_table("cap", CAP, max_answers=2)
        pooled = [{"name": "www", "pool": "web", "ttl": 30}, {"name": "wtd", "pool": "wtd"},
                  {"name": "fo", "pool": "fo"}, {"name": "tcp", "pool": "tcp"},
                  {"name": "dnsok", "pool": "dnsok"}, {"name": "dnsbad", "pool": "dnsbad"},
                  {"name": "dnsnx", "pool": "dnsnx"}, {"name": "tlsca", "pool": "tlsca"},
                  {"name": "tlsnoca", "pool": "tlsnoca"}, {"name": "mixed", "pool": "mixed", "ttl": 60},
                  {"name": "six", "pool": "six"}, {"name": "cap", "pool": "cap"}]
        text += '\n[[zone]]\nname = "%s"\nfile = "%s"\npooled = [\n' % (ZONE, self.zone_file)
        text += "".join("  %s,\n" % procs._toml_value(p) for p in pooled) + "]\n"
        return text

    def start_tandem(self):
        self.zone_file = os.path.join(self.workdir, "example.com.zone")
        with open(self.zone_file, "w") as f:
            f.write("\n".join([
                "$ORIGIN example.com.", "$TTL 300",
                "@ IN SOA ns1 hostmaster 1 3600 600 86400 300", "@ IN NS ns1",
                "ns1 IN A 192.0.2.1",
                "www IN A 192.0.2.99",          # replaced by the pool
                'www IN TXT "web front"',       # other types still come from the zone
                "alias IN CNAME www",           # a chain that ends in the pool
            ]) + "\n")
        self.tandem = procs.start_tandemd_with(self.args.tandemd, self.workdir, ZONE, self.config)
        self.dns = self.tandem.addr

    def stop(self):
        for s in (self.tandem, self.knot):
            if s is not None:
                s.stop()
        for m in self.http.values():
            m.stop()
        if self.tcp is not None:
            self.tcp.stop()

    # ---- probes ----

    def query(self, name, rdtype, timeout=1.0):
        return procs.udp_query(self.dns, "%s.%s." % (name, ZONE), rdtype, timeout=timeout)

    def addrs(self, name, rdtype="A"):
        """The addresses answered for NAME (relative to the zone); None on no reply."""
        try:
            r = self.query(name, getattr(dns.rdatatype, rdtype), timeout=0.5)
        except (OSError, dns.exception.DNSException):
            return None
        out = set()
        for rrset in r.answer:
            for rd in rrset:
                out.add(rd.address)
        return out

    def wait_answer(self, name, want, timeout, rdtype="A", during=None):
        """Polls until the answer for NAME is the set `want`; returns the monotonic time.
        `during(set)` sees every answer before that (e.g. to check what stays in it)."""
        want = set(want)
        deadline = time.monotonic() + timeout
        got = None
        while time.monotonic() < deadline:
            got = self.addrs(name, rdtype)
            if got == want:
                return time.monotonic()
            if during is not None and got is not None:
                during(got)
            time.sleep(0.01)
        raise Failure("%s %s did not become %s within %.1f s (last answer %s)"
                      % (name, rdtype, sorted(want), timeout, sorted(got) if got else got))

    def ctl(self, *args):
        return procs.run_tandemctl(self.args.tandemctl, self.socket, *args, timeout=10)

    def pool(self, name):
        doc = procs.tandemctl_json(self.args.tandemctl, self.socket, "pool", name)
        expect(doc.get("ok"), "tandemctl pool %s failed" % name, doc)
        return doc

    def members(self, name):
        return {m["name"]: m for m in self.pool(name)["members"]}

    def wait_member(self, pool, member, timeout, **want):
        """Polls `tandemctl pool` until MEMBER has every field of `want`; returns it."""
        deadline = time.monotonic() + timeout
        m = None
        while time.monotonic() < deadline:
            m = self.members(pool).get(member)
            expect(m is not None, "pool %s has no member %s" % (pool, member))
            if all(m.get(k) == v for k, v in want.items()):
                return m
            time.sleep(0.05)
        raise Failure("pool %s member %s is not %s within %.1f s" % (pool, member, want, timeout), m)

    def metrics(self):
        return procs.scrape_metrics((procs.LOOPBACK, self.metrics_port))

    def metric(self, name, **labels):
        v = procs.metric_value(self.metrics(), name, **labels)
        expect(v is not None, "no sample %s%s in /metrics" % (name, labels))
        return v

    def stderr(self):
        return self.tandem.stderr_text(limit=200000)

    def restore_web(self, timeout=10.0):
        """Every web member's server running, no override, all UP and answered."""
        for _, a in WEB:
            if not self.http[a].alive():
                self.http[a].start()
        for name, _ in WEB:
            r = self.ctl("pool", "web", name, "auto")
            expect(r.returncode == 0, "pool web %s auto failed" % name, r.stdout, r.stderr)
        # (With every member down all are answered too: wait for the states themselves.)
        for name, _ in WEB:
            self.wait_member("web", name, timeout=timeout, state="UP", healthy=True)
        self.wait_answer("www", [a for _, a in WEB], timeout=timeout)


WEB_ALL = {a for _, a in WEB}
LEAVE_BOUND = FALL * INTERVAL + INTERVAL + MARGIN
LEAVE_FLOOR = (FALL - 1) * INTERVAL - 0.05
RETURN_BOUND = RISE * INTERVAL + MARGIN
RETURN_FLOOR = (RISE - 1) * INTERVAL - 0.1


def check_http_all_healthy(lab, log):
    lab.wait_answer("www", WEB_ALL, timeout=10)
    r = lab.query("www", dns.rdatatype.A)
    expect(all(rr.ttl == 30 for rr in r.answer), "www A not answered with the pooled TTL 30", r)
    expect("192.0.2.99" not in {rd.address for rrset in r.answer for rd in rrset},
           "the zone's own A at www leaked into the pool's answer", r)
    # Members start UP; their first checks may still be under way (a slow, sanitized build).
    def passing(m):
        return m["state"] == "UP" and m["healthy"] and m["checks_ok"] >= 1

    deadline = time.monotonic() + 10
    ms = lab.members("web")
    while not all(passing(ms[name]) for name, _ in WEB) and time.monotonic() < deadline:
        time.sleep(0.05)
        ms = lab.members("web")
    for name, _ in WEB:
        expect(passing(ms[name]), "web member %s is not UP with passing checks" % name, ms[name])
    lat = lab.metric("tandem_pool_check_latency_seconds", pool="web", member="a")
    expect(0 < lat < TIMEOUT, "check latency of web/a is %r, not in (0, %s)" % (lat, TIMEOUT))

    # Kill b: it leaves within fall x interval + interval, a and c never do.
    b = WEB[1][1]

    def others_stay(got):
        expect(got >= WEB_ALL - {b}, "a healthy member left the answer while b failed: %s" % sorted(got))

    t0 = lab.http[b].kill()
    t1 = lab.wait_answer("www", WEB_ALL - {b}, timeout=LEAVE_BOUND + 5, during=others_stay)
    down = t1 - t0
    log("    b killed: left the answer after %.3f s (bound %.2f s = fall %d x %.1f s + %.1f s + %.2f s)"
        % (down, LEAVE_BOUND, FALL, INTERVAL, INTERVAL, MARGIN))
    expect(down <= LEAVE_BOUND, "b left the answer %.3f s after the kill, bound %.2f s" % (down, LEAVE_BOUND))
    expect(down >= LEAVE_FLOOR, "b left the answer after %.3f s, before %d failed checks could run"
           % (down, FALL))
    mb = lab.members("web")["b"]
    expect(mb["state"] == "DOWN" and not mb["healthy"] and mb["checks_failed"] >= FALL and mb["error"],
           "tandemctl does not show b DOWN with failing checks and an error", mb)
    log("    tandemctl: b %s, checks_failed %d, error %r" % (mb["state"], mb["checks_failed"], mb["error"]))
    expect(lab.metric("tandem_pool_member_up", pool="web", member="b") == 0, "tandem_pool_member_up{b} is not 0")
    expect(lab.metric("tandem_pool_member_up", pool="web", member="a") == 1, "tandem_pool_member_up{a} is not 1")
    expect("pool web member b DOWN after %d failed checks" % FALL in lab.stderr(),
           "no 'pool web member b DOWN after %d failed checks' in tandemd's log" % FALL, lab.stderr()[-2000:])
    text = lab.ctl("pool", "web")
    expect(text.returncode == 0 and "MEMBER" in text.stdout and "failing" in text.stdout
           and "DOWN" in text.stdout, "tandemctl pool web (text) does not show b failing", text.stdout, text.stderr)

    # Restart b: back after `rise` good checks.
    t_ready = lab.http[b].start()
    t2 = lab.wait_answer("www", WEB_ALL, timeout=RETURN_BOUND + 5, during=others_stay)
    up = t2 - t_ready
    log("    b restarted: back in the answer %.3f s after it listened (rise %d: between %.2f s and %.2f s)"
        % (up, RISE, RETURN_FLOOR, RETURN_BOUND))
    expect(up <= RETURN_BOUND, "b came back %.3f s after its restart, bound %.2f s" % (up, RETURN_BOUND))
    expect(up >= RETURN_FLOOR, "b came back after %.3f s, sooner than %d good checks allow" % (up, RISE))
    expect("pool web member b UP after %d good checks" % RISE in lab.stderr(),
           "no 'pool web member b UP after %d good checks' in tandemd's log" % RISE)
    expect(lab.metric("tandem_pool_member_up", pool="web", member="b") == 1, "tandem_pool_member_up{b} is not 1")
    return "leave %.3f s, return %.3f s" % (down, up)


def check_all_down(lab, log):
    lab.restore_web()
    t0 = time.monotonic()
    for _, a in WEB:
        lab.http[a].kill()
    for name, _ in WEB:
        lab.wait_member("web", name, timeout=LEAVE_BOUND + 5, state="DOWN")
    log("    all three DOWN %.3f s after the kills" % (time.monotonic() - t0))
    before = lab.metric("tandem_pool_all_down_answers_total")
    ans_before = {n: lab.metric("tandem_pool_member_answers_total", pool="web", member=n) for n, _ in WEB}
    n = 50
    for i in range(n):
        got = lab.addrs("www")
        expect(got == WEB_ALL, "query %d with every member down answered %s, not all of them" % (i, got))
    after = lab.metric("tandem_pool_all_down_answers_total")
    ans_after = {n_: lab.metric("tandem_pool_member_answers_total", pool="web", member=n_) for n_, _ in WEB}
    log("    %d queries: every answer holds all 3; all_down_answers_total %d -> %d" % (n, before, after))
    expect(after - before == n, "tandem_pool_all_down_answers_total rose by %d, not %d" % (after - before, n))
    for name, _ in WEB:
        expect(ans_after[name] - ans_before[name] == n, "member_answers_total{%s} rose by %d, not %d"
               % (name, ans_after[name] - ans_before[name], n))
    doc = lab.pool("web")
    expect(doc.get("all_down_answers") == after, "tandemctl all_down_answers %r != metric %r"
           % (doc.get("all_down_answers"), after))
    # An AAAA query: the pool has no IPv6 member, so NODATA and nothing counted as all-down.
    r = lab.query("www", dns.rdatatype.AAAA)
    expect(r.rcode() == dns.rcode.NOERROR and not r.answer and r.authority,
           "www AAAA (no IPv6 member) is not NODATA", r)
    expect(lab.metric("tandem_pool_all_down_answers_total") == after,
           "a NODATA AAAA counted as an all-down answer")
    t0 = time.monotonic()
    lab.restore_web()
    log("    restarted: all back in %.3f s" % (time.monotonic() - t0))
    return "%d all-down answers counted" % (after - before)


def check_weighted_failover(lab, log):
    heavy, light = WTD[0][1], WTD[1][1]
    before = {n: lab.metric("tandem_pool_member_answers_total", pool="wtd", member=n) for n, _, _ in WTD}
    n = 4000
    counts = {heavy: 0, light: 0}
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    s.connect(lab.dns)
    lost = 0
    try:
        for i in range(n):
            q = dns.message.make_query("wtd.%s." % ZONE, dns.rdatatype.A)
            s.send(q.to_wire())
            deadline = time.monotonic() + 1.0
            r = None
            while time.monotonic() < deadline:
                try:
                    r = dns.message.from_wire(s.recv(4096))
                except socket.timeout:
                    break
                if r.id == q.id:
                    break
                r = None
            if r is None:
                lost += 1
                continue
            got = [rd.address for rrset in r.answer for rd in rrset]
            expect(len(got) == 1 and got[0] in counts, "weighted answer %s is not one member" % got)
            counts[got[0]] += 1
    finally:
        s.close()
    expect(lost <= 5, "%d of %d weighted queries went unanswered" % (lost, n))
    total = counts[heavy] + counts[light]
    mean = total * 0.75
    sigma = (total * 0.75 * 0.25) ** 0.5
    lo, hi = mean - 5 * sigma, mean + 5 * sigma
    log("    weighted 3:1: heavy %d, light %d of %d (%.4f; 5-sigma interval [%.0f, %.0f])"
        % (counts[heavy], counts[light], total, counts[heavy] / total, lo, hi))
    expect(lo <= counts[heavy] <= hi, "heavy answered %d times of %d, outside [%.0f, %.0f]"
           % (counts[heavy], total, lo, hi))
    after = {n_: lab.metric("tandem_pool_member_answers_total", pool="wtd", member=n_) for n_, _, _ in WTD}
    expect(after["heavy"] - before["heavy"] == counts[heavy] and after["light"] - before["light"] == counts[light],
           "member_answers_total does not match the answers seen", before, after, counts)

    # Failover: only the first healthy member; the second while the first is down.
    primary, backup = FO[0][1], FO[1][1]
    for _ in range(20):
        got = lab.addrs("fo")
        expect(got == {primary}, "failover answered %s, not the primary only" % got)
    t0 = lab.http[primary].kill()
    t1 = lab.wait_answer("fo", {backup}, timeout=LEAVE_BOUND + 5,
                         during=lambda got: expect(got == {primary}, "failover answered %s" % sorted(got)))
    for _ in range(20):
        got = lab.addrs("fo")
        expect(got == {backup}, "failover answered %s with the primary down, not the backup" % got)
    t_ready = lab.http[primary].start()
    t2 = lab.wait_answer("fo", {primary}, timeout=RETURN_BOUND + 5)
    log("    failover: backup answered %.3f s after the primary's kill; primary back %.3f s after its restart"
        % (t1 - t0, t2 - t_ready))
    expect(t1 - t0 <= LEAVE_BOUND, "failover took %.3f s, bound %.2f s" % (t1 - t0, LEAVE_BOUND))
    expect(t2 - t_ready <= RETURN_BOUND, "failback took %.3f s, bound %.2f s" % (t2 - t_ready, RETURN_BOUND))
    return "heavy %d / light %d; failover %.3f s, failback %.3f s" % (counts[heavy], counts[light], t1 - t0, t2 - t_ready)


def check_tcp_dns(lab, log):
    bound = LEAVE_BOUND + 5
    m = lab.wait_member("tcp", "closed", timeout=bound, state="DOWN")
    expect("refused" in m["error"].lower(), "closed port's error does not say refused", m)
    o = lab.wait_member("tcp", "open", timeout=bound, state="UP", healthy=True)
    expect(o["checks_ok"] >= 1, "the tcp listener's member has no passing check", o)
    accepted = lab.tcp.accepted
    expect(accepted >= 1, "the tcp listener never saw a check connect")
    lab.wait_answer("tcp", {TCP[0][1]}, timeout=bound)
    log("    tcp: open UP (%d connects accepted), closed DOWN (%r)" % (accepted, m["error"]))

    ok = lab.wait_member("dnsok", "knot", timeout=bound, state="UP", healthy=True)
    expect(ok["checks_ok"] >= 1, "dns check against knotd never passed", ok)
    silent = lab.wait_member("dnsok", "silent", timeout=bound, state="DOWN")
    lab.wait_answer("dnsok", {DNS_ADDR}, timeout=bound)
    bad = lab.wait_member("dnsbad", "knot", timeout=bound, state="DOWN")
    expect("NXDOMAIN" in bad["error"], "dnsbad's error does not name the rcode NXDOMAIN", bad)
    nx = lab.wait_member("dnsnx", "knot", timeout=bound, state="UP", healthy=True)
    expect(nx["checks_ok"] >= 1 and nx["checks_failed"] == 0, "dnsnx (want NXDOMAIN) checks did not pass", nx)
    log("    dns: SOA NOERROR UP (%.2f ms); no server DOWN (%r); NXDOMAIN when NOERROR wanted DOWN (%r); "
        "NXDOMAIN wanted UP" % (ok["latency_ms"], silent["error"], bad["error"]))
    return "tcp and dns verdicts as expected"


def check_https(lab, log):
    bound = LEAVE_BOUND + 5
    ok = lab.wait_member("tlsca", "tls", timeout=bound, state="UP", healthy=True)
    expect(ok["checks_ok"] >= RISE and ok["checks_failed"] == 0, "https with ca_file did not pass", ok)
    bad = lab.wait_member("tlsnoca", "tls", timeout=bound, state="DOWN")
    expect(bad["checks_ok"] == 0, "https without ca_file passed a check", bad)
    expect("certificate" in bad["error"].lower() or "ssl" in bad["error"].lower(),
           "https without ca_file failed for another reason than verification", bad)
    lab.wait_answer("tlsca", {TLS_ADDR}, timeout=bound)
    log("    https: with ca_file UP (%.2f ms), without DOWN: %r" % (ok["latency_ms"], bad["error"]))
    return "ca_file UP, no ca_file DOWN"


def check_overrides(lab, log):
    lab.restore_web()
    a, c = WEB[0][1], WEB[2][1]
    r = lab.ctl("pool", "web", "a", "down")
    t0 = time.monotonic()
    expect(r.returncode == 0, "pool web a down failed", r.stdout, r.stderr)
    got = lab.addrs("www")
    gone = time.monotonic() - t0
    expect(got == WEB_ALL - {a}, "a still answered right after 'pool web a down': %s" % got)
    m = lab.members("web")["a"]
    expect(m["state"] == "DOWN" and m["healthy"] and m["override"] == "down",
           "tandemctl does not show a DOWN by override with passing checks", m)
    text = lab.ctl("pool", "web").stdout
    expect(any(l.split()[:1] == ["a"] and "down" in l.split() and "passing" in l.split() for l in text.splitlines()),
           "tandemctl pool web (text) does not show a's override", text)
    hold = time.monotonic() + INTERVAL * (RISE + 1)     # checks keep passing: the override holds
    while time.monotonic() < hold:
        got = lab.addrs("www")
        expect(got == WEB_ALL - {a}, "a came back while overridden down: %s" % got)
        time.sleep(0.02)
    r = lab.ctl("pool", "web", "a", "auto")
    expect(r.returncode == 0, "pool web a auto failed", r.stdout, r.stderr)
    expect(lab.addrs("www") == WEB_ALL, "a not answered right after 'pool web a auto'")
    log("    down: a gone on the first query (%.1f ms after tandemctl returned); auto: back at once"
        % (gone * 1000))

    # up: c's server dies, its checks fail, it stays in the answer.
    r = lab.ctl("pool", "web", "c", "up")
    expect(r.returncode == 0, "pool web c up failed", r.stdout, r.stderr)
    t0 = lab.http[c].kill()
    while time.monotonic() < t0 + LEAVE_BOUND + 0.5:
        got = lab.addrs("www")
        expect(got == WEB_ALL, "with 'up' overriding, c's failing checks changed the answer to %s" % got)
        time.sleep(0.02)
    m = lab.members("web")["c"]
    expect(m["state"] == "UP" and not m["healthy"] and m["override"] == "up" and m["checks_failed"] >= FALL,
           "tandemctl does not show c UP by override with failing checks", m)
    expect("pool web member c DOWN after" in lab.stderr(), "c's health change was not logged under the override")
    r = lab.ctl("pool", "web", "c", "auto")
    expect(r.returncode == 0, "pool web c auto failed", r.stdout, r.stderr)
    expect(lab.addrs("www") == WEB_ALL - {c}, "c (failing) still answered right after 'auto'")
    for bad_args, what in ((("web", "nosuch", "down"), "an unknown member"),
                           (("nosuch", "a", "down"), "an unknown pool"),
                           (("web", "a", "sideways"), "a bad state")):
        r = lab.ctl("pool", *bad_args)
        expect(r.returncode != 0, "tandemctl pool %s succeeded for %s" % (" ".join(bad_args), what), r.stdout)
    log("    up: c kept in the answer for %.2f s of failing checks (%d failed); auto: dropped at once"
        % (LEAVE_BOUND + 0.5, m["checks_failed"]))
    lab.restore_web()
    return "down/auto/up as expected"


def check_v6_and_other_types(lab, log):
    v6 = {a for _, a in MIXED if ":" in a}
    v4 = {a for _, a in MIXED if ":" not in a}
    expect(lab.addrs("mixed", "AAAA") == v6, "mixed AAAA is %s, not %s" % (lab.addrs("mixed", "AAAA"), v6))
    expect(lab.addrs("mixed", "A") == v4, "mixed A is %s, not %s" % (lab.addrs("mixed", "A"), v4))
    r = lab.query("mixed", dns.rdatatype.AAAA)
    expect(all(rr.ttl == 60 for rr in r.answer), "mixed AAAA not at the pooled TTL 60", r)
    # TXT: from the zone at www; NODATA at a pooled name the zone does not hold.
    r = lab.query("www", dns.rdatatype.TXT)
    txt = [b"".join(rd.strings) for rrset in r.answer for rd in rrset]
    expect(r.rcode() == dns.rcode.NOERROR and txt == [b"web front"], "www TXT is not the zone's", r)
    for name in ("mixed", "wtd"):
        r = lab.query(name, dns.rdatatype.TXT)
        expect(r.rcode() == dns.rcode.NOERROR and not r.answer
               and any(rr.rdtype == dns.rdatatype.SOA for rr in r.authority),
               "%s TXT is not NODATA (NOERROR, SOA in authority)" % name, r)
    r = lab.query("nosuch", dns.rdatatype.A)
    expect(r.rcode() == dns.rcode.NXDOMAIN, "an unpooled missing name is not NXDOMAIN", r)
    # An http-checked IPv6 member on ::1, and one that cannot be reached.
    lab.wait_member("six", "gone6", timeout=LEAVE_BOUND + 5, state="DOWN")
    m = lab.wait_member("six", "lo6", timeout=5, state="UP", healthy=True)
    lab.wait_answer("six", {"::1"}, rdtype="AAAA", timeout=5)
    r = lab.query("six", dns.rdatatype.A)
    expect(r.rcode() == dns.rcode.NOERROR and not r.answer, "six A (no IPv4 member) is not NODATA", r)
    log("    AAAA mixed %s, A mixed %s; www TXT from the zone; TXT NODATA; six AAAA ::1 (http check over IPv6, %.2f ms)"
        % (sorted(v6), sorted(v4), m["latency_ms"]))
    return "AAAA/TXT/NODATA as expected"


def check_extras(lab, log):
    lab.restore_web()
    # A CNAME in the zone that leads to a pooled name ends in its pool.
    r = lab.query("alias", dns.rdatatype.A)
    cname = [rrset for rrset in r.answer if rrset.rdtype == dns.rdatatype.CNAME]
    addrs = {rd.address for rrset in r.answer if rrset.rdtype == dns.rdatatype.A for rd in rrset}
    expect(r.rcode() == dns.rcode.NOERROR and cname and addrs == WEB_ALL,
           "alias A does not follow the CNAME into the web pool", r)
    # max_answers caps an all-healthy answer.
    got = lab.addrs("cap")
    expect(got == {a for _, a in CAP[:2]}, "cap (max_answers 2) answered %s" % got)
    # Over TCP, and with the question in another case.
    q = dns.message.make_query("www.%s." % ZONE, dns.rdatatype.A)
    r = dns.query.tcp(q, lab.dns[0], port=lab.dns[1], timeout=2)
    expect({rd.address for rrset in r.answer for rd in rrset} == WEB_ALL, "www A over TCP", r)
    r = procs.udp_query(lab.dns, "WwW.ExAmPlE.CoM.", dns.rdatatype.A)
    expect({rd.address for rrset in r.answer for rd in rrset} == WEB_ALL and r.answer
           and r.answer[0].name.to_text() == "WwW.ExAmPlE.CoM.", "www A asked in mixed case", r)
    log("    CNAME into the pool, max_answers 2, TCP and mixed-case questions answered from the pool")
    return "CNAME, max_answers, TCP, case as expected"


def run_checks(lab, log):
    failed = 0
    for title, fn in (("(1) http check, all-healthy: kill and restart a member", check_http_all_healthy),
                      ("(2) every member down", check_all_down),
                      ("(3) weighted 3:1 and failover", check_weighted_failover),
                      ("(4) tcp and dns checks", check_tcp_dns),
                      ("(5) https with a self-signed certificate", check_https),
                      ("(6) operator overrides", check_overrides),
                      ("(7) AAAA and other types at pooled names", check_v6_and_other_types),
                      ("(8) CNAME into a pool, max_answers, TCP, case", check_extras)):
        log(title)
        try:
            summary = fn(lab, log)
            log("  ok: %s" % summary)
        except Failure as e:
            failed += 1
            log("  FAILED: %s" % e)
            try:
                lab.restore_web()
            except (Failure, procs.ServerError) as e2:
                log("  (could not restore the web pool: %s)" % e2)
        if lab.tandem is not None and not lab.tandem.alive():
            log("tandemd died; stderr:\n%s" % lab.tandem.stderr_text())
            return failed + 1
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

    lab = None
    failed = 0
    with procs.TempDir(prefix="tandem-pools-", keep=args.keep) as workdir:
        try:
            lab = Lab(args, workdir, log)
            try:
                lab.start()
            except (procs.ServerError, RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                log("could not start the servers: %s" % e)
                return 2
            failed = run_checks(lab, log)
            if failed:
                log("tandemd's log (tail):\n%s" % lab.tandem.stderr_text(limit=6000))
        finally:
            if lab is not None:
                lab.stop()
    log("pools: %s" % ("all checks passed" if failed == 0 else "%d checks failed" % failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
