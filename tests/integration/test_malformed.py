#!/usr/bin/python3
"""Malformed and unusual packets, and TCP abuse, against tandemd, with Knot DNS and NSD
as the reference.

    /usr/bin/python3 tests/integration/test_malformed.py --tandemd build/tandemd

1. Packets. tandemd (socket mode), knotd and NSD (rrl-ratelimit: 0) serve the same zone
   on loopback ports. Every case below is sent to the three over UDP and over TCP (a fresh
   connection each): QR set, QDCOUNT 0 and 2, ANCOUNT non-zero, every opcode 0-15, EDNS
   version 1, two OPT records, unknown EDNS options and flags, bad option lengths,
   classes CH/ANY/NONE/unknown, QTYPE 0 and 65535, AXFR and IXFR, qtypes OPT/RRSIG/ANY,
   compression loops and forward pointers, labels over 63, names over 255, truncated
   headers and questions, trailing bytes, NOTIFY from a stranger, ... Each server's
   behaviour is "none" (no answer: silence, or the TCP connection closed) or the rcode
   of its answer. A table of the three is printed. tandem must match Knot DNS or NSD on
   every case (or the case is listed in KNOWN_DIFFERENCES, printed apart; it is empty),
   and after every case tandemd must still run and answer a normal query over UDP and TCP
   within 1 s. The three tell the same CHAOS identity and hide their version, and their
   id.server and hostname.bind TXT records are compared record by record.
2. TCP abuse, tandemd alone (tcp_max_connections = 300, tcp_idle_timeout = 6s). While
   each of these goes on, a UDP and a TCP query from another client must be answered
   within 1 s: 299 idle connections (up to the cap); 40 more past the cap (tandem closes
   them at once); 20 slow writers (a query written one byte per 100 ms, answered at the
   end); partial length prefixes and a length announcing more than is sent; pipelined
   floods of 2000 queries on one connection, round after round for 2 s (every query
   answered, in order). The idle connections are closed by tandem after the idle timeout.

Everything listens on 127.0.0.1; processes are stopped by pid; every wait has a deadline.

Exit status: 0 when every check passes, 1 when one fails, 2 when the test could not run,
77 (skipped) when knotd or nsd is not installed.
"""

import argparse
import concurrent.futures
import os
import select
import shutil
import signal
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.exception  # noqa: E402
import dns.message  # noqa: E402
import dns.rcode  # noqa: E402

import procs  # noqa: E402

ZONE = "example.com"
LOOPBACK = procs.LOOPBACK
TCP_CAP = 300
IDLE_TIMEOUT = 6.0
REPLY_TIMEOUT = 0.7     # no reply by then: "none"
PROMPT = 1.0            # another client's query must be answered within this

ZONE_TEXT = """\
$ORIGIN example.com.
$TTL 300
@        SOA   ns1 hostmaster 2024010101 3600 600 86400 300
@        NS    ns1
@        MX    10 mail
ns1      A     192.0.2.1
mail     A     192.0.2.25
www      A     192.0.2.80
www      AAAA  2001:db8::80
alias    CNAME www
*.wild   TXT   "wildcard"
"""

# Cases where tandem is known to differ from both Knot DNS and NSD, each reported; the
# test prints them but does not fail on them. Keys are "case/transport". Empty: tandem
# answers every case as Knot DNS or NSD does (docs/conformance.md says which and why).
KNOWN_DIFFERENCES = {}

# CHAOS identity: the three servers tell the same identity and hide their version, so
# that both branches are compared (tandem hides both by default; Knot DNS and NSD tell
# both by default; each can be configured either way).
IDENTITY = "ns1.example.com"
KNOT_IDENTITY = '    identity: "%s"\n    version: ""\n' % IDENTITY
NSD_IDENTITY = '    identity: "%s"\n    hide-version: yes\n' % IDENTITY


# ---------------------------------------------------------------------------------------
# Packet construction: raw bytes, so that anything can be malformed.

