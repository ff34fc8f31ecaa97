"""Process helpers for integration tests.

- free_port(): a loopback port free for both UDP and TCP.
- TempDir: a temporary directory removed on exit.
- Server: start a process with its stderr captured to a file, wait until it
  answers an SOA query for a zone, stop it by pid (SIGTERM, then SIGKILL after
  5 s).
- start_knotd() / start_tandemd(): write a config and start the server.

Everything talks to 127.0.0.1 only, and every wait is bounded in time.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype


def _exit_on_signal(signum, frame):
    raise SystemExit("terminated by signal %d" % signum)


def stop_on_sigterm():
    """Makes SIGTERM (what meson's timeout sends) raise SystemExit, so that a test unwinds
    and its finally blocks stop the processes it started."""
    signal.signal(signal.SIGTERM, _exit_on_signal)


class Failure(AssertionError):
    """A check of a test did not hold."""


def expect(cond, message, *context):
    """Raises Failure with the message, each item of context on lines of its own, unless
    cond holds."""
    if not cond:
        details = "".join("\n  " + str(c).replace("\n", "\n  ") for c in context)
        raise Failure(message + details)


LOOPBACK = "127.0.0.1"


def free_port(tries=50):
    """Return a port on 127.0.0.1 that was just free for both UDP and TCP."""
    for _ in range(tries):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            t.bind((LOOPBACK, 0))
            port = t.getsockname()[1]
            try:
                u.bind((LOOPBACK, port))
            except OSError:
                continue
            return port
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free loopback port found")


class TempDir:
    """mkdtemp() on enter, rmtree() on exit (unless keep=True)."""

    def __init__(self, prefix="tandem-it-", keep=False):
        self.prefix = prefix
        self.keep = keep
        self.path = None

    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix=self.prefix)
        return self.path

    def __exit__(self, *exc):
        if self.path and not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)
        return False


class ServerError(RuntimeError):
    pass


class Server:
    """One server process; stop() is safe to call any number of times."""

    def __init__(self, name, argv, workdir, port, env=None):
        self.name = name
        self.argv = list(argv)
        self.port = port
        self.stderr_path = os.path.join(workdir, "%s.stderr" % name)
        self.stdout_path = os.path.join(workdir, "%s.stdout" % name)
        self.proc = None
        self.env = env

    @property
    def addr(self):
        return (LOOPBACK, self.port)

    def start(self):
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=err, env=self.env, close_fds=True)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr_text(self, limit=8000):
        try:
            with open(self.stderr_path, "rb") as f:
                data = f.read()
        except OSError:
            return ""
        text = data.decode("utf-8", "replace")
        if len(text) > limit:
            text = "...\n" + text[-limit:]
        return text

    def wait_ready(self, zone, timeout=20.0):
        """Poll an SOA query for `zone` over UDP until an authoritative answer comes."""
        deadline = time.monotonic() + timeout
        last = "no reply"
        while time.monotonic() < deadline:
            if not self.alive():
                raise ServerError("%s exited early with status %s; stderr:\n%s"
                                  % (self.name, self.proc.returncode, self.stderr_text()))
            try:
                r = soa_probe(self.addr, zone, timeout=0.5)
                if (r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
                        and any(rr.rdtype == dns.rdatatype.SOA for rr in r.answer)):
                    return
                last = "rcode %s" % dns.rcode.to_text(r.rcode())
            except (OSError, dns.exception.DNSException) as e:
                last = "%s: %s" % (type(e).__name__, e)
            time.sleep(0.1)
        raise ServerError("%s did not answer SOA %s on port %d within %.0f s (last: %s); stderr:\n%s"
                          % (self.name, zone, self.port, timeout, last, self.stderr_text()))

    def stop(self, grace=5.0):
        """SIGTERM by pid, SIGKILL by pid if still running after `grace` seconds."""
        p = self.proc
        if p is None or p.poll() is not None:
            return
        try:
            os.kill(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def soa_probe(addr, zone, timeout=0.5):
    q = dns.message.make_query(zone, dns.rdatatype.SOA)
    wire = q.to_wire()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.connect(addr)
        s.send(wire)
        end = time.monotonic() + timeout
        while True:
            data = s.recv(65535)
            r = dns.message.from_wire(data)
            if r.id == q.id:
                return r
            if time.monotonic() > end:
                raise socket.timeout("no matching reply")
    finally:
        s.close()


def _start_with_retry(make, zone, attempts=3, timeout=20.0):
    """make(port) -> Server (not started). Retries on an early exit (e.g. a port race)."""
    last = None
    for _ in range(attempts):
        srv = make(free_port())
        srv.start()
        try:
            srv.wait_ready(zone, timeout=timeout)
            return srv
        except BaseException as e:
            if not isinstance(e, ServerError):
                srv.stop()
                raise
            last = e
            srv.stop()
            if srv.proc.returncode is not None and srv.proc.returncode != 0 and "exited early" in str(e):
                continue        # maybe lost the port race: try another port
            raise
    raise last


def _knot_head(workdir, port, log_level, server_extra=""):
    """knotd's server:, database: and log: sections: one worker of each kind, Knot 3.2's
    answer defaults spelled out, storage and rundir inside workdir. `server_extra`: more
    lines of the server: section, each indented by four spaces."""
    run = os.path.join(workdir, "run")
    storage = os.path.join(workdir, "storage")
    os.makedirs(run, exist_ok=True)
    os.makedirs(storage, exist_ok=True)
    return f"""\
server:
    rundir: "{run}"
    listen: {LOOPBACK}@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
    # Knot 3.2 defaults, spelled out: no RRset rotation, no ECS, no NSID
    # (NSID is only sent when asked for anyway).
    answer-rotation: off
    edns-client-subnet: off
    nsid: ""
{server_extra}
database:
    storage: "{storage}"

log:
  - target: stderr
    any: {log_level}
"""


def knot_config(workdir, port, zone, zone_file, server_extra=""):
    """A knotd config for a plain authoritative answer from a zone file. `server_extra`:
    more lines of the server: section, each indented by four spaces."""
    storage = os.path.join(workdir, "storage")
    return _knot_head(workdir, port, "warning", server_extra) + f"""
zone:
  - domain: {zone}
    file: "{zone_file}"
    storage: "{storage}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
    dnssec-signing: off
    zonemd-verify: off
"""


def start_knotd(workdir, zone, zone_file, name="knotd", knotd="knotd", timeout=20.0,
                server_extra=""):
    """Start knotd in the foreground on a free loopback port; returns a ready Server."""
    d = os.path.join(workdir, name)
    os.makedirs(d, exist_ok=True)

    def make(port):
        conf = os.path.join(d, "knot.conf")
        with open(conf, "w") as f:
            f.write(knot_config(d, port, zone, zone_file, server_extra=server_extra))
        return Server(name, [knotd, "-c", conf], d, port)

    return _start_with_retry(make, zone, timeout=timeout)


def _nsd_server_clause(workdir, port, verbosity, extra=""):
    """NSD's server: clause (one server process, no rate limiting, every file inside
    workdir; `extra`: more lines, each indented by four spaces) and remote-control off."""
    return f"""\
