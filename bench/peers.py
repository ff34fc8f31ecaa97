"""The servers of the side-by-side benchmark (bench/compare.py): tandemd, Knot DNS, NSD and
BIND, each configured with one worker to answer one zone file, started as a process
whose readiness, CPU time and memory can be read.

- Server: one process (and its children), started under `taskset` and/or in a network
  namespace; ready() polls an SOA query over UDP and returns the seconds since the
  start; sched() (CPU time, and time waiting for a CPU) and pss_kib() sum over the
  process tree (NSD forks); stop() by pid.
- socket_server(KIND, ...): tandem, knot, nsd or bind on a loopback port.
- tandem_xdp(...), knot_xdp(...): the kernel-bypass setups on a veth (tandem in dpdk mode
  with net_af_xdp, Knot DNS in XDP mode).
"""

import os
import random
import shutil
import socket
import struct
import subprocess
import time
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import procs  # noqa: E402

ZONE = "bench.test"
KINDS = ("tandem", "knot", "nsd", "bind")
LABELS = {"tandem": "tandem", "knot": "Knot DNS", "nsd": "NSD", "bind": "BIND",
          "tandem-xdp": "tandem (dpdk, net_af_xdp)", "knot-xdp": "Knot DNS (XDP)"}


class ServerError(RuntimeError):
    pass


def free_port():
    """A loopback port that was just free for both UDP and TCP."""
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
        finally:
            t.close()
            u.close()
    raise ServerError("no free loopback port")


def soa_answered(addr, zone=ZONE, timeout=0.2):
    """True when `addr` answers SOA `zone` over UDP with NOERROR, AA and an answer."""
    qid = random.randrange(65536)
    wire = struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in zone.strip(".").split("."):
        wire += bytes([len(label)]) + label.encode()
    wire += b"\x00" + struct.pack("!HH", 6, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.connect(addr)
        s.send(wire)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            data = s.recv(65535)
            if len(data) < 12:
                continue
            rid, flags, _, ancount = struct.unpack("!HHHH", data[:8])
            if rid == qid and flags & 0x8000:
                return (flags & 0x000F) == 0 and bool(flags & 0x0400) and ancount > 0
    except OSError:
        return False
    finally:
        s.close()
    return False


def launcher(cpus=None, nice=0):
    """The command prefix that runs a program at niceness `nice`, pinned to `cpus`."""
    return (["nice", "-n", str(nice)] if nice else []) + (["taskset", "-c", cpus] if cpus else [])


def spawn(argv, out, nice=0):
    """Popen(argv) with stdout and stderr to the file `out`. With `nice`, in a session of
    its own whose scheduling group gets that niceness too: where the kernel groups
    processes by session (autogroup), a process's own nice value weighs only against the
    other processes of its session, not against the rest of the machine."""
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                         close_fds=True, start_new_session=bool(nice))
    if nice:
        try:
            with open("/proc/%d/autogroup" % p.pid, "w") as f:
                f.write(str(nice))
        except OSError:
            pass        # no autogroup scheduling: the nice value alone counts
    return p


def _children():
    """{ppid: [pid, ...]} for every process."""
    tree = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(name))
    return tree


def sched_seconds(pids):
    """(running, waiting for a CPU) seconds so far, summed over every thread of `pids`,
    from /proc/PID/task/TID/schedstat. Waiting is time runnable but not running: on a
    shared machine, what other processes took."""
    run = wait = 0
    for pid in pids:
        try:
            tids = os.listdir("/proc/%d/task" % pid)
        except OSError:
            continue
        for tid in tids:
            try:
                with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                    fields = f.read().split()
                run += int(fields[0])
                wait += int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    return run / 1e9, wait / 1e9


