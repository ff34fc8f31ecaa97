#!/usr/bin/python3
"""A scriptable primary for zone transfer tests (dnspython; 127.0.0.1 only).

It serves SOA queries (UDP and TCP), AXFR and IXFR (TCP) for one zone, from a set of
versions kept in memory, and can be told to misbehave, so that a secondary's failure paths
can be tested:

    fp = FakePrimary("example.test.", port)
    fp.add_version(small_zone("example.test.", 1))
    fp.start()                 # listener threads; fp.stop() closes everything
    fp.axfr_mode = "cut"       # half of the AXFR messages, then close the connection
    fp.ixfr_mode = "notimp"    # IXFR answered with NOTIMP
    fp.notify(("127.0.0.1", tandem_port))
    fp.requests                # [(transport, qtype text, client serial or None), ...]

AXFR modes:
  ok        the current version: SOA, records ..., SOA, in messages of `per_message` records
  cut       the first half of those messages, then the connection is closed
  refused   one message with rcode REFUSED
  outzone   the current version with `evil.example. A 192.0.2.66` (out of zone) inside
  mismatch  the current version closed by an SOA of another serial (current + 1)
  older     the version of serial `older_serial` (older than what the SOA query said)
IXFR modes:
  ok        incremental (RFC 1995) from the client's serial when that version is known,
            a single SOA when the client is up to date, else the whole zone AXFR-style
  notimp    one message with rcode NOTIMP
  chain     a broken sequence: two differences that do not connect (the first ends at
            serial current-1, the second starts at current-2), and the added records
            include `ixfr-only.<zone> A 192.0.2.99`, which no version has
  start     a sequence whose first difference starts at a serial the client does not
            have (client serial + 1000), adding `ixfr-only.<zone>` too
  truncated a correct incremental sequence without its closing SOA, then close
  cut       the whole zone AXFR-style, cut after half of the messages
SOA modes: ok, drop (no answer on UDP or TCP).

Also a CLI (serves a zone file until killed):

    /usr/bin/python3 fakeprimary.py --port 5300 --zone example.test. --file zone.db
"""

import argparse
import socket
import struct
import sys
import threading
import time

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

IN = dns.rdataclass.IN
SOA = dns.rdatatype.SOA
LOOPBACK = "127.0.0.1"


class Version:
    """One version of the zone: an SOA and the other records, as (name, ttl, rdata)."""

    def __init__(self, origin, records):
        self.origin = dns.name.from_text(origin) if isinstance(origin, str) else origin
        soas = [r for r in records if r[2].rdtype == SOA]
        if len(soas) != 1:
            raise ValueError("a version needs exactly one SOA, has %d" % len(soas))
        self.soa = soas[0]
        self.others = [r for r in records if r[2].rdtype != SOA]

    @property
    def serial(self):
        return self.soa[2].serial

    def keys(self):
        return {(n, ttl, rd) for n, ttl, rd in self.others}

    def rrsets(self):
        """{(name, rdtype): (ttl, {rdata text})} for checking answers."""
        out = {}
        for n, ttl, rd in [self.soa] + self.others:
            e = out.setdefault((n, rd.rdtype), (ttl, set()))
            e[1].add(rd.to_text())
        return out


def records_from_text(origin, text):
    """Parse a zone file text into [(name, ttl, rdata)] (absolute names)."""
    z = dns.zone.from_text(text, origin=origin, relativize=False, check_origin=True)
    out = []
    for name, node in sorted(z.nodes.items()):
        for rds in node.rdatasets:
            for rd in rds:
                out.append((name, rds.ttl, rd))
    return out


def rec(origin, owner, ttl, rdtype, text):
    """One record: owner relative to origin ('@' for the apex)."""
    o = dns.name.from_text(origin)
    name = o if owner == "@" else dns.name.from_text(owner, o)
    rd = dns.rdata.from_text(IN, rdtype, text, origin=o, relativize=False)
    return (name, ttl, rd)