server:
    ip-address: {LOOPBACK}
    port: {port}
    server-count: 1
    username: ""
    zonesdir: "{workdir}"
    database: ""
    zonelistfile: "{workdir}/zone.list"
    xfrdfile: "{workdir}/xfrd.state"
    xfrdir: "{workdir}"
    pidfile: "{workdir}/nsd.pid"
    verbosity: {verbosity}
    rrl-ratelimit: 0
    reuseport: no
{extra}
remote-control:
    control-enable: no
"""


def nsd_config(workdir, port, zone, zone_file, server_extra=""):
    """An NSD config for a plain authoritative answer from a zone file: no transfers,
    rate limiting off (NSD 4.6 limits to 200 qps per prefix by default), every file
    (zone list, xfrd state, pid file) inside workdir. `server_extra`: more lines of the
    server: clause, each indented by four spaces (e.g. "    hide-version: yes\\n")."""
    return _nsd_server_clause(workdir, port, 1, server_extra) + f"""
zone:
    name: {zone}
    zonefile: "{zone_file}"
"""


def start_nsd(workdir, zone, zone_file, name="nsd", nsd="nsd", server_extra="", timeout=20.0):
    """Start `nsd -d -c CONF` on a free loopback port with nsd_config(); returns a ready
    Server. Its directory (zonesdir) is WORKDIR/NAME."""
    d = os.path.join(workdir, name)
    os.makedirs(d, exist_ok=True)

    def make(port):
        conf = os.path.join(d, "nsd.conf")
        with open(conf, "w") as f:
            f.write(nsd_config(d, port, zone, zone_file, server_extra=server_extra))
        return Server(name, [nsd, "-d", "-c", conf], d, port)

    return _start_with_retry(make, zone, timeout=timeout)


def tandem_config(workdir, port, zone, zone_file):
    state = os.path.join(workdir, "state")
    os.makedirs(state, exist_ok=True)
    return f"""\
[server]
mode = "socket"
listen = ["{LOOPBACK}:{port}"]
workers = 1
state_dir = "{state}"

