#!/usr/bin/python3
"""TSIG interoperability with Knot DNS and dnspython, through tsig_axfr_probe
(control/tsig.* as the AXFR client):

- knotd serves a zone large enough for a multi-message AXFR, transfers allowed only with
  TSIG keys (hmac-sha256, -sha512, -sha1, -md5): the probe verifies every message with each,
  and fails with a wrong secret (BADSIG), an unknown key name or a wrong algorithm (BADKEY);
- a dnspython peer on a loopback socket accepts the probe's signed request
  (dns.message.from_wire with the keyring) and answers with a dnspython-signed stream, all
  messages signed and then with an unsigned message in the middle: the probe verifies both.

    /usr/bin/python3 tests/tsig/knot_tsig_test.py build-tsig/tests/tsig/tsig_axfr_probe

Exit status: 0 when every check passes, 1 when one fails, 2 when the test could not run.
"""

import base64
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import dns.message  # noqa: E402
import dns.name  # noqa: E402
import dns.rrset  # noqa: E402
import dns.tsig  # noqa: E402

import procs  # noqa: E402

ZONE = "tsig.test"
RECORDS = 3000  # plus SOA, NS and the name server's address
# One key per algorithm the probe should interoperate with: (id, algorithm, secret).
KEYS = [
    ("xfr-key", "hmac-sha256", base64.b64encode(bytes(range(32))).decode()),
    ("xfr-key-512", "hmac-sha512", base64.b64encode(bytes(range(64, 128))).decode()),
    ("xfr-key-sha1", "hmac-sha1", base64.b64encode(b"sha1 secret for the probe").decode()),
    ("xfr-key-md5", "hmac-md5", base64.b64encode(b"md5 secret").decode()),
]


def _sigterm(signum, frame):
    # meson's timeout sends SIGTERM: unwind so the finally blocks stop knotd.
    raise SystemExit("terminated by signal %d" % signum)


class Failure(AssertionError):
    pass


def expect(cond, message, *context):
    if not cond:
        raise Failure(message + "".join("\n  " + str(c) for c in context))


def write_zone(path):
    """SOA, NS, ns1 and RECORDS TXT records of ~60 octets: several AXFR messages."""
    lines = [
        "$ORIGIN %s." % ZONE,
        "$TTL 300",
        "@ IN SOA ns1 hostmaster 2024010101 3600 600 86400 300",
        "@ IN NS ns1",
        "ns1 IN A 192.0.2.1",
    ]
    for i in range(RECORDS):
        lines.append('h%04d IN TXT "record %04d of the tsig interoperability test zone"' % (i, i))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return len(lines) - 2  # without the directives


def tsig_config(base):
    """procs.knot_config with keys and an ACL that allows transfers with any of them."""
    text = "key:\n"
    for key_id, alg, secret in KEYS:
        text += "  - id: %s\n    algorithm: %s\n    secret: %s\n" % (key_id, alg, secret)
    text += "\nacl:\n  - id: xfr\n    address: %s\n    key: [%s]\n    action: transfer\n\n" % (
        procs.LOOPBACK, ", ".join(k[0] for k in KEYS))
    # The zone item is last in knot_config's text: the acl line belongs to it.
    return text + base + "    acl: xfr\n"


def start_knotd(workdir, zone_file):
    d = os.path.join(workdir, "knotd")
    os.makedirs(d, exist_ok=True)

    def make(port):
        conf = os.path.join(d, "knot.conf")
        with open(conf, "w") as f:
            f.write(tsig_config(procs.knot_config(d, port, ZONE, zone_file)))
        return procs.Server("knotd", ["knotd", "-c", conf], d, port)

    return procs._start_with_retry(make, ZONE)


def run_probe(probe, srv, key_id, alg, secret):
    argv = [probe, procs.LOOPBACK, str(srv.port), ZONE, key_id, alg, secret]
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    return r.returncode, (r.stdout + r.stderr).strip()


def check_kdig(srv, records):
    """The setup itself, through Knot's own client: a signed AXFR works."""
    key_id, alg, secret = KEYS[0]
    argv = ["kdig", "@%s" % procs.LOOPBACK, "-p", str(srv.port), "-y",
            "%s:%s:%s" % (alg, key_id, secret), "AXFR", ZONE, "+nostats", "+noall", "+answer"]
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    got = len([line for line in r.stdout.splitlines() if line.strip()])
    expect(r.returncode == 0 and got == records + 1, "kdig signed AXFR failed",
           "exit %d, %d records (expected %d)" % (r.returncode, got, records + 1), r.stderr)