def small_zone(origin, serial, refresh=2, retry=1, expire=600, minimum=60, extra=(), txt=0):
    """A small zone: SOA, NS, a few hosts, `extra` as [(owner, ttl, type, rdata text)],
    and `txt` TXT records (to make the zone large)."""
    r = [rec(origin, "@", 300, "SOA", "ns1 hostmaster %d %d %d %d %d" % (serial, refresh, retry, expire, minimum)),
         rec(origin, "@", 300, "NS", "ns1"),
         rec(origin, "@", 300, "NS", "ns2"),
         rec(origin, "ns1", 300, "A", "192.0.2.1"),
         rec(origin, "ns2", 300, "A", "192.0.2.2"),
         rec(origin, "www", 300, "A", "192.0.2.10"),
         rec(origin, "www", 300, "AAAA", "2001:db8::10"),
         rec(origin, "mail", 300, "A", "192.0.2.20"),
         rec(origin, "@", 300, "MX", "10 mail"),
         rec(origin, "@", 300, "TXT", '"serial %d"' % serial)]
    for i in range(40):
        r.append(rec(origin, "h%02d" % i, 300, "A", "198.51.100.%d" % (i + 1)))
    for owner, ttl, t, text in extra:
        r.append(rec(origin, owner, ttl, t, text))
    for i in range(txt):
        r.append(rec(origin, "t%05d" % i, 300, "TXT", '"%s"' % ("filler %05d " % i * 8)))
    return Version(origin, r)


def _rrset(name, ttl, rd):
    s = dns.rrset.RRset(name, IN, rd.rdtype)
    s.add(rd, ttl)
    return s


