"""The zone and the query mix of the side-by-side benchmark (bench/compare.py).

The zone has the shape of bench/answer_bench.cc's: hosts h0..hN-1 with an A record each,
an AAAA on three hosts in eight (answer_bench: one in four; so that a million hosts make
1.375 million records, the zone size of earlier memory measurements), a wildcard, a CNAME, a delegation with glue and
a TXT record. The query mix is answer_bench's: 60% existing A, 15% existing AAAA, 10%
NXDOMAIN, 5% wildcard, 4% CNAME, 3% referral, 3% TXT; one query per line as
"NAME TYPE", which both dnsperf and kxdpgun read.
"""

import random

ORIGIN = "bench.test"
MIX_TEXT = ("60% A and 15% AAAA of existing hosts, 10% NXDOMAIN, 5% wildcard, 4% CNAME, "
            "3% referral, 3% TXT (bench/answer_bench.cc's mix)")

_HEAD = """$ORIGIN bench.test.
$TTL 300
@ SOA ns1 hostmaster 1 7200 900 1209600 300
@ NS ns1
ns1 A 192.0.2.1
*.wild A 192.0.2.2
alias CNAME h1
sub NS ns.sub
ns.sub A 192.0.2.3
txt TXT "hello world"
"""
_HEAD_RECORDS = 8


def has_aaaa(i):
    return i % 8 < 3


def write_zone(path, names):
    """Writes the zone with `names` hosts; returns its number of records."""
    records = _HEAD_RECORDS
    with open(path, "w") as f:
        f.write(_HEAD)
        chunk = []
        for i in range(names):
            chunk.append("h%d A 10.%d.%d.%d\n" % (i, (i >> 16) & 255, (i >> 8) & 255, i & 255))
            if has_aaaa(i):
                chunk.append("h%d AAAA 2001:db8::%x:%x\n" % (i, i >> 16, i & 0xffff))
            if len(chunk) >= 8192:
                f.write("".join(chunk))
                records += len(chunk)
                chunk = []
        f.write("".join(chunk))
        records += len(chunk)
    return records


def write_queries(path, names, count, seed=42):
    """Writes `count` queries of the mix over a zone of `names` hosts."""
    rng = random.Random(seed)
    lines = []
    for _ in range(count):
        r = rng.randrange(100)
        h = rng.randrange(names)
        if r < 60:
            lines.append("h%d.bench.test A" % h)
        elif r < 75:
            k = h - h % 8 + rng.randrange(3)
            lines.append("h%d.bench.test AAAA" % (k if k < names else h - h % 8))
        elif r < 85:
            lines.append("nx%d.bench.test A" % h)
        elif r < 90:
            lines.append("w%d.wild.bench.test A" % h)
        elif r < 94:
            lines.append("alias.bench.test A")
        elif r < 97:
            lines.append("x%d.sub.bench.test A" % h)
        else:
            lines.append("txt.bench.test TXT")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return count
