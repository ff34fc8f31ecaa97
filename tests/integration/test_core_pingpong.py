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
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))

import crosscore  # noqa: E402

PROGRAM = None


def run(*args):
    return subprocess.run([PROGRAM] + list(args), capture_output=True, text=True, timeout=30)


class Program(unittest.TestCase):
    def test_json_rounds_and_median(self):
        r = run("--cpus", "0,1", "--ms", "20", "--rounds", "3", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["cpus"], [0, 1])
        self.assertEqual(len(doc["rounds_ns"]), 3)
        self.assertEqual(doc["median_ns"], sorted(doc["rounds_ns"])[1])
        for v in doc["rounds_ns"]:
            self.assertGreater(v, 0)
            self.assertLess(v, 1e6)

    def test_plain_output_is_the_median(self):
        r = run("--ms", "10", "--rounds", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertGreater(float(r.stdout), 0)

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
        r = run("--cpus", "0,%d" % (os.cpu_count() + 7), "--ms", "10", "--rounds", "1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot pin", r.stderr)


class Wrapper(unittest.TestCase):
    def test_measure(self):
        v = crosscore.measure(PROGRAM, 0, 1)
        self.assertIsInstance(v, float)
        self.assertGreater(v, 0)

    def test_missing_or_failing_program_is_none(self):
        self.assertIsNone(crosscore.measure(None, 0, 1))
        self.assertIsNone(crosscore.measure("/nonexistent/core_pingpong", 0, 1))
        self.assertIsNone(crosscore.measure(PROGRAM, 0, os.cpu_count() + 7))
        self.assertIsNone(crosscore.find("/nonexistent/core_pingpong", None))
        self.assertEqual(crosscore.find(None, PROGRAM), PROGRAM)

    def test_text(self):
        self.assertEqual(crosscore.text([79.4, None]), "79 / - ns")


if __name__ == "__main__":
    PROGRAM = os.path.abspath(sys.argv.pop(1))
    unittest.main(argv=[sys.argv[0]] + sys.argv[1:], verbosity=2)