def name(text):
    if text in ("", "."):
        return b"\x00"
    out = b""
    for label in text.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def header(qid=0x4d41, flags=0, opcode=0, qd=1, an=0, ns=0, ar=0):
    return struct.pack("!HHHHHH", qid, flags | (opcode << 11), qd, an, ns, ar)


def question(qname="www.example.com", qtype=1, qclass=1):
    return (qname if isinstance(qname, bytes) else name(qname)) + struct.pack("!HH", qtype, qclass)


def opt(udp=1232, ext_rcode=0, version=0, flags=0, options=b"", owner=b"\x00", rdlen=None):
    ttl = ext_rcode << 24 | version << 16 | flags
    return owner + struct.pack("!HHIH", 41, udp, ttl, len(options) if rdlen is None else rdlen) + options


def option(code, data, length=None):
    return struct.pack("!HH", code, len(data) if length is None else length) + data


def query(qname="www.example.com", qtype=1, qclass=1, opcode=0, flags=0, ar=b"", arcount=None,
          an=b"", ancount=None, qd=1):
    ar_n = (1 if ar else 0) if arcount is None else arcount
    an_n = (1 if an else 0) if ancount is None else ancount
    return header(flags=flags, opcode=opcode, qd=qd, an=an_n, ar=ar_n) + \
        question(qname, qtype, qclass) + an + ar


def a_record(owner=b"\xc0\x0c", addr=(192, 0, 2, 1)):
    return owner + struct.pack("!HHIH", 1, 1, 300, 4) + bytes(addr)


def soa_record(owner=b"\xc0\x0c", serial=2024010100):
    rdata = name("ns1.example.com") + name("hostmaster.example.com") + \
        struct.pack("!IIIII", serial, 3600, 600, 86400, 300)
    return owner + struct.pack("!HHIH", 6, 1, 300, len(rdata)) + rdata


QR, AA, TC, RD, CD = 0x8000, 0x0400, 0x0200, 0x0100, 0x0010


