#!/usr/bin/python3
"""Response rate limiting end to end: tandemd in socket mode with [rrl], bursts of UDP
queries from loopback clients, every answer classified (whole, slipped with TC, dropped)
and checked against the configured rate, slip, prefixes and kinds of answer; TCP is never
limited; the counters reach tandemctl stats and /metrics; without [rrl] nothing is limited.

    /usr/bin/python3 tests/integration/test_rrl.py --tandemd build/tandemd \
        --tandemctl build/tandemctl

Exit status: 0 when every check passes, 1 when one fails, 2 when the test could not run.
"""

import argparse
import os
import select
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.flags     # noqa: E402
import dns.message   # noqa: E402
import dns.query     # noqa: E402
import dns.rcode     # noqa: E402
import dns.rdatatype  # noqa: E402

import procs  # noqa: E402
from procs import Failure, expect  # noqa: E402

ZONE = "rrl.test"
RATE = 10
SLIP = 2


class Burst:
    """What came back for a burst of UDP queries from one client socket."""

    def __init__(self):
        self.sent = 0
        self.whole = 0      # full answers
        self.slipped = 0    # TC set, no records, the question echoed
        self.other = []     # anything else (a failure)
        self.elapsed = 0.0
        self.start = self.end = 0.0  # monotonic: first and last query sent

    @property
    def dropped(self):
        return self.sent - self.whole - self.slipped - len(self.other)

    def __repr__(self):
        return ("sent %d: whole %d, slipped %d, dropped %d, other %d in %.3f s"
                % (self.sent, self.whole, self.slipped, self.dropped, len(self.other), self.elapsed))


def burst(server, names, rdtype="A", source="127.0.0.1", expect_rcode=dns.rcode.NOERROR):
    """Sends one query per entry of `names` from one socket bound to `source`, as fast as
    the socket takes them (bounded by len(names)), then collects replies until none has
    come for 0.25 s (at most 2 s)."""
    b = Burst()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind((source, 0))
    s.setblocking(False)
    queries = {}
    start = b.start = time.monotonic()
    try:
        for i, name in enumerate(names):
            q = dns.message.make_query(name, rdtype)
            q.id = i
            queries[i] = q
            s.sendto(q.to_wire(), server)
            b.sent += 1
        b.end = time.monotonic()
        b.elapsed = b.end - start
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            ready, _, _ = select.select([s], [], [], 0.25)
            if not ready:
                break
            data = s.recv(65535)
            r = dns.message.from_wire(data)
            q = queries.get(r.id)
            if q is None or r.question != q.question:
                b.other.append("id %d: unknown or wrong question" % r.id)
            elif r.flags & dns.flags.TC:
                if r.answer or r.authority or r.additional:
                    b.other.append("id %d: TC with records" % r.id)
                else:
                    b.slipped += 1
            elif r.rcode() == expect_rcode:
                b.whole += 1
            else:
                b.other.append("id %d: rcode %s" % (r.id, dns.rcode.to_text(r.rcode())))
    finally:
        s.close()
    return b