[[zone]]
name = "{zone}"
file = "{zone_file}"
"""


def start_tandemd(tandemd, workdir, zone, zone_file, name="tandemd", timeout=20.0):
    d = os.path.join(workdir, name)
    os.makedirs(d, exist_ok=True)

    def make(port):
        conf = os.path.join(d, "tandem.toml")
        with open(conf, "w") as f:
            f.write(tandem_config(d, port, zone, zone_file))
        return Server(name, [tandemd, "--config", conf], d, port)

    return _start_with_retry(make, zone, timeout=timeout)


# ---------------------------------------------------------------------------------------
# Helpers for the tandemctl and reload tests.

def udp_query(addr, qname, rdtype, timeout=1.0):
    """One query over UDP to addr; returns the reply (dns.message), raises on timeout."""
    import dns.query
    q = dns.message.make_query(qname, rdtype)
    return dns.query.udp(q, addr[0], port=addr[1], timeout=timeout)


def write_zone(path, origin, serial, extra=()):
    """A small zone file: SOA, NS, ns1 and www addresses, then the lines of `extra`.

    Line numbers are fixed: the first line of `extra` is line 7."""
    lines = [
        "$ORIGIN %s." % origin.rstrip("."),
        "$TTL 300",
        "@ IN SOA ns1 hostmaster %d 3600 600 86400 300" % serial,
        "@ IN NS ns1",
        "ns1 IN A 192.0.2.1",
        "www IN A 192.0.2.10",
    ] + list(extra)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)   # a reload never sees a half-written file


def tandem_config_zones(port, zones, control_socket="", state_dir=""):
    """A tandemd config: one listen address, `zones` as [(name, file)], an optional
    control socket."""
    text = '[server]\nmode = "socket"\nlisten = ["%s:%d"]\nworkers = 1\n' % (LOOPBACK, port)
    if state_dir:
        text += 'state_dir = "%s"\n' % state_dir
    if control_socket:
        text += '\n[control]\nsocket = "%s"\n' % control_socket
    for name, path in zones:
        text += '\n[[zone]]\nname = "%s"\nfile = "%s"\n' % (name, path)
    return text


def start_tandemd_with(tandemd, workdir, zone, write_config, name="tandemd", timeout=20.0):
    """Start tandemd on a free port with the config that write_config(port) returns (text),
    written to WORKDIR/NAME/tandem.toml; waits until it answers SOA `zone`. The Server has
    .config set to the config path."""
    d = os.path.join(workdir, name)
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "tandem.toml")

    def make(port):
        with open(conf, "w") as f:
            f.write(write_config(port))
        srv = Server(name, [tandemd, "--config", conf], d, port)
        srv.config = conf
        return srv

    return _start_with_retry(make, zone, timeout=timeout)


def run_tandemctl(tandemctl, socket_path, *args, json_output=False, timeout=60.0, preexec_fn=None):
    """Run tandemctl once; returns subprocess.CompletedProcess (text stdout/stderr)."""
    argv = [tandemctl, "--socket", socket_path] + (["--json"] if json_output else []) + list(args)
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=preexec_fn)


def stop_process(proc, grace=5.0):
    """SIGTERM a subprocess.Popen by pid, then SIGKILL after `grace` seconds."""
    if proc is None or proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


# ---------------------------------------------------------------------------------------
# Helpers for the zone transfer tests (test_transfers.py): Knot DNS and NSD as primaries,
# tandemd as their secondary.

def wait_any_reply(srv, zone, timeout=10.0):
    """Poll an SOA query for `zone` until any reply comes (whatever its rcode); returns it."""
    deadline = time.monotonic() + timeout
    last = "no reply"
    while time.monotonic() < deadline:
        if not srv.alive():
            raise ServerError("%s exited early with status %s; stderr:\n%s"
                              % (srv.name, srv.proc.returncode, srv.stderr_text()))
        try:
            return soa_probe(srv.addr, zone, timeout=0.3)
        except (OSError, dns.exception.DNSException) as e:
            last = "%s: %s" % (type(e).__name__, e)
        time.sleep(0.05)
    raise ServerError("%s did not answer on port %d within %.0f s (last: %s); stderr:\n%s"
                      % (srv.name, srv.port, timeout, last, srv.stderr_text()))


def start_tandemd_pulled(tandemd, workdir, zone, write_config, name="tandemd", port=None,
                         timeout=10.0):
    """Start tandemd with the config text write_config(port) (in WORKDIR/NAME/tandem.toml)
    on `port`, or on a free port (retried on an early exit), and wait until it answers an
    SOA query for `zone` with any rcode: a pulled zone may still answer SERVFAIL. The
    Server has .config set."""
    d = os.path.join(workdir, name)
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "tandem.toml")
    last = None
    for _ in range(1 if port else 3):
        p = port or free_port()
        with open(conf, "w") as f:
            f.write(write_config(p))
        srv = Server(name, [tandemd, "--config", conf], d, p)
        srv.config = conf
        srv.start()
        try:
            wait_any_reply(srv, zone, timeout=timeout)
            return srv
        except BaseException as e:
            srv.stop()
            last = e
            if not isinstance(e, ServerError) or "exited early" not in str(e):
                raise
    raise last


def knot_primary_config(workdir, port, zone, zone_file, notify=(), key=None, control_socket=""):
    """A knotd config for a primary: transfers allowed from 127.0.0.0/8 (with the TSIG key
    `key` = (name, algorithm, base64 secret) when given), NOTIFY to every "addr@port" of
    `notify`, IXFR from the differences of its zone file (zonefile-load: difference,
    journal-content: changes)."""
    storage = os.path.join(workdir, "storage")
    text = _knot_head(workdir, port, "info")
    if control_socket:
        text += f'\ncontrol:\n    listen: "{control_socket}"\n'
    if key:
        text += f"\nkey:\n  - id: {key[0]}\n    algorithm: {key[1]}\n    secret: {key[2]}\n"
    text += "\nacl:\n  - id: xfr\n    address: 127.0.0.0/8\n    action: transfer\n"
    if key:
        text += f"    key: {key[0]}\n"
    if notify:
        text += "\nremote:\n"
        for i, n in enumerate(notify):
            text += f"  - id: sec{i}\n    address: {n}\n"
    text += f"""