def build_cases():
    """[(name, bytes)]: every malformed or unusual packet."""
    c = []
    base = query()
    c.append(("normal", base))
    c.append(("qr-set", query(flags=QR)))
    c.append(("qr-set-with-rcode", query(flags=QR | 3)))
    c.append(("qdcount-0", header(qd=0)))
    c.append(("qdcount-0-with-opt", header(qd=0, ar=1) + opt()))
    c.append(("qdcount-2", header(qd=2) + question() + question("example.com", 6)))
    c.append(("qdcount-2-one-present", header(qd=2) + question()))
    c.append(("ancount-1-record", query(an=a_record())))
    c.append(("ancount-1-missing", query(ancount=1)))
    c.append(("nscount-1-record", header(ns=1) + question() + a_record()))
    for op in range(16):
        c.append(("opcode-%d" % op, query("example.com", 6, opcode=op)))
    c.append(("notify-from-stranger", query("example.com", 6, opcode=4, flags=AA)))
    c.append(("notify-with-soa", query("example.com", 6, opcode=4, flags=AA, an=soa_record())))
    c.append(("notify-other-zone", query("example.net", 6, opcode=4, flags=AA)))
    c.append(("edns-version-1", query(ar=opt(version=1))))
    c.append(("edns-version-255", query(ar=opt(version=255))))
    c.append(("edns-two-opt", query(ar=opt() + opt(), arcount=2)))
    c.append(("edns-unknown-option", query(ar=opt(options=option(65001, b"abcd")))))
    c.append(("edns-unknown-flags", query(ar=opt(flags=0x7fff))))
    c.append(("edns-do-and-unknown-flags", query(ar=opt(flags=0xffff))))
    c.append(("edns-option-length-over", query(ar=opt(options=option(65001, b"abcd", length=9)))))
    c.append(("edns-option-length-under", query(ar=opt(options=option(65001, b"abcd", length=2)))))
    c.append(("edns-option-header-cut", query(ar=opt(options=b"\xfd\xe9\x00"))))
    c.append(("edns-rdlen-past-end", query(ar=opt(rdlen=40))))
    c.append(("edns-owner-not-root", query(ar=opt(owner=name("example.com")))))
    c.append(("edns-udp-size-0", query(ar=opt(udp=0))))
    c.append(("edns-udp-size-100", query(ar=opt(udp=100))))
    c.append(("edns-ext-rcode-in-query", query(ar=opt(ext_rcode=1))))
    c.append(("edns-cookie-short", query(ar=opt(options=option(10, b"\x01\x02\x03")))))
    c.append(("edns-cookie-client", query(ar=opt(options=option(10, b"\x01" * 8)))))
    c.append(("edns-nsid", query(ar=opt(options=option(3, b"")))))
    c.append(("edns-ecs-bad-family", query(ar=opt(options=option(8, b"\x00\x07\x18\x00\xc0\x00\x02")))))
    c.append(("edns-opt-in-answer", query(an=opt())))
    c.append(("edns-opt-in-authority", header(ns=1) + question() + opt()))
    c.append(("edns-opt-in-answer-and-additional", query(an=opt(), ar=opt())))
    c.append(("edns-arcount-missing", query(arcount=1)))
    c.append(("class-ch", query("version.bind", 16, 3)))
    c.append(("class-ch-version-server", query("version.server", 16, 3)))
    c.append(("class-ch-id-server", query("id.server", 16, 3)))
    c.append(("class-ch-hostname-bind", query("hostname.bind", 16, 3)))
    c.append(("class-ch-id-server-upper", query("ID.SERVER", 16, 3)))
    c.append(("class-ch-id-server-a", query("id.server", 1, 3)))
    c.append(("class-ch-id-server-any", query("id.server", 255, 3)))
    c.append(("class-ch-authors-bind", query("authors.bind", 16, 3)))
    c.append(("class-ch-id-server-edns", query("id.server", 16, 3, ar=opt())))
    c.append(("class-ch-zone-name", query("www.example.com", 1, 3)))
    c.append(("class-any", query(qclass=255)))
    c.append(("class-none", query(qclass=254)))
    c.append(("class-unknown", query(qclass=1234)))
    c.append(("class-0", query(qclass=0)))
    c.append(("qtype-0", query(qtype=0)))
    c.append(("qtype-65535", query(qtype=65535)))
    c.append(("qtype-opt", query(qtype=41)))
    c.append(("qtype-rrsig", query(qtype=46)))
    c.append(("qtype-any", query(qtype=255)))
    c.append(("qtype-any-apex", query("example.com", 255)))
    c.append(("qtype-tsig", query(qtype=250)))
    c.append(("qtype-tkey", query(qtype=249)))
    c.append(("qtype-maila", query(qtype=254)))
    c.append(("axfr", query("example.com", 252)))
    c.append(("ixfr", header(ns=1) + question("example.com", 251) + soa_record()))
    c.append(("ixfr-no-soa", query("example.com", 251)))
    c.append(("name-pointer-loop", header() + b"\xc0\x0c" + struct.pack("!HH", 1, 1)))
    c.append(("name-pointer-forward", header() + b"\x03www\xc0\x16" + struct.pack("!HH", 1, 1) + name("example.com")))
    c.append(("name-pointer-into-header", header() + b"\xc0\x02" + struct.pack("!HH", 1, 1)))
    c.append(("name-pointer-mutual", header() + b"\x01a\xc0\x10\xc0\x0c" + struct.pack("!HH", 1, 1)))
    c.append(("label-64", query(b"\x40" + b"a" * 64 + name("example.com"))))
    c.append(("label-type-0x40", query(b"\x41\x00")))
    c.append(("label-type-0x80", query(b"\x81" + b"a" + name("example.com"))))
    c.append(("name-256", query(b"".join(b"\x3f" + b"a" * 63 for _ in range(4)) + b"\x00")))
    c.append(("name-255", query(b"".join(b"\x3f" + b"a" * 63 for _ in range(3)) + b"\x3d" + b"a" * 61 + b"\x00")))
    c.append(("name-uppercase", query("WWW.EXAMPLE.COM")))
    c.append(("name-binary-label", query(b"\x03\x00\xff." + name("example.com"))))
    c.append(("empty", b""))
    c.append(("header-5-bytes", base[:5]))
    c.append(("header-11-bytes", base[:11]))
    c.append(("header-only-qd1", base[:12]))
    c.append(("header-only-qd2", header(qd=2)))
    c.append(("header-only-qd1-qr", header(flags=QR)))
    c.append(("question-name-cut", base[:18]))
    c.append(("question-no-type", base[:12 + len(name("www.example.com"))]))
    c.append(("question-type-cut", base[:-3]))
    c.append(("trailing-bytes", base + b"\x00\x00"))
    c.append(("trailing-garbage", base + b"garbage-after-the-question"))
    c.append(("tc-set", query(flags=TC)))
    c.append(("rd-cd-set", query(flags=RD | CD)))
    c.append(("z-bit-set", query(flags=0x0040)))
    c.append(("rcode-set-in-query", query(flags=5)))
    c.append(("out-of-zone", query("www.example.net")))
    c.append(("root-name", query(".", 2)))
    c.append(("nxdomain", query("nope.example.com")))
    return c