def check_limited(b, what, allowance):
    """`allowance` answers whole (plus the refill while the burst was sent); of the rest,
    every SLIP-th slipped, the others dropped."""
    expect(not b.other, "%s: unexpected replies: %s" % (what, b.other[:5]))
    refill = int(b.elapsed * RATE) + 1
    expect(allowance <= b.whole <= allowance + refill,
           "%s: %d whole answers, expected %d (+%d refill): %r" % (what, b.whole, allowance, refill, b))
    limited = b.sent - b.whole
    expect(abs(b.slipped - limited // SLIP) <= 1,
           "%s: %d slipped of %d limited, expected every %dth: %r" % (what, b.slipped, limited, SLIP, b))


def tcp_answers(server, name, count):
    ok = 0
    for _ in range(count):
        r = dns.query.tcp(dns.message.make_query(name, "A"), server[0], port=server[1], timeout=2.0)
        if r.rcode() == dns.rcode.NOERROR and r.answer:
            ok += 1
    return ok


def write_zone(path):
    procs.write_zone(path, ZONE, 1, ["*.wild IN A 192.0.2.20", "big IN TXT \"%s\"" % ("x" * 200)])


def run(args, workdir):
    zone_file = os.path.join(workdir, "rrl.test.zone")
    write_zone(zone_file)
    sock = os.path.join(workdir, "control.sock")
    metrics_port = procs.free_port()

    def config(port):
        return (procs.tandem_config_zones(port, [(ZONE, zone_file)], sock, os.path.join(workdir, "state"))
                + '\n[rrl]\nrate = %d\nslip = %d\nipv4_prefix = 24\n' % (RATE, SLIP)
                + '\n[metrics]\nlisten = "127.0.0.1:%d"\n' % metrics_port)

    srv = procs.start_tandemd_with(args.tandemd, workdir, ZONE, config, name="tandemd-rrl")
    try:
        server = srv.addr
        time.sleep(1.1)  # the start-up SOA probes used some of 127.0.0.0/24's allowance
        www = "www.%s." % ZONE

        # One name, one prefix: RATE whole, then every SLIP-th slipped.
        b1 = burst(server, [www] * 200)
        print("127.0.0.1, www A x200:", b1)
        check_limited(b1, "one name from one client", RATE)

        # The same prefix (another address in 127.0.0.0/24) has nothing left for that name...
        b2 = burst(server, [www] * 20, source="127.0.0.2")
        print("127.0.0.2, www A x20:", b2)
        expect(b2.whole <= int((b2.end - b1.end) * RATE) + 1 and not b2.other,
               "127.0.0.2 shares 127.0.0.1's /24 bucket, yet: %r" % b2)
        # ...but another name has its own bucket, and another /24 its own.
        b3 = burst(server, ["ns1.%s." % ZONE] * 40)
        print("127.0.0.1, ns1 A x40:", b3)
        check_limited(b3, "another name", RATE)
        b4 = burst(server, [www] * 40, source="127.0.1.1")
        print("127.0.1.1, www A x40:", b4)
        check_limited(b4, "another /24", RATE)

        # NXDOMAIN for random names shares one bucket per prefix.
        b5 = burst(server, ["nx%d.%s." % (i, ZONE) for i in range(60)], source="127.0.2.1",
                   expect_rcode=dns.rcode.NXDOMAIN)
        print("127.0.2.1, 60 random NXDOMAIN:", b5)
        check_limited(b5, "random NXDOMAIN names", RATE)

        # TCP is never limited, and the exhausted client gets its answer there.
        n = tcp_answers(server, www, 30)
        expect(n == 30, "TCP: %d of 30 answered while UDP is limited" % n)

        # A second later the bucket holds a second's worth again.
        time.sleep(1.1)
        b6 = burst(server, [www] * 40)
        print("127.0.0.1 after 1.1 s, www A x40:", b6)
        check_limited(b6, "after a second", RATE)

        bursts = [b1, b2, b3, b4, b5, b6]
        dropped = sum(b.dropped for b in bursts)
        slipped = sum(b.slipped for b in bursts)
        stats = procs.tandemctl_json(args.tandemctl, sock, "stats")
        expect(stats.get("ok"), "tandemctl stats failed: %r" % stats)
        totals = stats.get("totals") or stats.get("total") or {}
        print("tandemctl stats: rrl_dropped %s, rrl_slipped %s (client saw %d dropped, %d slipped)"
              % (totals.get("rrl_dropped"), totals.get("rrl_slipped"), dropped, slipped))
        expect(totals.get("rrl_slipped") == slipped,
               "tandemctl stats rrl_slipped %r, the clients saw %d" % (totals.get("rrl_slipped"), slipped))
        expect(totals.get("rrl_dropped") == dropped,
               "tandemctl stats rrl_dropped %r, the clients saw %d" % (totals.get("rrl_dropped"), dropped))
        text = procs.scrape_metrics(("127.0.0.1", metrics_port))
        m_dropped = procs.metric_value(text, "tandem_rrl_responses_total", action="dropped")
        m_slipped = procs.metric_value(text, "tandem_rrl_responses_total", action="slipped")
        expect(m_dropped == dropped and m_slipped == slipped,
               "/metrics: dropped %r slipped %r, the clients saw %d and %d"
               % (m_dropped, m_slipped, dropped, slipped))
    finally:
        procs.stop_process(srv.proc)

    # Without [rrl] nothing is limited.
    def plain(port):
        return procs.tandem_config_zones(port, [(ZONE, zone_file)], "", os.path.join(workdir, "state2"))

    srv = procs.start_tandemd_with(args.tandemd, workdir, ZONE, plain, name="tandemd-plain")
    try:
        b = burst(srv.addr, ["www.%s." % ZONE] * 300)
        print("no [rrl], www A x300:", b)
        expect(b.whole == 300, "without [rrl] every query is answered whole: %r" % b)
    finally:
        procs.stop_process(srv.proc)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tandemd", required=True)
    p.add_argument("--tandemctl", required=True)
    args = p.parse_args()
    procs.stop_on_sigterm()
    with procs.TempDir("tandem-rrl-") as workdir:
        try:
            run(args, workdir)
        except Failure as e:
            print("FAIL:", e)
            return 1
        except procs.ServerError as e:
            print("could not run:", e)
            return 2
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
