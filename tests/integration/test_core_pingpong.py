#!/usr/bin/python3
"""bench/core_pingpong (the cross-core round trip that bench-compare and memif_bench.py
measure around every run) and bench/crosscore.py, which runs it: the JSON it prints, a
round trip that is a time (positive, below a millisecond even on a loaded machine), its
errors for bad arguments, and the wrapper's answer when the program is missing or fails.

  test_core_pingpong.py PATH_TO_CORE_PINGPONG
"""

import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))

import crosscore  # noqa: E402

PROGRAM = None
ALLOWED = sorted(os.sched_getaffinity(0))  # the CPUs this process may use
OUTSIDE = max(ALLOWED + [os.cpu_count() or 1]) + 7  # a CPU it may not


def run(*args):
    return subprocess.run([PROGRAM] + list(args), capture_output=True, text=True, timeout=30)


def two_cpus(test):
    if len(ALLOWED) < 2:
        test.skipTest("needs two CPUs to run on, has %s" % ALLOWED)
    return ALLOWED[0], ALLOWED[1]


class Program(unittest.TestCase):
    def test_json_rounds_and_median(self):
        a, b = two_cpus(self)
        r = run("--cpus", "%d,%d" % (a, b), "--ms", "20", "--rounds", "3", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["cpus"], [a, b])
        self.assertEqual(len(doc["rounds_ns"]), 3)
        self.assertEqual(doc["median_ns"], sorted(doc["rounds_ns"])[1])
        for v in doc["rounds_ns"]:
            self.assertGreater(v, 0)
            self.assertLess(v, 1e6)

    def test_an_even_number_of_rounds_takes_the_middle_two(self):
        a, b = two_cpus(self)
        r = run("--cpus", "%d,%d" % (a, b), "--ms", "20", "--rounds", "2", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertAlmostEqual(doc["median_ns"], sum(doc["rounds_ns"]) / 2, delta=0.1)

    def test_plain_output_is_one_number(self):
        a, b = two_cpus(self)
        r = run("--cpus", "%d,%d" % (a, b), "--ms", "20", "--rounds", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^[0-9]+\.[0-9]\n$")
        self.assertGreater(float(r.stdout), 0)

    def test_other_work_on_a_cpu_does_not_inflate_it(self):
        # A busy loop at nice -19 on the second CPU leaves the second thread a small share
        # of it, in time slices of milliseconds: a round's fastest batch of round trips is
        # still a round trip, where the round's average would be many times one.
        a, b = two_cpus(self)
        if os.geteuid() != 0:
            self.skipTest("needs root (nice -19)")
        hog = subprocess.Popen(
            [sys.executable, "-c",
             "import os, time\nos.sched_setaffinity(0, {%d})\nos.nice(-19)\n"
             "end = time.monotonic() + 5\nwhile time.monotonic() < end: pass\n" % b])
        try:
            time.sleep(0.2)
            r = run("--cpus", "%d,%d" % (a, b), "--ms", "600", "--rounds", "1", "--json")
        finally:
            hog.kill()
            hog.wait()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertLess(json.loads(r.stdout)["median_ns"], 2000)

    def test_bad_arguments_name_the_option(self):
        for args, option in ((["--cpus", "0,0"], "--cpus"), (["--cpus", "1"], "--cpus"),
                             (["--ms", "0"], "--ms"), (["--ms", "ten"], "--ms"),
                             (["--rounds", "-1"], "--rounds"), (["--rounds"], "--rounds"),
                             (["--fast"], "--fast")):
            r = run(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(option, r.stderr, args)
            self.assertEqual(r.stdout, "", args)

    def test_a_cpu_it_cannot_use(self):
        r = run("--cpus", "%d,%d" % (ALLOWED[0], OUTSIDE), "--ms", "10", "--rounds", "1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot pin", r.stderr)


class Wrapper(unittest.TestCase):
    def test_measure(self):
        a, b = two_cpus(self)
        v = crosscore.measure(PROGRAM, a, b)
        self.assertIsInstance(v, float)
        self.assertGreater(v, 0)

    def test_missing_or_failing_program_is_none(self):
        self.assertIsNone(crosscore.measure(None, 0, 1))
        self.assertIsNone(crosscore.measure("/nonexistent/core_pingpong", 0, 1))
        self.assertIsNone(crosscore.measure(PROGRAM, ALLOWED[0], OUTSIDE))

    def test_find_takes_the_first_executable_file(self):
        self.assertIsNone(crosscore.find("/nonexistent/core_pingpong", None))
        self.assertIsNone(crosscore.find(os.path.dirname(PROGRAM)))  # a directory is no program
        self.assertEqual(crosscore.find(None, os.path.dirname(PROGRAM), PROGRAM), PROGRAM)

    def test_state(self):
        self.assertEqual(crosscore.state([80.0, crosscore.FAR_NS]), "near")
        self.assertEqual(crosscore.state([crosscore.FAR_NS + 1, None]), "far")
        self.assertEqual(crosscore.state([80.0, 390.0]), "changed")
        self.assertIsNone(crosscore.state([None, None]))
        self.assertIsNone(crosscore.state(None))

    def test_text(self):
        self.assertEqual(crosscore.text([79.4, None]), "79 / - ns")


if __name__ == "__main__":
    PROGRAM = os.path.abspath(sys.argv.pop(1))
    unittest.main(argv=[sys.argv[0]] + sys.argv[1:], verbosity=2)
