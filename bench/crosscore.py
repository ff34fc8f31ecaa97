"""bench/core_pingpong from Python: how fast two CPUs pass a cache line, in ns per round
trip (the median of three rounds of 100 ms, each round's fastest batch). Everything a
benchmark sends between its two cores pays it, and on a VM whose host places the two
vCPUs near each other at one time and far apart at another it changes several times over
within seconds (72-90 ns against 356-432 ns on the machine docs/benchmarks.md
describes); bench-compare and memif_bench.py measure it around their runs so that a
figure can be read against the state the machine was in."""

import json
import os
import subprocess
import sys

# Above this many ns, the two CPUs were far apart (between the two states seen here).
FAR_NS = 200


def find(*candidates):
    """The first executable file among the candidate paths, or None."""
    return next((c for c in candidates
                 if c and os.path.isfile(c) and os.access(c, os.X_OK)), None)


_warned = []  # the first failure is told on stderr, once


def measure(path, cpu_a, cpu_b, nice=0):
    """ns per round trip between cpu_a and cpu_b, or None (no program, or it failed)."""
    if path is None:
        return None
    argv = [path, "--cpus", "%d,%d" % (cpu_a, cpu_b), "--ms", "100", "--rounds", "3", "--json"]
    if nice:
        argv = ["nice", "-n", str(nice)] + argv
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        if r.returncode == 0:
            return json.loads(r.stdout)["median_ns"]
        why = "exit status %d: %s" % (r.returncode, r.stderr.strip())
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError) as e:
        why = str(e) or type(e).__name__
    if not _warned:
        _warned.append(why)
        print("%s: the cross-core round trip is not measured (%s)" % (path, why),
              file=sys.stderr, flush=True)
    return None


def state(values):
    """A run's state from the figures measured before and after it: "near" (every one at
    most FAR_NS), "far" (every one above), "changed" (one of each), or None (none
    measured)."""
    vs = [v for v in values or [] if v is not None]
    if not vs:
        return None
    n_far = sum(1 for v in vs if v > FAR_NS)
    return "near" if n_far == 0 else "far" if n_far == len(vs) else "changed"


def text(values):
    """'79 / 80 ns' for the values measured before and after a run ('-' for a missing one)."""
    return " / ".join("-" if v is None else "%.0f" % v for v in values) + " ns"