class FakePrimary:
    def __init__(self, origin, port, host=LOOPBACK, per_message=20):
        self.origin = dns.name.from_text(origin)
        self.host = host
        self.port = port
        self.per_message = per_message
        self.versions = {}
        self.current = None
        self.axfr_mode = "ok"
        self.ixfr_mode = "ok"
        self.soa_mode = "ok"
        self.older_serial = None
        self.requests = []
        self.errors = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        self._socks = []
        self._conns = set()

    # ---------------------------------------------------------------- control
    def add_version(self, version, make_current=True):
        with self._lock:
            self.versions[version.serial] = version
            if make_current:
                self.current = version.serial

    def set_current(self, serial):
        with self._lock:
            self.current = serial

    def version(self, serial=None):
        with self._lock:
            return self.versions[self.current if serial is None else serial]

    def count(self, qtype):
        with self._lock:
            return sum(1 for r in self.requests if r[1] == qtype)

    def start(self):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        for s in (u, t):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            u.bind((self.host, self.port))
            t.bind((self.host, self.port))
            t.listen(16)
        except OSError:
            u.close()
            t.close()
            raise
        u.settimeout(0.2)
        t.settimeout(0.2)
        self._socks = [u, t]
        self._stop.clear()
        for fn, s in ((self._udp_loop, u), (self._tcp_loop, t)):
            th = threading.Thread(target=fn, args=(s,), daemon=True)
            th.start()
            self._threads.append(th)
        return self

    def stop(self):
        self._stop.set()
        for th in self._threads:
            th.join(timeout=5)
        self._threads = []
        for s in self._socks:
            try:
                s.close()
            except OSError:
                pass
        self._socks = []
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.close()
            except OSError:
                pass

    def notify(self, addr, timeout=1.0, tries=3):
        """Send a NOTIFY (with our SOA) to addr; returns the reply's rcode or None."""
        v = self.version()
        q = dns.message.make_query(self.origin, SOA)
        q.set_opcode(dns.opcode.NOTIFY)
        q.flags = dns.flags.AA
        q.answer.append(_rrset(*v.soa))
        wire = q.to_wire()
        for _ in range(tries):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.settimeout(timeout)
                s.sendto(wire, addr)
                data, _ = s.recvfrom(65535)
                r = dns.message.from_wire(data)
                if r.id == q.id:
                    return r.rcode()
            except (OSError, dns.exception.DNSException):
                continue
            finally:
                s.close()
        return None

    # ---------------------------------------------------------------- serving
    def _log(self, transport, q, serial=None):
        qt = dns.rdatatype.to_text(q.question[0].rdtype) if q.question else "?"
        if q.opcode() != dns.opcode.QUERY:
            qt = dns.opcode.to_text(q.opcode())
        with self._lock:
            self.requests.append((transport, qt, serial))

    def _response(self, q, rcode=dns.rcode.NOERROR):
        r = dns.message.make_response(q)
        r.flags |= dns.flags.AA
        r.set_rcode(rcode)
        return r

    def _udp_loop(self, s):
        while not self._stop.is_set():
            try:
                data, peer = s.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                q = dns.message.from_wire(data)
            except Exception as e:  # noqa: BLE001 - a bad query is logged, never fatal
                self.errors.append("udp parse: %s" % e)
                continue
            self._log("udp", q)
            r = self._answer_simple(q)
            if r is not None:
                try:
                    s.sendto(r.to_wire(), peer)
                except OSError:
                    pass

    def _answer_simple(self, q):
        """SOA (or any non-transfer) query: None when it is to be dropped."""
        if q.opcode() != dns.opcode.QUERY or not q.question:
            return self._response(q, dns.rcode.NOTIMP)
        qq = q.question[0]
        if qq.rdtype == SOA:
            if self.soa_mode == "drop":
                return None
            if qq.name != self.origin:
                return self._response(q, dns.rcode.REFUSED)
            r = self._response(q)
            r.answer.append(_rrset(*self.version().soa))
            return r
        return self._response(q, dns.rcode.NOTIMP)

    def _tcp_loop(self, s):
        while not self._stop.is_set():
            try:
                c, _ = s.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            th = threading.Thread(target=self._tcp_conn, args=(c,), daemon=True)
            th.start()

    def _recv_exact(self, c, n):
        buf = b""
        while len(buf) < n:
            chunk = c.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def _tcp_conn(self, c):
        with self._lock:
            self._conns.add(c)
        try:
            c.settimeout(5.0)
            while not self._stop.is_set():
                hdr = self._recv_exact(c, 2)
                if hdr is None:
                    return
                data = self._recv_exact(c, struct.unpack("!H", hdr)[0])
                if data is None:
                    return
                q = dns.message.from_wire(data)
                msgs, close = self._answer_tcp(q)
                for m in msgs:
                    w = m if isinstance(m, bytes) else m.to_wire(max_size=65535)
                    c.sendall(struct.pack("!H", len(w)) + w)
                if close:
                    return
        except (OSError, dns.exception.DNSException) as e:
            self.errors.append("tcp: %s" % e)
        finally:
            with self._lock:
                self._conns.discard(c)
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def _messages(self, q, records):
        """Records [(name, ttl, rdata)] split into responses of per_message records."""
        out = []
        for i in range(0, len(records), self.per_message):
            r = self._response(q)
            for n, ttl, rd in records[i:i + self.per_message]:
                r.answer.append(_rrset(n, ttl, rd))
            out.append(r)
        if not out:
            out.append(self._response(q))
        return out

    def _whole(self, v):
        return [v.soa] + v.others + [v.soa]

    def _answer_tcp(self, q):
        """-> (messages, close the connection afterwards)."""
        if q.opcode() != dns.opcode.QUERY or not q.question:
            self._log("tcp", q)
            return [self._response(q, dns.rcode.NOTIMP)], False
        qq = q.question[0]
        if qq.rdtype == dns.rdatatype.AXFR:
            self._log("tcp", q)
            v = self.version()
            if self.axfr_mode == "refused":
                return [self._response(q, dns.rcode.REFUSED)], True
            seq = self._whole(v)
            if self.axfr_mode == "outzone":
                evil = (dns.name.from_text("evil.example."), 300,
                        dns.rdata.from_text(IN, "A", "192.0.2.66"))
                seq = seq[:len(seq) // 2] + [evil] + seq[len(seq) // 2:]
            elif self.axfr_mode == "mismatch":
                seq = seq[:-1] + [self._with_serial(v.soa, (v.serial + 1) & 0xFFFFFFFF)]
            elif self.axfr_mode == "older":
                seq = self._whole(self.version(self.older_serial))
            msgs = self._messages(q, seq)
            if self.axfr_mode == "cut":
                return msgs[:max(1, len(msgs) // 2)], True
            return msgs, False
        if qq.rdtype == dns.rdatatype.IXFR:
            have = None
            for rrset in q.authority:
                if rrset.rdtype == SOA and len(rrset):
                    have = rrset[0].serial
            self._log("tcp", q, have)
            return self._ixfr(q, have)
        r = self._answer_simple(q)
        return ([r] if r is not None else []), r is None

    def _diff(self, old, new):
        ok, nk = old.keys(), new.keys()
        dels = sorted(ok - nk, key=lambda x: (x[0], x[2].rdtype, x[2].to_text()))
        adds = sorted(nk - ok, key=lambda x: (x[0], x[2].rdtype, x[2].to_text()))
        return dels, adds

    def _with_serial(self, soa, serial):
        n, ttl, rd = soa
        return (n, ttl, rd.replace(serial=serial))

    def _ixfr(self, q, have):
        mode = self.ixfr_mode
        v = self.version()
        if mode == "notimp":
            return [self._response(q, dns.rcode.NOTIMP)], True
        if mode == "cut":
            msgs = self._messages(q, self._whole(v))
            return msgs[:max(1, len(msgs) // 2)], True
        if have is not None and have == v.serial and mode == "ok":
            return [self._messages(q, [v.soa])[0]], False
        old = self.versions.get(have) if have is not None else None
        if old is None and mode == "ok":
            return self._messages(q, self._whole(v)), False
        if old is None:
            old = v
        dels, adds = self._diff(old, v)
        bogus = rec(self.origin.to_text(), "ixfr-only", 300, "A", "192.0.2.99")
        if mode == "ok":
            seq = [v.soa, old.soa] + dels + [v.soa] + adds + [v.soa]
            return self._messages(q, seq), False
        if mode == "truncated":
            seq = [v.soa, old.soa] + dels + [v.soa] + adds
            return self._messages(q, seq), True
        if mode == "chain":
            mid1 = self._with_serial(v.soa, (v.serial - 1) & 0xFFFFFFFF)
            mid2 = self._with_serial(v.soa, (v.serial - 2) & 0xFFFFFFFF)
            seq = ([v.soa, old.soa] + dels + [mid1] + [bogus] +
                   [mid2] + [v.soa] + adds + [v.soa])
            return self._messages(q, seq), False
        if mode == "start":
            start = self._with_serial(old.soa, ((have or 0) + 1000) & 0xFFFFFFFF)
            seq = [v.soa, start] + dels + [v.soa] + adds + [bogus] + [v.soa]
            return self._messages(q, seq), False
        raise ValueError("unknown ixfr_mode %r" % mode)


def main(argv=None):
    ap = argparse.ArgumentParser(description="a scriptable primary for zone transfer tests")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--zone", required=True)
    ap.add_argument("--file", help="zone file (default: a small generated zone, serial 1)")
    ap.add_argument("--axfr-mode", default="ok")
    ap.add_argument("--ixfr-mode", default="ok")
    args = ap.parse_args(argv)
    if args.file:
        with open(args.file) as f:
            v = Version(args.zone, records_from_text(args.zone, f.read()))
    else:
        v = small_zone(args.zone, 1)
    fp = FakePrimary(args.zone, args.port)
    fp.add_version(v)
    fp.axfr_mode, fp.ixfr_mode = args.axfr_mode, args.ixfr_mode
    fp.start()
    print("serving %s serial %d on %s@%d" % (args.zone, v.serial, LOOPBACK, args.port), flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        fp.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