zone:
  - domain: {zone}
    file: "{zone_file}"
    storage: "{storage}"
    zonefile-sync: -1
    zonefile-load: difference
    journal-content: changes
    semantic-checks: off
    dnssec-signing: off
    zonemd-verify: off
    acl: [xfr]
"""
    if notify:
        text += "    notify: [%s]\n" % ", ".join("sec%d" % i for i in range(len(notify)))
    return text


def start_knot_primary(workdir, zone, zone_file, name="knot-primary", notify=(), key=None,
                       knotd="knotd", timeout=20.0):
    """Start knotd as a primary (knot_primary_config) on a free port; returns a ready
    Server with .control_socket (for knotc -s)."""
    d = os.path.join(workdir, name)
    os.makedirs(d, exist_ok=True)
    sock = os.path.join(d, "knot.sock")

    def make(port):
        conf = os.path.join(d, "knot.conf")
        with open(conf, "w") as f:
            f.write(knot_primary_config(d, port, zone, zone_file, notify=notify, key=key,
                                        control_socket=sock))
        srv = Server(name, [knotd, "-c", conf], d, port)
        srv.control_socket = sock
        return srv

    return _start_with_retry(make, zone, timeout=timeout)


def nsd_primary_config(workdir, port, zone, zone_file, notify=()):
    """An NSD config for a primary: AXFR (and IXFR from its zone file's differences, when
    this NSD serves it) to 127.0.0.0/8 without a key, NOTIFY to every "addr@port" of
    `notify`, rate limiting off, every file inside workdir."""
    text = _nsd_server_clause(workdir, port, 2) + f"""
zone:
    name: {zone}
    zonefile: "{zone_file}"
    provide-xfr: 127.0.0.0/8 NOKEY
    store-ixfr: yes
    create-ixfr: yes
"""
    for n in notify:
        text += f"    notify: {n} NOKEY\n"
    return text


def start_nsd_primary(workdir, zone, zone_file, name="nsd-primary", notify=(), nsd="nsd",
                      timeout=20.0):
    """Start `nsd -d -c CONF` as a primary on a free port; returns a ready Server. Its
    directory (zonesdir) is WORKDIR/NAME. NSD 4.6.1 cannot create IXFR data (create-ixfr)
    for a zone holding a record of an unknown type (TYPE65280...): it logs "could not
    write ...spoolzone..." and answers IXFR with the whole zone."""
    d = os.path.join(workdir, name)
    os.makedirs(d, exist_ok=True)

    def make(port):
        conf = os.path.join(d, "nsd.conf")
        with open(conf, "w") as f:
            f.write(nsd_primary_config(d, port, zone, zone_file, notify=notify))
        return Server(name, [nsd, "-d", "-c", conf], d, port)

    return _start_with_retry(make, zone, timeout=timeout)


# ---------------------------------------------------------------------------------------
# Helpers for the primary-side test (test_primary.py): tandemd as the primary of a zone,
# Knot DNS, NSD and a second tandemd as its secondaries.

def start_any_reply(make, zone, port=None, attempts=3, timeout=20.0):
    """make(port) -> Server (not started). Starts it on `port`, or on a free port (retried
    after an early exit, e.g. a lost port race), and waits until it answers an SOA query for
    `zone` with any rcode: a secondary without its first copy answers SERVFAIL."""
    last = None
    for _ in range(1 if port else attempts):
        srv = make(port or free_port())
        srv.start()
        try:
            wait_any_reply(srv, zone, timeout=timeout)
            return srv
        except BaseException as e:
            srv.stop()
            last = e
            if not isinstance(e, ServerError) or "exited early" not in str(e):
                raise
    raise last