# ---------------------------------------------------------------------------------------
# Sending and describing.

class Outcome:
    def __init__(self, kind, rcode=None, detail=""):
        self.kind = kind        # "answer", "silent", "closed"
        self.rcode = rcode      # text, with the extended bits
        self.detail = detail

    @property
    def key(self):
        return self.rcode if self.kind == "answer" else "none"

    def __str__(self):
        if self.kind != "answer":
            return self.kind
        return self.rcode + (" " + self.detail if self.detail else "")


def describe(data):
    if len(data) < 12:
        return Outcome("answer", "SHORT(%d)" % len(data))
    flags = struct.unpack("!H", data[2:4])[0]
    rcode = flags & 0xf
    detail = []
    if not flags & QR:
        detail.append("noQR")
    if flags & TC:
        detail.append("TC")
    try:
        m = dns.message.from_wire(data, ignore_trailing=True)
        rcode = m.rcode()
        if m.answer:
            detail.append("an=%d" % sum(len(r) for r in m.answer))
    except (dns.exception.DNSException, ValueError, struct.error):
        detail.append("unparsed")
    try:
        text = dns.rcode.to_text(rcode)
    except (ValueError, dns.exception.DNSException):
        text = "RCODE%d" % rcode
    return Outcome("answer", text, " ".join(detail))


def udp_outcome(addr, wire, timeout=REPLY_TIMEOUT):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.connect(addr)
        s.send(wire)
        try:
            return describe(s.recv(65535))
        except socket.timeout:
            return Outcome("silent")
        except ConnectionRefusedError:
            return Outcome("closed", detail="ICMP unreachable")
    finally:
        s.close()


def recv_exactly(s, n, deadline):
    buf = b""
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("deadline")
        s.settimeout(left)
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def tcp_outcome(addr, wire, timeout=REPLY_TIMEOUT):
    s = socket.create_connection(addr, timeout=2.0)
    try:
        s.sendall(struct.pack("!H", len(wire)) + wire)
        deadline = time.monotonic() + timeout
        try:
            n = struct.unpack("!H", recv_exactly(s, 2, deadline))[0]
            return describe(recv_exactly(s, n, deadline))
        except socket.timeout:
            return Outcome("silent")
        except (EOFError, ConnectionResetError):
            return Outcome("closed")
    finally:
        s.close()


def normal_query_ok(addr, transport, timeout=PROMPT):
    """A plain A query answered NOERROR within `timeout` seconds: (ok, seconds, what)."""
    wire = header(qid=0x6f6b) + question()
    start = time.monotonic()
    try:
        o = udp_outcome(addr, wire, timeout) if transport == "udp" else tcp_outcome(addr, wire, timeout)
    except OSError as e:
        return False, time.monotonic() - start, "%s: %s" % (type(e).__name__, e)
    took = time.monotonic() - start
    return o.kind == "answer" and o.rcode == "NOERROR", took, str(o)


