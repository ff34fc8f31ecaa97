#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets: tests/fuzz/corpus/<target>/<name>.

    /usr/bin/python3 tests/fuzz/make_corpus.py

Seeds are real inputs: queries and responses made with dnspython, zone snippets, the
configs of config/examples, Ethernet frames carrying queries. Files are named after what
they hold and rewritten in place (inputs that libFuzzer found and that were kept as
regressions, named crash-*, are left alone). Deterministic: fixed IDs, TSIG signatures
made at a fixed time, and a fixed seed for the order dnspython writes an RRset's records in.
"""

import os
import random
import struct
import sys
import time

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.tsigkeyring

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def query(qname, qtype, qid=0x1234, edns=-1, payload=1232, want_dnssec=False, options=None,
          opcode=0, qclass="IN", rd=False):
    q = dns.message.make_query(qname, qtype, rdclass=qclass, use_edns=edns, payload=payload,
                               want_dnssec=want_dnssec, options=options)
    q.id = qid
    if not rd:
        q.flags &= ~dns.flags.RD
    q.set_opcode(opcode)
    return q.to_wire()


def header(qid=0x1234, flags=0, qd=1, an=0, ns=0, ar=0):
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def wire_name(text):
    return dns.name.from_text(text).to_wire()


def queries():
    """(name, bytes): the queries the handler seeds and the name seeds share."""
    q = []
    for name, qtype in [("www.example.com", "A"), ("WwW.ExAmPlE.cOm", "AAAA"),
                        ("example.com", "SOA"), ("example.com", "NS"), ("example.com", "MX"),
                        ("example.com", "ANY"), ("alias.example.com", "A"),
                        ("chain.example.com", "A"), ("loop1.example.com", "A"),
                        ("out.example.com", "A"), ("x.y.wild.example.com", "TXT"),
                        ("a.b.c.ent.example.com", "A"), ("c.ent.example.com", "A"),
                        ("host.sub.example.com", "A"), ("sub.example.com", "DS"),
                        ("www.deep.sub.example.com", "A"), ("x.dn.example.com", "A"),
                        ("x.dnloop.example.com", "CNAME"), ("_sip._udp.example.com", "SRV"),
                        ("big.example.com", "TXT"), ("nope.example.com", "A"),
                        ("www.example.net", "A"), ("unk.example.com", "TYPE65280"),
                        ("caa.example.com", "CAA"), ("ptr.example.com", "PTR"),
                        ("example.com", "AXFR"), ("example.com", "IXFR"), ("example.com", "RRSIG")]:
        q.append(("q-%s-%s" % (name.lower(), qtype.lower()), query(name, qtype)))
    q.append(("edns-do", query("www.example.com", "A", edns=0, want_dnssec=True)))
    q.append(("edns-big-txt", query("big.example.com", "TXT", edns=0, payload=4096)))
    q.append(("edns-512", query("big.example.com", "TXT", edns=0, payload=512)))
    q.append(("edns-v1", query("www.example.com", "A", edns=1)))
    q.append(("edns-cookie", query("www.example.com", "A", edns=0,
                                   options=[dns.edns.GenericOption(10, b"\x01" * 8)])))
    q.append(("edns-nsid", query("www.example.com", "A", edns=0,
                                 options=[dns.edns.GenericOption(3, b"")])))
    q.append(("edns-ecs", query("www.example.com", "A", edns=0,
                                options=[dns.edns.ECSOption("192.0.2.0", 24)])))
    q.append(("class-ch", query("version.bind", "TXT", qclass="CH")))
    q.append(("class-any", query("www.example.com", "A", qclass="ANY")))
    q.append(("notify", query("example.com", "SOA", qid=0x1235, opcode=dns.opcode.NOTIFY)))
    q.append(("notify-refused", query("example.com", "SOA", qid=0x1201, opcode=dns.opcode.NOTIFY)))
    q.append(("opcode-update", query("example.com", "SOA", opcode=dns.opcode.UPDATE)))
    q.append(("rd", query("www.example.com", "A", rd=True)))
    base = query("www.example.com", "A")
    q.append(("qr-set", base[:2] + b"\x80" + base[3:]))
    q.append(("qdcount-0", header(qd=0)))
    q.append(("qdcount-2", header(qd=2) + base[12:] + base[12:]))
    q.append(("trailing", base + b"\x00\x00"))
    q.append(("truncated-question", base[:-3]))
    q.append(("short-header", base[:7]))
    q.append(("ptr-loop", header() + b"\xc0\x0c\x00\x01\x00\x01"))
    q.append(("ptr-forward", header() + b"\xc0\x12\x00\x01\x00\x01\x03www\x00"))
    q.append(("label-64", header() + b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01"))
    long_name = b"".join(b"\x3f" + b"a" * 63 for _ in range(4)) + b"\x00"
    q.append(("name-256", header() + long_name + b"\x00\x01\x00\x01"))
    two_opt = query("www.example.com", "A", edns=0)
    q.append(("two-opt", two_opt[:10] + b"\x00\x02" + two_opt[12:] + two_opt[-11:]))
    bad_opt = query("www.example.com", "A", edns=0, options=[dns.edns.GenericOption(65001, b"abcd")])
    q.append(("edns-bad-option-length", bad_opt[:-6] + b"\x00\x09" + bad_opt[-4:]))
    return q


def zone_messages():
    """Responses with records of many types (for ReadRecord), compressed by dnspython."""
    origin = dns.name.from_text("example.com")
    rrs = [("@", "SOA", "ns1 hostmaster 2 3600 600 86400 300"), ("@", "NS", "ns1"),
           ("@", "MX", "10 mail"), ("ns1", "A", "192.0.2.1"), ("ns1", "AAAA", "2001:db8::1"),
           ("www", "CNAME", "ns1"), ("txt", "TXT", '"a" "b"'), ("_s._tcp", "SRV", "0 1 53 ns1"),
           ("n", "NAPTR", '100 10 "S" "SIP+D2U" "" _sip._udp'), ("h", "HINFO", '"cpu" "os"'),
           ("p", "PTR", "www"), ("d", "DNAME", "example.net."), ("c", "CAA", '0 issue "ca"'),
           ("ds", "DS", "1 8 2 " + "ab" * 32), ("x", "NSEC", "y A NS SOA"),
           ("k", "DNSKEY", "257 3 8 AwEAAQ=="),
           ("r", "RRSIG", "A 8 2 300 20300101000000 20200101000000 1 example.com. AAAA"),
           ("rp", "RP", "mbox txt"), ("afs", "AFSDB", "1 ns1"), ("kx", "KX", "1 ns1"),
           ("u", "TYPE65280", "\\# 3 010203"), ("sv", "SVCB", "1 ns1 alpn=h2"),
           ("ht", "HTTPS", "1 . alpn=h3")]
    m = dns.message.Message(id=0x1234)
    m.flags |= dns.flags.QR | dns.flags.AA
    m.question.append(dns.rrset.RRset(origin, dns.rdataclass.IN, dns.rdatatype.AXFR))
    for owner, rtype, text in rrs:
        name = dns.name.from_text(owner, origin) if owner != "@" else origin
        rd = dns.rdata.from_text("IN", rtype, text, origin=origin, relativize=False)
        rrset = m.find_rrset(m.answer, name, dns.rdataclass.IN, rd.rdtype, create=True)
        rrset.ttl = 300
        rrset.add(rd)
    soa = m.answer[0]
    m.answer.append(soa)
    return m


def axfr_messages(serial=2, split=False):
    m = zone_messages()
    for rrset in m.answer:
        if rrset.rdtype == dns.rdatatype.SOA:
            rrset.clear()
            rrset.add(dns.rdata.from_text("IN", "SOA", "ns1 hostmaster %d 3600 600 86400 300" % serial,
                                          origin=dns.name.from_text("example.com"), relativize=False))
    if not split:
        return [m.to_wire()]
    msgs = []
    answers = list(m.answer)
    for i in range(0, len(answers), 8):
        part = dns.message.Message(id=m.id)
        part.flags = m.flags
        if i == 0:
            part.question = list(m.question)
        part.answer = answers[i:i + 8]
        msgs.append(part.to_wire())
    return msgs


def ixfr_messages():
    origin = dns.name.from_text("example.com")

    def soa(serial):
        r = dns.rrset.from_text(origin, 300, "IN", "SOA", "ns1.example.com. hostmaster.example.com. %d 3600 600 86400 300" % serial)
        return r

    def rr(owner, rtype, text):
        return dns.rrset.from_text(dns.name.from_text(owner, origin), 300, "IN", rtype, text)

    m = dns.message.Message(id=0x1234)
    m.flags |= dns.flags.QR | dns.flags.AA
    m.question.append(dns.rrset.RRset(origin, dns.rdataclass.IN, dns.rdatatype.IXFR))
    # Serial 1 -> 2 -> 3: the base copy of fuzz_transfer holds serial 1 with www at .80.
    m.answer = [soa(3), soa(1), rr("www", "A", "192.0.2.80"), soa(2), rr("www", "A", "192.0.2.81"),
                soa(2), soa(3), rr("new", "AAAA", "2001:db8::3"), soa(3)]
    full = m.to_wire()
    up = dns.message.Message(id=0x1234)
    up.flags = m.flags
    up.question = list(m.question)
    up.answer = [soa(1)]
    return full, up.to_wire()


def transfer_input(flags, messages):
    return bytes([flags]) + b"".join(struct.pack("!H", len(x)) + x for x in messages)


def checksum(data):
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff


OUR_MAC = bytes.fromhex("020000000001")
PEER_MAC = bytes.fromhex("020000000002")
OUR_V4 = bytes([198, 18, 0, 1])
PEER_V4 = bytes([198, 18, 0, 2])
OUR_V6 = bytes.fromhex("20010db8000000000000000000000001")
PEER_V6 = bytes.fromhex("20010db8000000000000000000000002")


def frame(payload, v6=False, vlan=False, dport=53, proto=17, ip_options=b"", udp_csum=True,
          bad_csum=False, dst_mac=OUR_MAC, frag=0, dst=None):
    udp_len = 8 + len(payload)
    if v6:
        src, dst = PEER_V6, dst or OUR_V6
        pseudo = src + dst + struct.pack("!IxxxB", udp_len, 17)
    else:
        src, dst = PEER_V4, dst or OUR_V4
        pseudo = src + dst + struct.pack("!xBH", 17, udp_len)
    udp = struct.pack("!HHHH", 12345, dport, udp_len, 0) + payload
    if udp_csum:
        c = checksum(pseudo + udp) or 0xffff
        if bad_csum:
            c ^= 0x5555
        udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    if v6:
        ip = struct.pack("!IHBB", 0x60000000, udp_len, proto, 64) + src + dst
        eth_type = b"\x86\xdd"
    else:
        ihl = 5 + len(ip_options) // 4
        h = struct.pack("!BBHHHBBH", 0x40 | ihl, 0, ihl * 4 + udp_len, 1, frag, 64, proto, 0) + src + dst + ip_options
        h = h[:10] + struct.pack("!H", checksum(h)) + h[12:]
        ip = h
        eth_type = b"\x08\x00"
    l2 = dst_mac + PEER_MAC + (b"\x81\x00\x00\x07" if vlan else b"") + eth_type
    return l2 + ip + udp


def main():
    time.time = lambda: 1700000000.0  # TSIG "time signed": the same seeds on every run
    random.seed(0)  # to_wire() shuffles the records of each RRset
    qs = queries()
    for name, data in qs:
        write("fuzz_handler", name, data)
        write("fuzz_name", name, data)

    axfr = zone_messages().to_wire()
    write("fuzz_name", "response-axfr-many-types", axfr)
    r = dns.message.make_response(dns.message.from_wire(query("www.example.com", "A", edns=0)))
    r.answer.append(dns.rrset.from_text("www.example.com.", 60, "IN", "A", "192.0.2.80", "192.0.2.81"))
    r.authority.append(dns.rrset.from_text("example.com.", 60, "IN", "NS", "ns1.example.com."))
    r.additional.append(dns.rrset.from_text("ns1.example.com.", 60, "IN", "A", "192.0.2.1"))
    write("fuzz_name", "response-referral-style", r.to_wire())
    keyring = dns.tsigkeyring.from_text({"xfr-key.": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="})
    tq = dns.message.make_query("example.com", "SOA")
    tq.id = 0x2222
    tq.use_tsig(keyring, keyname="xfr-key.")
    write("fuzz_name", "query-tsig", tq.to_wire())
    write("fuzz_handler", "query-tsig", tq.to_wire())

    # Transfers: the flag byte, then length-prefixed messages.
    full = axfr_messages(2)
    split = axfr_messages(2, split=True)
    ixfr, uptodate = ixfr_messages()
    for flags in (0, 2, 4, 6):
        write("fuzz_transfer", "axfr-one-message-f%d" % flags, transfer_input(flags, full))
        write("fuzz_transfer", "axfr-split-f%d" % flags, transfer_input(flags, split))
        write("fuzz_transfer", "ixfr-diffs-f%d" % flags, transfer_input(flags | 1, [ixfr]))
        write("fuzz_transfer", "ixfr-up-to-date-f%d" % flags, transfer_input(flags | 1, [uptodate]))
        write("fuzz_transfer", "ixfr-axfr-style-f%d" % flags, transfer_input(flags | 1, full))
    write("fuzz_transfer", "axfr-cut", transfer_input(0, split[:-1]))
    write("fuzz_transfer", "axfr-refused", transfer_input(0, [full[0][:3] + b"\x05" + full[0][4:]]))
    # A response signed by dnspython with the same key as the target's (raw TSIG path).
    signed = dns.message.make_response(tq)
    signed.answer.append(dns.rrset.from_text("example.com.", 300, "IN", "SOA",
                                             "ns1.example.com. hostmaster.example.com. 2 3600 600 86400 300"))
    write("fuzz_transfer", "soa-tsig-signed-f4", transfer_input(4, [signed.to_wire()]))

    # Zone text.
    from_fuzz_common = open(os.path.join(HERE, "fuzz_common.h")).read()
    zone = from_fuzz_common.split('R"(', 1)[1].split(')"', 1)[0]
    write("fuzz_zone_file", "fuzz-zone", zone)
    write("fuzz_zone_file", "example-zone", open(os.path.join(ROOT, "config/examples/zones/example.com.zone")).read())
    head = "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n@ NS ns1\nns1 A 192.0.2.1\n"
    snippets = {
        "minimal": head,
        "parens": "@ 300 IN SOA ns1 hostmaster (\n 1 ; serial\n 3600 600 86400 300 )\n@ NS ns1.example.com.\n",
        "all-types": head + "\n".join([
            "a A 192.0.2.2", "aaaa AAAA 2001:db8::2", "c CNAME www", "d DNAME example.net.",
            "m MX 10 ns1", "t TXT \"hello\" \"world\"", "s SRV 0 1 53 ns1", "p PTR ns1",
            "h HINFO cpu os", "n NAPTR 100 10 \"S\" \"SIP+D2U\" \"\" _sip._udp",
            "caa CAA 0 issue \"ca\"", "ds DS 1 8 2 " + "ab" * 32, "k DNSKEY 257 3 8 AwEAAQ==",
            "r RRSIG A 8 2 300 20300101000000 20200101000000 1 example.com. AAAA",
            "x NSEC y A NS SOA", "sv SVCB 1 ns1 alpn=h2", "u TYPE65280 \\# 3 010203",
            "sshfp SSHFP 1 1 " + "cd" * 20, "tlsa TLSA 3 1 1 " + "ef" * 32]) + "\n",
        "wildcards": head + "*.w A 192.0.2.9\n*.w TXT \"w\"\nx.*.w A 192.0.2.10\n",
        "delegation": head + "sub NS ns.sub\nns.sub A 192.0.2.53\nsub DS 1 8 2 " + "ab" * 32 + "\ndeep.below.sub A 192.0.2.54\n",
        "cname-and-data": head + "c CNAME www\nc A 192.0.2.1\n",
        "two-cnames": head + "c CNAME a\nc CNAME b\n",
        "no-soa": "$ORIGIN example.com.\n@ 300 NS ns1\nns1 300 A 192.0.2.1\n",
        "two-soa": head + "@ SOA ns2 h 2 1 1 1 1\n",
        "out-of-zone": head + "www.example.net. A 192.0.2.1\n",
        "class-ch": head + "x CH TXT \"chaos\"\n",
        "escapes": head + "a\\.b A 192.0.2.1\n\\065\\066 TXT \"\\\"quoted\\\" \\255\"\n",
        "origin-change": head + "$ORIGIN sub.example.com.\nx A 192.0.2.1\n$ORIGIN example.com.\n",
        "ttl-forms": "$TTL 1h\n" + head + "x 1w2d A 192.0.2.1\n",
        "long-name": head + ".".join(["a" * 63] * 3) + " A 192.0.2.1\n",
        "label-too-long": head + "a" * 64 + " A 192.0.2.1\n",
        "dname-loop": head + "d DNAME d.example.com.\n",
        "cname-loop": head + "a CNAME b\nb CNAME a\n",
        "apex-cname": head + "@ CNAME www\n",
        "generic-soa": "@ 300 SOA \\# 22 036e733100036e7332000000000100000e1000000258000151800000012c\n@ 300 NS ns1\n",
        "empty-nonterminal": head + "a.b.c A 192.0.2.1\n",
        "big-rrset": head + "".join("big TXT \"%s\"\n" % ("x" * 200 + str(i)) for i in range(20)),
        "generate": head + "$GENERATE 1-5 host$ A 192.0.2.$\n",
        "mx-out-of-zone": head + "@ MX 10 mail.example.net.\n",
        "syntax-error": head + "x A 999.1.1.1\ny BOGUS data\n",
    }
    for name, text in snippets.items():
        write("fuzz_zone_file", name, text)

    # Configs.
    ex = os.path.join(ROOT, "config/examples")
    for f in sorted(os.listdir(ex)):
        if f.endswith(".toml"):
            write("fuzz_config", "example-" + f[:-5], open(os.path.join(ex, f)).read())
    configs = {
        "minimal": '[server]\nmode = "socket"\nlisten = ["127.0.0.1:5353"]\n\n[[zone]]\nname = "example.com"\nfile = "z"\n',
        "ipv6-listen": '[server]\nlisten = ["[::1]:5353", "127.0.0.1:53"]\nworkers = 4\n[[zone]]\nname = "a."\nfile = "/z"\n',
        "durations": '[server]\ntcp_idle_timeout = "1h30m"\n[health]\ninterval = "250us"\ntimeout = "1.5s"\noverload = "2m"\nhold = "0.5s"\n',
        "bad-duration": '[server]\ntcp_idle_timeout = "10"\n[health]\ninterval = "-1s"\n',
        "unknown-key": '[server]\nworkres = 2\n[bogus]\nx = 1\n',
        "tsig": '[[tsig]]\nname = "k"\nalgorithm = "hmac-sha512"\nsecret = "c2VjcmV0"\n[[tsig]]\nname = "k2"\nalgorithm = "hmac-md5"\nsecret = "!!notbase64"\n',
        "sources": '[[zone]]\nname = "example.com"\nsources = [ { name = "p", address = "192.0.2.1:53", tsig = "missing", health = { rise = 1, fall = 2 } }, { name = "p", address = "::1" } ]\nnotify_allow = ["192.0.2.0/24", "2001:db8::/129"]\n',
        "both-file-and-sources": '[[zone]]\nname = "x"\nfile = "f"\nsources = [ { name = "a", address = "192.0.2.1" } ]\n',
        "dpdk": '[server]\nmode = "dpdk"\n[dpdk]\neal_args = ["--no-huge"]\naddress = ["198.18.0.1/24", "2001:db8::1/64", "300.1.1.1"]\nexception_iface = "a-very-long-interface-name"\n',
        "syntax-error": '[server\nmode = socket\n',
        "types-wrong": '[server]\nworkers = "one"\nlisten = "127.0.0.1:53"\nudp_max_payload = 70000\n',
        "duplicate-zones": '[[zone]]\nname = "Example.COM."\nfile = "a"\n[[zone]]\nname = "example.com"\nfile = "b"\n',
        "metrics-control": '[metrics]\nlisten = "127.0.0.1:9153"\n[control]\nsocket = "/run/tandem/control.sock"\n',
        "pooled": '[[zone]]\nname = "example.com"\nfile = "f"\npooled = [ { name = "www", pool = "web", ttl = 30 } ]\n',
        "limits": '[[zone]]\nname = "example.com"\nsources = [ { name = "a", address = "192.0.2.1" } ]\nrefresh_min = "1s"\nrefresh_max = "1d"\nmax_transfer_size = 1024\ntransfer_timeout = "0s"\n',
    }
    for name, text in configs.items():
        write("fuzz_config", name, text)

    # Frames.
    www = query("www.example.com", "A")
    frames = {
        "v4-query": frame(www),
        "v6-query": frame(www, v6=True),
        "v4-vlan": frame(www, vlan=True),
        "v6-vlan": frame(query("big.example.com", "TXT", edns=0, payload=4096), v6=True, vlan=True),
        "v4-edns": frame(query("example.com", "ANY", edns=0)),
        "v4-no-udp-checksum": frame(www, udp_csum=False),
        "v4-bad-udp-checksum": frame(www, bad_csum=True),
        "v4-ip-options": frame(www, ip_options=b"\x01\x01\x01\x00"),
        "v4-fragment": frame(www, frag=0x2000),
        "v4-other-port": frame(www, dport=5353),
        "v4-tcp": frame(www, proto=6),
        "v4-other-mac": frame(www, dst_mac=bytes.fromhex("020000000009")),
        "v4-other-address": frame(www, dst=bytes([198, 18, 0, 9])),
        "v4-notify": frame(query("example.com", "SOA", opcode=dns.opcode.NOTIFY)),
        "v4-formerr": frame(header(qd=0)),
        "v4-qr": frame(www[:2] + b"\x80" + www[3:]),
        "v6-zero-checksum": frame(www, v6=True, udp_csum=False),
        "arp-broadcast": b"\xff" * 6 + PEER_MAC + b"\x08\x06" + bytes(28),
        "ipv6-nd-multicast": bytes.fromhex("3333ff000001") + PEER_MAC + b"\x86\xdd" + bytes(40),
        "runt": OUR_MAC + PEER_MAC,
    }
    for name, data in frames.items():
        write("fuzz_frame", name, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