def knot_secondary_config(workdir, port, zone, primary, key=None, notify_from=LOOPBACK):
    """A knotd config for a secondary of `zone` pulled from `primary` ("addr@port"), with
    the TSIG key `key` = (name, algorithm, base64 secret) on its transfers when given;
    NOTIFY accepted (unsigned) from `notify_from`; transfers out allowed to 127.0.0.0/8 (to
    compare its copy); logs at info level to stderr; no zone file written."""
    storage = os.path.join(workdir, "storage")
    text = _knot_head(workdir, port, "info")
    if key:
        text += f"\nkey:\n  - id: {key[0]}\n    algorithm: {key[1]}\n    secret: {key[2]}\n"
    text += f"\nremote:\n  - id: primary\n    address: {primary}\n"
    if key:
        text += f"    key: {key[0]}\n"
    text += f"""
acl:
  - id: notify-from-primary
    address: {notify_from}
    action: notify
  - id: xfr-out
    address: 127.0.0.0/8
    action: transfer

zone:
  - domain: {zone}
    master: primary
    acl: [notify-from-primary, xfr-out]
    file: "{storage}/secondary.zone"
    storage: "{storage}"
    zonefile-sync: -1
    zonefile-load: none
    semantic-checks: off
    dnssec-signing: off
    zonemd-verify: off
"""
    return text


def start_knot_secondary(workdir, zone, primary, name="knot-secondary", key=None, port=None,
                         knotd="knotd", timeout=20.0):
    """Start knotd as a secondary (knot_secondary_config) on `port` or a free port; returns
    it once it answers anything (SERVFAIL before its first transfer)."""
    d = os.path.join(workdir, name)
    os.makedirs(d, exist_ok=True)

    def make(p):
        conf = os.path.join(d, "knot.conf")
        with open(conf, "w") as f:
            f.write(knot_secondary_config(d, p, zone, primary, key=key))
        srv = Server(name, [knotd, "-c", conf], d, p)
        srv.log_path = srv.stderr_path
        return srv

    return start_any_reply(make, zone, port=port, timeout=timeout)


def nsd_secondary_config(workdir, port, zone, primary):
    """An NSD config for a secondary of `zone` pulled from `primary` ("addr@port") without
    a key, NOTIFY accepted from 127.0.0.1, transfers out to 127.0.0.0/8 (to compare its
    copy), rate limiting off, every file inside workdir, the log in workdir/nsd.log."""
    return _nsd_server_clause(workdir, port, 2, f'    logfile: "{workdir}/nsd.log"\n') + f"""
zone:
    name: {zone}
    zonefile: "{workdir}/secondary.zone"
    request-xfr: {primary} NOKEY
    allow-notify: {LOOPBACK} NOKEY
    provide-xfr: 127.0.0.0/8 NOKEY
"""


def start_nsd_secondary(workdir, zone, primary, name="nsd-secondary", port=None, nsd="nsd",
                        timeout=20.0):
    """Start `nsd -d -c CONF` as a secondary on `port` or a free port; returns it once it
    answers anything. The Server has .log_path (NSD's log file)."""
    d = os.path.join(workdir, name)
    os.makedirs(d, exist_ok=True)

    def make(p):
        conf = os.path.join(d, "nsd.conf")
        with open(conf, "w") as f:
            f.write(nsd_secondary_config(d, p, zone, primary))
        srv = Server(name, [nsd, "-d", "-c", conf], d, p)
        srv.log_path = os.path.join(d, "nsd.log")
        return srv

    return start_any_reply(make, zone, port=port, timeout=timeout)


def soa_serial(addr, zone, timeout=0.5):
    """The serial of an authoritative NOERROR SOA answer for `zone`, else None."""
    try:
        r = soa_probe(addr, zone, timeout=timeout)
    except (OSError, dns.exception.DNSException):
        return None
    if r.rcode() != dns.rcode.NOERROR or not r.flags & dns.flags.AA:
        return None
    for rrset in r.answer:
        if rrset.rdtype == dns.rdatatype.SOA:
            return rrset[0].serial
    return None


def wait_serial(srv, zone, serial, timeout=30.0):
    """Poll until `srv` answers SOA `zone` with `serial`; returns the seconds it took.
    Raises ServerError (with the last serial seen) when the deadline passes."""
    start = time.monotonic()
    deadline = start + timeout
    last = None
    while time.monotonic() < deadline:
        if not srv.alive():
            raise ServerError("%s exited with status %s; stderr:\n%s"
                              % (srv.name, srv.proc.returncode, srv.stderr_text()))
        last = soa_serial(srv.addr, zone, timeout=0.3)
        if last == serial:
            return time.monotonic() - start
        time.sleep(0.05)
    raise ServerError("%s did not serve %s serial %d within %.0f s (last serial seen: %s)"
                      % (srv.name, zone, serial, timeout, last))