# ---------------------------------------------------------------------------------------
# Servers.

def start_tandem(tandemd, workdir, zone_file):
    state = os.path.join(workdir, "tandemd", "state")
    os.makedirs(state, exist_ok=True)

    def config(port):
        return f"""\
[server]
mode = "socket"
listen = ["{LOOPBACK}:{port}"]
workers = 1
state_dir = "{state}"
tcp_max_connections = {TCP_CAP}
tcp_idle_timeout = "{int(IDLE_TIMEOUT)}s"
identity = "{IDENTITY}"

[[zone]]
name = "{ZONE}"
file = "{zone_file}"
"""
    return procs.start_tandemd_with(tandemd, workdir, ZONE, config)


# ---------------------------------------------------------------------------------------
# Part 1: the packets.

class Failures:
    def __init__(self):
        self.items = []

    def add(self, text):
        print("FAIL: " + text, flush=True)
        self.items.append(text)


def check_alive(tandem, failures, after):
    if not tandem.alive():
        failures.add("tandemd exited (status %s) after %s; stderr:\n%s"
                     % (tandem.proc.returncode, after, tandem.stderr_text()))
        return False
    for transport in ("udp", "tcp"):
        ok, took, what = normal_query_ok(tandem.addr, transport)
        if not ok:
            failures.add("after %s, a normal %s query got %s in %.2f s" % (after, transport, what, took))
            return False
    return True


def run_packets(servers, failures):
    tandem = servers[0]
    cases = build_cases()
    rows = []
    differences = []
    known = []
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(servers))
    try:
        for case, wire in cases:
            for transport in ("udp", "tcp"):
                fn = udp_outcome if transport == "udp" else tcp_outcome
                futures = [pool.submit(fn, s.addr, wire) for s in servers]
                outcomes = []
                for f in futures:
                    try:
                        outcomes.append(f.result(timeout=10))
                    except Exception as e:  # noqa: BLE001: any error is an outcome here
                        outcomes.append(Outcome("error", detail=str(e)))
                matches = any(outcomes[0].key == o.key for o in outcomes[1:])
                label = "%s/%s" % (case, transport)
                rows.append((case, transport, outcomes, matches))
                if not matches:
                    entry = (label, wire, outcomes)
                    (known if label in KNOWN_DIFFERENCES else differences).append(entry)
                if not check_alive(tandem, failures, label):
                    return rows, differences, known
    finally:
        pool.shutdown(wait=True)
    return rows, differences, known


def check_chaos_answers(servers, failures):
    """The CHAOS identity answers themselves, not only their rcode: tandem's TXT record
    (owner as asked, class CH, TTL 0, the string) and its flags (AA clear) are Knot DNS's
    and NSD's."""
    import dns.flags
    import dns.query
    import dns.rdataclass
    for qname in ("id.server", "hostname.bind", "Id.Server"):
        seen = []
        for srv in servers:
            q = dns.message.make_query(qname, "TXT", rdclass=dns.rdataclass.CH, use_edns=False)
            try:
                r = dns.query.udp(q, srv.addr[0], port=srv.addr[1], timeout=PROMPT)
            except (OSError, dns.exception.DNSException) as e:
                failures.add("%s CH TXT to %s: %s" % (qname, srv.name, e))
                return
            seen.append((bool(r.flags & dns.flags.AA), [x.to_text() for x in r.answer]))
        print("  %s CH TXT: %s" % (qname, ", ".join("%s %s" % (srv.name, a) for srv, a in zip(servers, seen))))
        if any(a != seen[0] for a in seen[1:]):
            failures.add("%s CH TXT answered differently: %s" % (
                qname, "; ".join("%s: AA=%s %s" % (srv.name, *a) for srv, a in zip(servers, seen))))


def print_table(rows, names):
    widths = [28, 4] + [22] * len(names)
    head = ["case", "via"] + names + [""]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths + [5])))
    for case, transport, outcomes, matches in rows:
        cells = [case, transport] + [str(o)[:22] for o in outcomes]
        mark = "" if matches else "DIFF"
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths)) + "  " + mark)