def check_probe_ok(probe, srv, records):
    for key_id, alg, secret in KEYS:
        code, out = run_probe(probe, srv, key_id, alg, secret)
        m = re.match(r"verified (\d+) messages \((\d+) signed\), (\d+) records", out)
        expect(code == 0 and m, "probe failed with %s (%s)" % (key_id, alg), out, srv.stderr_text())
        messages, signed, got = (int(g) for g in m.groups())
        expect(messages >= 3, "%s: expected a multi-message AXFR" % key_id, out)
        expect(got == records + 1, "%s: record count" % key_id, out)
        print("ok: %s (%s): %s" % (key_id, alg, out))


def check_probe_rejects(probe, srv):
    key_id, alg, secret = KEYS[0]
    wrong = base64.b64encode(b"not the secret knotd has").decode()
    cases = [
        ("wrong secret", key_id, alg, wrong, "BADSIG"),
        ("unknown key name", "no-such-key", alg, secret, "BADKEY"),
        ("wrong algorithm", key_id, "hmac-sha512", secret, "BADKEY"),
    ]
    for what, k, a, s, want in cases:
        code, out = run_probe(probe, srv, k, a, s)
        expect(code == 1 and want in out,
               "%s: expected the probe to fail with %s" % (what, want), out)
        print("ok: %s -> %s" % (what, out))


def _read_framed(conn):
    def exact(n):
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise OSError("connection closed")
            data += chunk
        return data
    return exact(struct.unpack("!H", exact(2))[0])


def _dnspython_stream(query, gap):
    """Three AXFR messages signed by dnspython; with gap=True the middle one is unsigned."""
    wires, ctx = [], None
    for i in range(3):
        r = dns.message.make_response(query)
        if i in (0, 2):
            soa = "ns1.%s. hostmaster.%s. 1 3600 600 86400 300" % (ZONE, ZONE)
            r.answer.append(dns.rrset.from_text(ZONE + ".", 300, "IN", "SOA", soa))
        r.answer.append(dns.rrset.from_text("h%d.%s." % (i, ZONE), 300, "IN", "A",
                                            "192.0.2.%d" % i))
        if gap and i == 1:
            r.tsig = None
            wires.append(r.to_wire())
            ctx.update(wires[-1])  # RFC 8945 5.3.1: the next MAC covers it
            continue
        wires.append(r.to_wire(multi=True, tsig_ctx=ctx))
        ctx = r.tsig_ctx
    return wires


def _serve_one(listener, keyring, gap, result):
    try:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(30)
            query = dns.message.from_wire(_read_framed(conn), keyring=keyring)
            result["request_verified"] = query.had_tsig
            for wire in _dnspython_stream(query, gap):
                conn.sendall(struct.pack("!H", len(wire)) + wire)
    except Exception as e:  # reported by the main thread
        result["error"] = "%s: %s" % (type(e).__name__, e)


def check_dnspython_peer(probe):
    key_id, alg, secret = KEYS[0]
    name = dns.name.from_text(key_id)
    keyring = {name: dns.tsig.Key(name, base64.b64decode(secret), alg)}
    for gap, want in ((False, "3 messages (3 signed)"), (True, "3 messages (2 signed)")):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        result = {}
        try:
            listener.bind((procs.LOOPBACK, 0))
            listener.listen(1)
            listener.settimeout(30)
            peer = threading.Thread(target=_serve_one, args=(listener, keyring, gap, result),
                                    daemon=True)
            peer.start()
            port = listener.getsockname()[1]
            argv = [probe, procs.LOOPBACK, str(port), ZONE, key_id, alg, secret]
            r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=60)
            peer.join(timeout=40)
        finally:
            listener.close()
        out = (r.stdout + r.stderr).strip()
        expect(result.get("request_verified") and "error" not in result,
               "dnspython did not accept the probe's signed request", result)
        expect(r.returncode == 0 and want in out,
               "probe did not verify the dnspython stream (gap=%s)" % gap, out)
        print("ok: dnspython peer (gap=%s): request accepted; %s" % (gap, out))


def main():
    if len(sys.argv) != 2:
        print("usage: knot_tsig_test.py TSIG_AXFR_PROBE", file=sys.stderr)
        return 2
    if shutil.which("knotd") is None or shutil.which("kdig") is None:
        print("knotd and kdig are needed", file=sys.stderr)
        return 2
    probe = os.path.abspath(sys.argv[1])
    signal.signal(signal.SIGTERM, _sigterm)
    with procs.TempDir(prefix="tandem-tsig-") as workdir:
        zone_file = os.path.join(workdir, "tsig.test.zone")
        records = write_zone(zone_file)
        srv = None
        try:
            srv = start_knotd(workdir, zone_file)
            check_kdig(srv, records)
            check_probe_ok(probe, srv, records)
            check_probe_rejects(probe, srv)
            check_dnspython_peer(probe)
        except Failure as e:
            print("FAIL: %s" % e)
            return 1
        finally:
            if srv is not None:
                srv.stop()
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