def read_log(path, start=0):
    """The text of a log file from byte offset `start` ("" when it does not exist)."""
    try:
        with open(path, "rb") as f:
            f.seek(start)
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def log_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def wait_log(path, pattern, start=0, timeout=10.0):
    """Poll the log file until the regex `pattern` matches its text after byte `start`;
    returns the match, or None after `timeout` seconds."""
    import re
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        m = rx.search(read_log(path, start))
        if m or time.monotonic() > deadline:
            return m
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------
# Helpers for the failover test (test_failover.py) and bench/failover_bench.py: a zone
# whose names all exist, dnsperf runs and their reports, tandemctl --json, metrics, and
# servers restarted on the port they had.

FAILOVER_HOSTS = ("www", "mail", "ns1", "ns2", "api", "db", "cdn", "ftp", "vpn", "shop")


def write_failover_zone(path, origin, serial, refresh=3600, retry=600, expire=1209600,
                        minimum=300, hosts=FAILOVER_HOSTS, marker=""):
    """A zone file for failover tests: SOA (with the given timers), two NS, an A record for
    every name of `hosts`, and `version.<origin> TXT <marker or serial>` so that copies of
    one serial from different servers can be told apart. Written atomically."""
    origin = origin.rstrip(".") + "."
    lines = [
        "$ORIGIN %s" % origin,
        "$TTL 300",
        "@ IN SOA ns1 hostmaster %d %d %d %d %d" % (serial, refresh, retry, expire, minimum),
        "@ IN NS ns1",
        "@ IN NS ns2",
    ]
    for i, h in enumerate(hosts):
        lines.append("%s IN A 192.0.2.%d" % (h, 10 + i))
    lines.append('version IN TXT "%s"' % (marker or serial))
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def write_query_file(path, origin, hosts=FAILOVER_HOSTS):
    """A dnsperf query file naming only names that exist (A of every host, and the SOA)."""
    origin = origin.rstrip(".")
    with open(path, "w") as f:
        for h in hosts:
            f.write("%s.%s A\n" % (h, origin))
        f.write("%s SOA\n" % origin)
    return len(hosts) + 1


def restart_server(srv, zone, timeout=20.0, ready=None):
    """Starts a stopped Server again with its argv (so on its port); waits until it answers
    SOA `zone` (ready(srv) instead when given). Returns the seconds from start to ready."""
    if srv.alive():
        raise ServerError("%s is still running (pid %d)" % (srv.name, srv.proc.pid))
    t0 = time.monotonic()
    deadline = t0 + timeout
    last = None
    while time.monotonic() < deadline:      # the port may take a moment to be free again
        srv.start()
        try:
            if ready:
                ready(srv)
            else:
                srv.wait_ready(zone, timeout=max(1.0, deadline - time.monotonic()))
            return time.monotonic() - t0
        except ServerError as e:
            last = e
            srv.stop()
            if "exited early" not in str(e):
                raise
            time.sleep(0.2)
    raise last or ServerError("%s did not restart within %.0f s" % (srv.name, timeout))


def kill_server(srv, sig=signal.SIGKILL, timeout=5.0):
    """Sends `sig` to the server by pid and waits (bounded) for it to exit."""
    p = srv.proc
    if p is None or p.poll() is not None:
        return
    try:
        os.kill(p.pid, sig)
    except ProcessLookupError:
        return
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass


