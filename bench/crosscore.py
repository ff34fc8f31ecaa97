"""bench/core_pingpong from Python: how fast two CPUs pass a cache line, in ns per round
trip (the median of three rounds of 100 ms). Everything a benchmark sends between its two
cores pays it, and on a VM whose host places the two vCPUs close together at one time and
far apart at another it changes several times over (about 80 ns against 350-400 ns on the
machine docs/benchmarks.md describes); bench-compare and memif_bench.py measure it around
every run so that a figure can be read against the state the machine was in."""

import json
import os
import subprocess

# Above this many ns, the two CPUs were far apart (between the two states seen here).
FAR_NS = 200


def find(*candidates):
    """The first executable among the candidate paths, or None."""
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def measure(path, cpu_a, cpu_b, nice=0):
    """ns per round trip between cpu_a and cpu_b, or None (no program, or it failed)."""
    if path is None:
        return None
    argv = [path, "--cpus", "%d,%d" % (cpu_a, cpu_b), "--ms", "100", "--rounds", "3", "--json"]
    if nice:
        argv = ["nice", "-n", str(nice)] + argv
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        return json.loads(r.stdout)["median_ns"] if r.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError):
        return None


def text(values):
    """'79 / 80 ns' for the values measured before and after a run ('-' for a missing one)."""
    return " / ".join("-" if v is None else "%.0f" % v for v in values) + " ns"