def cpu_times():
    """{cpu number: (busy, softirq, total)} jiffies from /proc/stat, for cpu_usage()."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *vals = line.split()
                v = [int(x) for x in vals[:8]]
                idle = v[3] + v[4]
                out[int(name[3:])] = (sum(v) - idle, v[6], sum(v))
    return out


def cpu_usage(before, after):
    """{cpu: {"busy": share, "softirq": share}} between two cpu_times()."""
    out = {}
    for cpu, (busy, soft, total) in after.items():
        b0, s0, t0 = before.get(cpu, (0, 0, 0))
        span = max(1, total - t0)
        out[cpu] = {"busy": (busy - b0) / float(span), "softirq": (soft - s0) / float(span)}
    return out


class Server:
    """One server process. `argv` runs with `prefix` (taskset, ip netns exec) in front;
    both exec the server, so the pid is the server's."""

    def __init__(self, kind, argv, workdir, addr, prefix=(), config_path="", nice=0):
        self.kind = kind
        self.label = LABELS[kind]
        self.argv = list(prefix) + list(argv)
        self.nice = nice
        self.workdir = workdir
        self.addr = addr
        self.config_path = config_path
        self.proc = None
        self.started = None
        self.stderr_path = os.path.join(workdir, "%s.stderr" % kind)

    def start(self):
        with open(self.stderr_path, "wb") as err:
            self.started = time.monotonic()
            self.proc = spawn(self.argv, err, self.nice)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr_text(self, limit=3000):
        try:
            with open(self.stderr_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return text[-limit:]

    def ready(self, timeout, probe=None):
        """Polls SOA until answered; returns seconds since start(). `probe(addr)` replaces
        the plain UDP probe (e.g. to send it from another namespace)."""
        probe = probe or soa_answered
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise ServerError("%s exited with status %s:\n%s"
                                  % (self.label, self.proc.returncode, self.stderr_text()))
            if probe(self.addr):
                return time.monotonic() - self.started
            time.sleep(0.01)
        raise ServerError("%s did not answer SOA %s at %s:%d within %.0f s:\n%s"
                          % (self.label, ZONE, self.addr[0], self.addr[1], timeout,
                             self.stderr_text()))

    def pids(self):
        if not self.alive():
            return []
        tree = _children()
        out, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo += tree.get(pid, [])
        return out

    def sched(self):
        """sched_seconds() of the process tree."""
        return sched_seconds(self.pids())

    def affinities(self):
        """{Cpus_allowed_list: number of threads} over the process tree: shows a server
        that pins its own threads elsewhere than it was started on."""
        out = {}
        for pid in self.pids():
            try:
                tids = os.listdir("/proc/%d/task" % pid)
            except OSError:
                continue
            for tid in tids:
                try:
                    with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                        for line in f:
                            if line.startswith("Cpus_allowed_list:"):
                                cpus = line.split(":", 1)[1].strip()
                                out[cpus] = out.get(cpus, 0) + 1
                except OSError:
                    continue
        return out

    def pss_kib(self):
        """Proportional set size of the process tree, from /proc/PID/smaps_rollup."""
        total = 0
        for pid in self.pids():
            try:
                with open("/proc/%d/smaps_rollup" % pid) as f:
                    for line in f:
                        if line.startswith("Pss:"):
                            total += int(line.split()[1])
                            break
            except OSError:
                continue
        return total

    def stop(self, grace=10.0):
        """SIGTERM by pid, then SIGKILL by pid; safe to call more than once."""
        procs.stop_process(self.proc, grace)


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def _dir(parent, name):
    d = os.path.join(parent, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def _knot_conf(d, listen, zone_file, xdp_iface=""):
    xdp = ("xdp:\n    listen: %s@53\n    udp: on\n    tcp: off\n\n" % xdp_iface) if xdp_iface else ""
    return f"""\
server:
    rundir: "{d}"
    listen: {listen}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1

{xdp}database:
    storage: "{d}"

log:
  - target: stderr
    any: warning

zone:
  - domain: {ZONE}
    file: "{zone_file}"
    storage: "{d}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
"""


def _nsd_conf(d, port, zone_file):
    return f"""\
server:
    ip-address: 127.0.0.1
    port: {port}
    server-count: 1
    rrl-ratelimit: 0
    reuseport: no
    username: ""
    zonesdir: "{d}"
    database: ""
    zonelistfile: "{d}/zone.list"
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    pidfile: "{d}/nsd.pid"
    verbosity: 0

remote-control:
    control-enable: no

zone:
    name: {ZONE}
    zonefile: "{zone_file}"
"""


def _named_conf(d, port, zone_file):
    return f"""\
options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
    allow-transfer {{ none; }};
}};
controls {{ }};
logging {{
    channel err {{ stderr; severity warning; }};
    category default {{ err; }};
}};
zone "{ZONE}" {{
    type primary;
    file "{zone_file}";
}};
"""


def _tandem_conf(d, port, zone_file, udp_coalesce_us=None):
    coalesce = "" if udp_coalesce_us is None else "udp_coalesce_us = %d\n" % udp_coalesce_us
    return f"""\
[server]
mode = "socket"
listen = ["127.0.0.1:{port}"]
workers = 1
state_dir = "{d}/state"
log_level = "warning"
{coalesce}
[[zone]]
name = "{ZONE}"
file = "{zone_file}"
"""


def socket_server(kind, tmp, zone_file, tandemd, cpus=None, nice=0, udp_coalesce_us=None):
    """A server of `kind` (tandem, knot, nsd, bind) answering `zone_file` on a free
    loopback port with one worker, pinned to `cpus` (a taskset list) when given; tandem
    with `udp_coalesce_us` when given (else its default)."""
    d = _dir(tmp, kind)
    port = free_port()
    prefix = launcher(cpus, nice)
    if kind == "tandem":
        conf = _write(os.path.join(d, "tandem.toml"), _tandem_conf(d, port, zone_file, udp_coalesce_us))
        argv = [tandemd, "--config", conf]
    elif kind == "knot":
        conf = _write(os.path.join(d, "knot.conf"), _knot_conf(d, "127.0.0.1@%d" % port, zone_file))
        argv = ["knotd", "-c", conf]
    elif kind == "nsd":
        conf = _write(os.path.join(d, "nsd.conf"), _nsd_conf(d, port, zone_file))
        argv = ["nsd", "-d", "-c", conf]
    elif kind == "bind":
        conf = _write(os.path.join(d, "named.conf"), _named_conf(d, port, zone_file))
        argv = ["named", "-f", "-n", "1", "-u", "root", "-c", conf]
    else:
        raise ValueError(kind)
    return Server(kind, argv, d, ("127.0.0.1", port), prefix=prefix, config_path=conf, nice=nice)


def tandem_xdp(tmp, zone_file, tandemd, bed, server_addr, worker_cpu, main_cpu, nice=0):
    """tandemd in dpdk mode with net_af_xdp on the server end of the testbed `bed`
    (tests/integration/netns.py), its worker lcore on `worker_cpu`."""
    d = _dir(tmp, "tandem-xdp")
    eal = ["--no-huge", "-m", "512", "--no-pci", "--file-prefix=tbench%d" % os.getpid(),
           "--vdev=net_af_xdp0,iface=%s" % bed.server_if,
           "--lcores=0@%d,1@%d" % (main_cpu, worker_cpu), "--log-level=warning"]
    conf = _write(os.path.join(d, "tandem.toml"), f"""\
[server]
mode = "dpdk"
workers = 1
state_dir = "{d}/state"
log_level = "warning"

[dpdk]
eal_args = [{", ".join('"%s"' % a for a in eal)}]
address = ["{server_addr}/24"]
exception_iface = "{bed.exception_if}"

[control]
socket = "{d}/control.sock"

[[zone]]
name = "{ZONE}"
file = "{zone_file}"
""")
    argv = ["ip", "netns", "exec", bed.server_ns] + launcher(None, nice) + [tandemd, "--config", conf]
    return Server("tandem-xdp", argv, d, (server_addr, 53), config_path=conf, nice=nice)


def knot_xdp(tmp, zone_file, bed, server_addr, cpus, nice=0):
    """knotd in XDP mode on the server end of the testbed, pinned to `cpus`."""
    d = _dir(tmp, "knot-xdp")
    conf = _write(os.path.join(d, "knot.conf"),
                  _knot_conf(d, "127.0.0.1@53", zone_file, xdp_iface=bed.server_if))
    argv = ["ip", "netns", "exec", bed.server_ns] + launcher(cpus, nice) + ["knotd", "-c", conf]
    return Server("knot-xdp", argv, d, (server_addr, 53), config_path=conf, nice=nice)