def dnsperf_argv(server, port, query_file, seconds, qps=None, n_queries=None, clients=4,
                 timeout=2, prefix=()):
    """dnsperf bounded by time (-l) and by passes over the query file (-n); `qps` None for
    as fast as it goes. `prefix` e.g. ["ip", "netns", "exec", NS]."""
    argv = list(prefix) + ["dnsperf", "-s", server, "-p", str(port), "-d", query_file,
                           "-l", str(seconds), "-t", str(timeout), "-c", str(clients)]
    if qps:
        argv += ["-Q", str(qps)]
    if n_queries:
        argv += ["-n", str(max(1, (seconds * (qps or 200000)) // n_queries + 1))]
    return argv


class Dnsperf:
    """One dnsperf run in the background, its output in a file; stop() by pid."""

    def __init__(self, argv, out_path):
        self.argv = list(argv)
        self.out_path = out_path
        self.proc = None
        self.seconds = None
        if "-l" in self.argv:
            self.seconds = float(self.argv[self.argv.index("-l") + 1])

    def start(self):
        with open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT)
        return self

    def stop(self):
        stop_process(self.proc, grace=2.0)

    def interrupt(self):
        """SIGINT by pid: dnsperf stops sending and prints its report; queries still in
        flight are counted "interrupted", not lost (so interrupt at least -t seconds after
        the moment that matters)."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGINT)
            except ProcessLookupError:
                pass

    def wait(self, timeout=None):
        """Waits for dnsperf to end (bounded); returns parse_dnsperf() of its report, with
        "exit" and "text" added."""
        timeout = timeout if timeout is not None else (self.seconds or 30) + 15
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
        text = read_log(self.out_path)
        r = parse_dnsperf(text)
        r["exit"] = self.proc.returncode
        r["text"] = text
        return r


def parse_dnsperf(text):
    """{"sent", "completed", "lost", "qps", "rcodes": {"NOERROR": n, ...}} from a dnsperf
    report; missing fields are None."""
    import re

    def num(pattern, conv=int):
        m = re.search(pattern, text)
        return conv(m.group(1)) if m else None

    rcodes = {}
    m = re.search(r"Response codes:\s*(.*)", text)
    if m:
        for code, n in re.findall(r"([A-Z][A-Z0-9]*)\s+(\d+)\s+\(", m.group(1)):
            rcodes[code] = int(n)
    return {
        "sent": num(r"Queries sent:\s+(\d+)"),
        "completed": num(r"Queries completed:\s+(\d+)"),
        "lost": num(r"Queries lost:\s+(\d+)"),
        "qps": num(r"Queries per second:\s+([\d.]+)", float),
        "rcodes": rcodes,
    }


def tandemctl_json(tandemctl, socket_path, *args, timeout=10.0):
    """`tandemctl --socket S --json ARGS`; returns the parsed JSON (a dict with "ok"), or
    {"ok": False, "error": ...} when tandemctl fails or prints no JSON."""
    import json
    try:
        r = run_tandemctl(tandemctl, socket_path, *args, json_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": "tandemctl timed out"}
    try:
        doc = json.loads(r.stdout)
    except ValueError:
        return {"ok": False, "error": "exit %d: %s %s" % (r.returncode, r.stdout.strip(), r.stderr.strip())}
    if isinstance(doc, dict):
        doc.setdefault("ok", r.returncode == 0)
    return doc


def scrape_metrics(addr, timeout=2.0):
    """GET http://ADDR/metrics (addr = (host, port)); the text, or "" on an error."""
    import urllib.request
    try:
        with urllib.request.urlopen("http://%s:%d/metrics" % addr, timeout=timeout) as r:
            return r.read().decode("utf-8", "replace")
    except OSError:
        return ""


def metric_value(text, name, **labels):
    """The value of the sample `name{labels...}` (every given label must match; others
    may be present) in a Prometheus text exposition, or None."""
    import re
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)", line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            try:
                return float(m.group(4))
            except ValueError:
                return None
    return None


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, dict):
        return "{ " + ", ".join("%s = %s" % (k, _toml_value(x)) for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return '"%s"' % str(v).replace("\\", "\\\\").replace('"', '\\"')


def failover_tandem_config(zone, sources, state_dir, control_socket, listen=(), metrics="",
                           health=None, zone_keys=None, server_extra=None, extra_sections=""):
    """A tandemd config for one pulled zone. `sources`: [(name, "addr:port")] or
    [(name, "addr:port", {health overrides})], in order of preference; `health`: the
    [health] table; `zone_keys`: more keys of the [[zone]] (expire_min, ...);
    `server_extra`: more [server] keys (mode, workers, ...); `extra_sections`: raw TOML
    (e.g. a [dpdk] table) placed before the zone."""
    server = {"mode": "socket", "workers": 1}
    if listen:
        server["listen"] = list(listen)
    server["state_dir"] = state_dir
    server.update(server_extra or {})
    text = "[server]\n" + "".join("%s = %s\n" % (k, _toml_value(v)) for k, v in server.items())
    if metrics:
        text += '\n[metrics]\nlisten = "%s"\n' % metrics
    text += '\n[control]\nsocket = "%s"\n' % control_socket
    if health:
        text += "\n[health]\n" + "".join("%s = %s\n" % (k, _toml_value(v)) for k, v in health.items())
    if extra_sections:
        text += "\n" + extra_sections.rstrip("\n") + "\n"
    text += '\n[[zone]]\nname = "%s"\n' % zone
    for k, v in (zone_keys or {}).items():
        text += "%s = %s\n" % (k, _toml_value(v))
    text += "sources = [\n"
    for s in sources:
        entry = {"name": s[0], "address": s[1]}
        if len(s) > 2 and s[2]:
            entry["health"] = s[2]
        text += "  %s,\n" % _toml_value(entry)
    text += "]\n"
    return text


def knot_primary_config_at(workdir, address, port, zone, zone_file, notify=(), control_socket=""):
    """knot_primary_config() listening on `address` instead of 127.0.0.1 (e.g. inside a
    network namespace), transfers allowed from anywhere."""
    text = knot_primary_config(workdir, port, zone, zone_file, notify=notify,
                               control_socket=control_socket)
    text = text.replace("listen: %s@%d" % (LOOPBACK, port), "listen: %s@%d" % (address, port))
    return text.replace("address: 127.0.0.0/8\n    action: transfer",
                        "address: [0.0.0.0/0, ::/0]\n    action: transfer")


class AddrServer(Server):
    """A Server answering at another address than 127.0.0.1 (e.g. in a namespace)."""

    def __init__(self, name, argv, workdir, address, port, env=None):
        super().__init__(name, argv, workdir, port, env=env)
        self.address = address

    @property
    def addr(self):
        return (self.address, self.port)


class DelayProxy:
    """A relay on 127.0.0.1:PORT in front of a DNS server at `target` (host, port), whose
    UDP replies can be held back: `delay` seconds (settable at any time; 0 relays at once).
    TCP connections (SOA queries over TCP, transfers) are relayed as they are. For making a
    live server answer slower than tandem's overload threshold where the kernel has no
    netem. stop() relays the replies in flight, closes the UDP socket (later queries get
    "port unreachable", not silence) and everything else; threads end within 0.3 s."""

    def __init__(self, target, delay=0.0):
        import threading
        self.target = target
        self.delay = delay
        self.port = None
        self._stop = threading.Event()
        self._threads = []
        self._lock = threading.Lock()
        self._socks = []

    @property
    def addr(self):
        return (LOOPBACK, self.port)

    def start(self):
        import threading
        for _ in range(50):
            port = free_port()
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                u.bind((LOOPBACK, port))
                t.bind((LOOPBACK, port))
            except OSError:
                u.close()
                t.close()
                continue
            t.listen(16)
            self.port = port
            self._udp, self._tcp = u, t
            self._socks += [u, t]
            break
        else:
            raise RuntimeError("DelayProxy: no free port")
        for fn in (self._udp_loop, self._tcp_loop):
            th = threading.Thread(target=fn, daemon=True)
            th.start()
            self._threads.append(th)
        return self

    def stop(self):
        self._stop.set()
        for th in self._threads:
            th.join(timeout=2)
        with self._lock:
            for s in self._socks:
                try:
                    s.close()
                except OSError:
                    pass
            self._socks = []

    def _udp_loop(self):
        import heapq
        import select
        upstream = {}      # client address -> socket connected to the target
        back = {}          # upstream socket -> client address
        pending = []       # (due time, seq, client address, data)
        seq = 0
        closing_until = None
        while True:
            if self._stop.is_set() and closing_until is None:
                closing_until = time.monotonic() + 0.05   # relay what is in flight, then close
            if closing_until is not None and time.monotonic() >= closing_until:
                # Closed here, not after the join: from now on a query gets "port
                # unreachable" at once rather than no answer.
                self._udp.close()
                return
            now = time.monotonic()
            while pending and pending[0][0] <= now:
                _, _, client, data = heapq.heappop(pending)
                try:
                    self._udp.sendto(data, client)
                except OSError:
                    pass
            wait = 0.2 if not pending else max(0.0, min(0.2, pending[0][0] - now))
            if closing_until is not None:
                wait = min(wait, max(0.0, closing_until - now))
                pending = [(now,) + p[1:] for p in pending]     # no more holding back
                heapq.heapify(pending)
            try:
                ready, _, _ = select.select([self._udp] + list(back), [], [], wait)
            except (OSError, ValueError):
                return
            for s in ready:
                try:
                    if s is self._udp:
                        data, client = s.recvfrom(65535)
                        up = upstream.get(client)
                        if up is None:
                            up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                            up.connect(self.target)
                            upstream[client] = up
                            back[up] = client
                            with self._lock:
                                self._socks.append(up)
                        up.send(data)
                    else:
                        data = s.recv(65535)
                        seq += 1
                        hold = 0.0 if closing_until is not None else self.delay
                        heapq.heappush(pending, (time.monotonic() + hold, seq, back[s], data))
                except OSError:
                    continue      # e.g. the target's port unreachable: no reply, as if lost

    def _tcp_loop(self):
        import select
        import threading
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._tcp], [], [], 0.2)
            except (OSError, ValueError):
                return
            if not ready:
                continue
            try:
                c, _ = self._tcp.accept()
                u = socket.create_connection(self.target, timeout=2)
            except OSError:
                try:
                    c.close()
                except (OSError, UnboundLocalError):
                    pass
                continue
            with self._lock:
                self._socks += [c, u]
            th = threading.Thread(target=self._pump, args=(c, u), daemon=True)
            th.start()
            self._threads.append(th)

    def _pump(self, a, b):
        import select
        socks = [a, b]
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select(socks, [], [], 0.2)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for s in socks:
                try:
                    s.close()
                except OSError:
                    pass