# ---------------------------------------------------------------------------------------
# Part 2: TCP abuse.

class Prober:
    """Another client: a UDP and a TCP query every 200 ms while abuse goes on; records the
    slowest answer and any query not answered within PROMPT seconds."""

    def __init__(self, addr, transports=("udp", "tcp")):
        self.addr = addr
        self.transports = transports
        self.stop_flag = threading.Event()
        self.slowest = {"udp": 0.0, "tcp": 0.0}
        self.count = 0
        self.late = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop_flag.is_set():
            for transport in self.transports:
                ok, took, what = normal_query_ok(self.addr, transport)
                self.count += 1
                self.slowest[transport] = max(self.slowest[transport], took)
                if not ok:
                    self.late.append("%s: %s after %.2f s" % (transport, what, took))
            self.stop_flag.wait(0.2)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        # At least one round of probes overlaps what was measured, however short.
        deadline = time.monotonic() + 3.0
        while self.count < len(self.transports) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.stop_flag.set()
        self.thread.join(timeout=10)
        return False

    def report(self, what, failures):
        print("  %s: %d probe queries meanwhile, slowest udp %.3f s, tcp %.3f s"
              % (what, self.count, self.slowest["udp"], self.slowest["tcp"]), flush=True)
        for late in self.late[:5]:
            failures.add("during %s, another client's query was not answered in time: %s" % (what, late))


def connect_many(addr, n):
    socks = []
    for _ in range(n):
        s = socket.create_connection(addr, timeout=2.0)
        s.setblocking(False)
        socks.append(s)
    return socks


def closed_by_peer(s):
    """True when the server has closed (EOF or reset), without blocking."""
    try:
        r, _, _ = select.select([s], [], [], 0)
        if not r:
            return False
        return s.recv(1) == b""
    except (ConnectionResetError, BlockingIOError):
        return True
    except OSError:
        return True


def wait_closed(socks, timeout):
    """Seconds until every socket is closed by the peer, or None at the deadline."""
    start = time.monotonic()
    pending = list(socks)
    while pending and time.monotonic() - start < timeout:
        pending = [s for s in pending if not closed_by_peer(s)]
        if pending:
            time.sleep(0.05)
    return None if pending else time.monotonic() - start


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def abuse_idle(tandem, failures):
    print("TCP: %d idle connections and the prober's (cap %d), then 40 past the cap"
          % (TCP_CAP - 1, TCP_CAP), flush=True)
    idle = []
    over = []
    try:
        with Prober(tandem.addr) as p:
            idle = connect_many(tandem.addr, TCP_CAP - 1)  # the last slot is the prober's
            time.sleep(1.0)
            p.report("%d idle connections" % len(idle), failures)
        survivors = sum(1 for s in idle if not closed_by_peer(s))
        if survivors != len(idle):
            failures.add("%d of %d idle connections were closed before the idle timeout"
                         % (len(idle) - survivors, len(idle)))
        # Past the cap only UDP is probed: the cap holds for every TCP client. The one free
        # slot (the prober's) goes to one of the 40; tandem closes the other 39 at once.
        with Prober(tandem.addr, transports=("udp",)) as p:
            over = connect_many(tandem.addr, 40)
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:
                still_open = [s for s in over if not closed_by_peer(s)]
                if len(still_open) <= 1:
                    break
                time.sleep(0.05)
            p.report("40 connections past the cap", failures)
        print("  past the cap: %d of 40 closed by tandem" % (40 - len(still_open)), flush=True)
        if len(still_open) > 1:
            failures.add("%d connections past the cap were still open after 3 s" % (len(still_open) - 1))
        ok, took, what = normal_query_ok(tandem.addr, "udp")
        if not ok:
            failures.add("at the cap, UDP got %s" % what)
        start = time.monotonic()
        took = wait_closed(idle + still_open, IDLE_TIMEOUT + 4.0)
        if took is None:
            failures.add("idle connections still open %.0f s after the idle timeout" % 4.0)
        else:
            print("  idle connections closed by tandem %.1f s after the check (timeout %.0f s)"
                  % (time.monotonic() - start, IDLE_TIMEOUT), flush=True)
        ok, took, what = normal_query_ok(tandem.addr, "tcp")
        if not ok:
            failures.add("after the idle connections went, TCP got %s" % what)
    finally:
        close_all(idle + over)


