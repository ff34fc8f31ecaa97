"""The load generators of the side-by-side benchmark (bench/compare.py), each bounded by
time: dnsperf on loopback (socket mode) and kxdpgun from a client network namespace over
a veth (kernel bypass). Each run returns what the generator reported, parsed.
"""

import os
import re
import signal
import time

import peers


def watch(procs, seconds):
    """Waits for the processes, killing by pid any still running 30 s past `seconds`,
    and samples their CPU time and time waiting for a CPU meanwhile. Returns both as
    shares of the run's wall time, per process on average: {"gen_cpu_share",
    "gen_wait_share"}."""
    t0 = time.monotonic()
    pids = [p.pid for p in procs]
    last = (0.0, 0.0, t0)
    try:
        while any(p.poll() is None for p in procs):
            if time.monotonic() - t0 > seconds + 30:
                break
            run, wait = peers.sched_seconds(pids)
            if run > 0:
                last = (run, wait, time.monotonic())
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
    if last[2] == t0:
        return {"gen_cpu_share": None, "gen_wait_share": None}     # never sampled
    span = (last[2] - t0) * len(procs)
    return {"gen_cpu_share": last[0] / span, "gen_wait_share": last[1] / span}


def _num(pattern, text, conv=int):
    m = re.search(pattern, text)
    return conv(m.group(1)) if m else None


class Dnsperf:
    """dnsperf against one address for `seconds`, `procs` processes side by side, each
    with `clients` sockets (-c), `threads` threads (-T) and `outstanding` queries in
    flight (-q), pinned to `cpus` when given, at niceness `nice`."""

    def __init__(self, query_file, seconds, clients=4, threads=1, outstanding=100, procs=1,
                 cpus=None, nice=0):
        self.query_file = query_file
        self.seconds = seconds
        self.clients = clients
        self.threads = threads
        self.outstanding = outstanding
        self.procs = procs
        self.cpus = cpus
        self.nice = nice

    def argv(self, addr):
        return peers.launcher(self.cpus, self.nice) + [
            "dnsperf", "-s", addr[0], "-p", str(addr[1]), "-d", self.query_file,
            "-l", str(self.seconds), "-n", "1000000", "-t", "2",
            "-c", str(self.clients), "-T", str(self.threads), "-q", str(self.outstanding)]

    def run(self, addr, out_prefix):
        """Runs the processes at once; returns {"sent", "completed", "lost", "qps",
        "rcodes": {NAME: count}} summed over them (qps: completed queries per second),
        "response_bytes" (the average reply size), "latency_us" (dnsperf's average latency),
        "gen_cpu_share", "gen_wait_share"."""
        runs = []
        for i in range(self.procs):
            out = "%s.%d.out" % (out_prefix, i)
            with open(out, "wb") as f:
                runs.append((peers.spawn(self.argv(addr), f, self.nice), out))
        total = {"sent": 0, "completed": 0, "lost": 0, "qps": 0.0, "rcodes": {}}
        total.update(watch([p for p, _ in runs], self.seconds))
        for p, out in runs:
            with open(out, "rb") as f:
                text = f.read().decode("utf-8", "replace")
            qps = _num(r"Queries per second:\s+([\d.]+)", text, float)
            if p.returncode != 0 or qps is None:
                raise RuntimeError("dnsperf failed (exit %s):\n%s" % (p.returncode, text[-2000:]))
            total["sent"] += _num(r"Queries sent:\s+(\d+)", text) or 0
            total["completed"] += _num(r"Queries completed:\s+(\d+)", text) or 0
            total["lost"] += _num(r"Queries lost:\s+(\d+)", text) or 0
            total["qps"] += qps
            total["response_bytes"] = _num(r"Average packet size:.*response (\d+)", text)
            latency = _num(r"Average Latency \(s\):\s+([\d.]+)", text, float)
            if latency is not None:  # the mean over the processes
                total.setdefault("latencies", []).append(latency)
            m = re.search(r"Response codes:\s*(.*)", text)
            for code, n in re.findall(r"([A-Z][A-Z0-9]*)\s+(\d+)\s+\(", m.group(1) if m else ""):
                total["rcodes"][code] = total["rcodes"].get(code, 0) + int(n)
        lat = total.pop("latencies", [])
        total["latency_us"] = 1e6 * sum(lat) / len(lat) if lat else None
        return total


class Kxdpgun:
    """kxdpgun in namespace `ns` out of `iface`, at `qps` offered for `seconds`, pinned to
    `cpu` (its -F affinity: one thread, the veth has one queue), at niceness `nice`."""

    def __init__(self, query_file, seconds, qps, ns, iface, local_ip, remote_mac, cpu, nice=0):
        self.query_file = query_file
        self.seconds = seconds
        self.qps = qps
        self.ns = ns
        self.iface = iface
        self.local_ip = local_ip
        self.remote_mac = remote_mac
        self.cpu = cpu
        self.nice = nice

    def argv(self, target_ip):
        return ["ip", "netns", "exec", self.ns] + peers.launcher(None, self.nice) + [
            "kxdpgun", "-t", str(self.seconds), "-Q", str(self.qps), "-i", self.query_file,
            "-I", self.iface, "-l", self.local_ip, "-R", self.remote_mac, "-F", str(self.cpu),
            target_ip]

    def run(self, target_ip, out_path):
        """Returns {"sent", "replies", "sent_pps", "replies_pps", "answered"} and
        watch()'s shares."""
        with open(out_path, "wb") as out:
            p = peers.spawn(self.argv(target_ip), out, self.nice)
        shares = watch([p], self.seconds)
        status = p.returncode
        with open(out_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        sent = re.search(r"total queries:\s+(\d+)\s+\((\d+) pps\)", text)
        replies = re.search(r"total replies:\s+(\d+)\s+\((\d+) pps\)", text)
        if status != 0 or not sent:
            raise RuntimeError("kxdpgun failed (exit %s):\n%s" % (status, text[-2000:]))
        n_sent, n_replies = int(sent.group(1)), int(replies.group(1)) if replies else 0
        return dict(shares, sent=n_sent, replies=n_replies, sent_pps=int(sent.group(2)),
                    replies_pps=int(replies.group(2)) if replies else 0,
                    answered=(n_replies / float(n_sent)) if n_sent else 0.0)