def slow_writer(addr, qid, results, index):
    wire = header(qid=qid) + question()
    framed = struct.pack("!H", len(wire)) + wire
    try:
        s = socket.create_connection(addr, timeout=2.0)
        try:
            for b in framed:
                s.sendall(bytes([b]))
                time.sleep(0.1)
            deadline = time.monotonic() + 2.0
            n = struct.unpack("!H", recv_exactly(s, 2, deadline))[0]
            reply = recv_exactly(s, n, deadline)
            results[index] = struct.unpack("!H", reply[:2])[0] == qid
        finally:
            s.close()
    except (OSError, EOFError):
        results[index] = False


def abuse_slow_writers(tandem, failures):
    n = 20
    print("TCP: %d slow writers (one byte per 100 ms)" % n, flush=True)
    results = [None] * n
    threads = [threading.Thread(target=slow_writer, args=(tandem.addr, 0x5000 + i, results, i), daemon=True)
               for i in range(n)]
    with Prober(tandem.addr) as p:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=20)
        p.report("slow writers", failures)
    answered = sum(1 for r in results if r)
    print("  slow writers answered: %d of %d" % (answered, n), flush=True)
    if answered != n:
        failures.add("only %d of %d slow writers got their answer" % (answered, n))


def abuse_partial(tandem, failures):
    print("TCP: partial length prefixes and short messages", flush=True)
    socks = []
    try:
        with Prober(tandem.addr) as p:
            for i in range(30):
                s = socket.create_connection(tandem.addr, timeout=2.0)
                if i % 3 == 0:
                    s.sendall(b"\x00")                         # half a length prefix
                elif i % 3 == 1:
                    s.sendall(b"\x01\xf4" + b"x" * 10)          # 500 announced, 10 sent
                else:
                    s.sendall(b"\xff\xff" + b"\x00" * 1000)     # 65535 announced
                socks.append(s)
            time.sleep(1.5)
            p.report("30 partial messages", failures)
        took = wait_closed(socks, IDLE_TIMEOUT + 4.0)
        if took is None:
            failures.add("connections with partial messages still open after the idle timeout")
        else:
            print("  partial-message connections closed by tandem after %.1f s" % took, flush=True)
    finally:
        close_all(socks)


def abuse_flood(tandem, failures, count=2000, seconds=2.0):
    """Rounds of `count` pipelined queries on one connection (sent whole by one thread while
    the answers are read), for at least `seconds`, so that the probes overlap them."""
    print("TCP: pipelined floods of %d queries on one connection, for %.0f s" % (count, seconds), flush=True)
    queries = []
    for i in range(count):
        qname = "www.example.com" if i % 3 else "n%d.example.com" % i
        wire = header(qid=i) + question(qname, 1 if i % 2 else 28)
        queries.append(struct.pack("!H", len(wire)) + wire)
    blob = b"".join(queries)
    s = socket.create_connection(tandem.addr, timeout=5.0)
    sent_error = []

    def send_all():
        try:
            s.sendall(blob)
        except OSError as e:
            sent_error.append(e)

    rounds = answered = 0
    start = time.monotonic()
    try:
        with Prober(tandem.addr) as p:
            while rounds < 400 and (rounds == 0 or time.monotonic() - start < seconds):
                sender = threading.Thread(target=send_all, daemon=True)
                sender.start()
                deadline = time.monotonic() + 30.0
                ids = []
                try:
                    while len(ids) < count:
                        n = struct.unpack("!H", recv_exactly(s, 2, deadline))[0]
                        reply = recv_exactly(s, n, deadline)
                        ids.append(struct.unpack("!H", reply[:2])[0])
                except (socket.timeout, EOFError, OSError) as e:
                    failures.add("flood round %d: %s after %d answers" % (rounds + 1, e, len(ids)))
                sender.join(timeout=5)
                rounds += 1
                answered += len(ids)
                if sent_error:
                    failures.add("flood: sending failed: %s" % sent_error[0])
                if ids != list(range(len(ids))):
                    failures.add("flood round %d: answers out of order" % rounds)
                if len(ids) < count or sent_error:
                    break
            p.report("the floods", failures)
    finally:
        s.close()
    took = time.monotonic() - start
    print("  floods: %d rounds, %d of %d queries answered in %.2f s"
          % (rounds, answered, rounds * count, took), flush=True)


# ---------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tandemd", required=True)
    ap.add_argument("--knotd", default="knotd")
    ap.add_argument("--nsd", default="nsd")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    procs.stop_on_sigterm()
    for prog in (args.knotd, args.nsd):
        if shutil.which(prog) is None:
            print("SKIP: %s not found" % prog)
            return 77

    failures = Failures()
    servers = []
    with procs.TempDir(prefix="tandem-malformed-", keep=args.keep) as work:
        zone_file = os.path.join(work, "example.com.zone")
        with open(zone_file, "w") as f:
            f.write(ZONE_TEXT)
        try:
            try:
                servers.append(start_tandem(args.tandemd, work, zone_file))
                servers.append(procs.start_knotd(work, ZONE, zone_file, knotd=args.knotd,
                                                 server_extra=KNOT_IDENTITY))
                servers.append(procs.start_nsd(work, ZONE, zone_file, nsd=args.nsd,
                                               server_extra=NSD_IDENTITY))
            except procs.ServerError as e:
                print("could not start the servers: %s" % e)
                return 2
            names = [s.name for s in servers]
            print("servers: " + ", ".join("%s on %d" % (s.name, s.port) for s in servers), flush=True)

            start = time.monotonic()
            rows, differences, known = run_packets(servers, failures)
            print_table(rows, names)
            print("%d packets x 2 transports in %.1f s" % (len(build_cases()), time.monotonic() - start))
            for label, wire, outcomes in differences:
                failures.add("tandem differs from both Knot DNS and NSD on %s: %s; bytes %s"
                             % (label, ", ".join("%s %s" % (n, o) for n, o in zip(names, outcomes)), wire.hex()))
            for label, wire, outcomes in known:
                print("known difference %s (%s): %s; bytes %s"
                      % (label, KNOWN_DIFFERENCES[label],
                         ", ".join("%s %s" % (n, o) for n, o in zip(names, outcomes)), wire.hex()))
            check_chaos_answers(servers, failures)
            stale = [k for k in KNOWN_DIFFERENCES
                     if any("%s/%s" % (c, t) == k and m for c, t, _, m in rows)]
            for k in stale:
                print("note: %s is listed in KNOWN_DIFFERENCES but now matches" % k)

            if servers[0].alive():
                for s in servers[1:]:
                    s.stop()
                start = time.monotonic()
                abuse_idle(servers[0], failures)
                abuse_slow_writers(servers[0], failures)
                abuse_partial(servers[0], failures)
                abuse_flood(servers[0], failures)
                print("TCP abuse in %.1f s" % (time.monotonic() - start))
                check_alive(servers[0], failures, "the TCP abuse")
        finally:
            for s in servers:
                s.stop()
        if servers and servers[0].proc.returncode not in (0, None, -signal.SIGTERM):
            failures.add("tandemd exited with status %s; stderr:\n%s"
                         % (servers[0].proc.returncode, servers[0].stderr_text()))
        elif servers and "ERROR: AddressSanitizer" in servers[0].stderr_text(100000):
            failures.add("tandemd stderr has a sanitizer report:\n%s" % servers[0].stderr_text())

    if failures.items:
        print("%d failures" % len(failures.items))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
