"""The task suite's tasks: small real coding jobs in throwaway git repositories, each with its own verifier.

A task is a prompt for ``claude -p``, the files of a repository, and a verifier that looks at what the
agent left behind — the files (do the tests pass now? does the file hold exactly this?) and its final
answer — and says whether the job was done, and if not, why. Verifiers run on the host with the host's
``python3`` (stdlib ``unittest``: the repositories need nothing installed).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["TASKS", "Outcome", "Task", "by_name"]


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str


@dataclass(frozen=True)
class Task:
    name: str
    kind: str
    """What the task exercises: fix, create, rename, question, run, two-step."""
    prompt: str
    files: dict[str, str]
    verify: Callable[[Path, str], Outcome]
    """(workdir after the run, the agent's final answer) -> outcome."""
    tools: tuple[str, ...] = field(default=())
    """Tool names a successful run typically calls (reported, not required)."""


def unittest_passes(workdir: Path) -> Outcome:
    r = subprocess.run(
        [sys.executable, "-m", "unittest", "-q"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or [""]
    return Outcome(r.returncode == 0, f"unittest: {tail[0]}")


def _read(workdir: Path, name: str) -> str | None:
    try:
        return (workdir / name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


# --- 1. fix a bug so that the tests pass -------------------------------------------------------------

CALC = '''def add(a, b):
    """Return the sum of a and b."""
    return a - b


def subtract(a, b):
    """Return a minus b."""
    return a - b
'''
TEST_CALC = """import unittest

from calc import add, subtract


class CalcTest(unittest.TestCase):
    def test_add(self):
        self.assertEqual(add(2, 3), 5)

    def test_subtract(self):
        self.assertEqual(subtract(5, 3), 2)


if __name__ == "__main__":
    unittest.main()
"""


def verify_fix(workdir: Path, answer: str) -> Outcome:
    if _read(workdir, "test_calc.py") != TEST_CALC:
        return Outcome(False, "test_calc.py was changed")
    return unittest_passes(workdir)


# --- 2. create a file with given content -------------------------------------------------------------

GREETING = "Hello from the sandbox!"


def verify_create(workdir: Path, answer: str) -> Outcome:
    text = _read(workdir, "greeting.txt")
    if text is None:
        return Outcome(False, "greeting.txt missing")
    if text.strip() != GREETING:
        return Outcome(False, f"greeting.txt holds {text[:60]!r}")
    return Outcome(True, "greeting.txt holds the line")


# --- 3. rename a function across two files -----------------------------------------------------------

UTILS = '''def compute(values):
    """The mean of a list of numbers."""
    return sum(values) / len(values)
'''
MAIN = """from utils import compute


def report(values):
    return f"mean={compute(values)}"


if __name__ == "__main__":
    print(report([1, 2, 3]))
"""


def verify_rename(workdir: Path, answer: str) -> Outcome:
    utils, main = _read(workdir, "utils.py") or "", _read(workdir, "main.py") or ""
    if re.search(r"\bcompute\b", utils + main):
        return Outcome(False, "`compute` is still used")
    if "def calculate(" not in utils or "calculate(" not in main:
        return Outcome(False, "`calculate` is not defined in utils.py and used in main.py")
    r = subprocess.run(
        [sys.executable, "main.py"], cwd=workdir, capture_output=True, text=True, timeout=30, check=False
    )
    if r.stdout.strip() != "mean=2.0":
        return Outcome(False, f"main.py prints {r.stdout.strip()[:60]!r} {r.stderr.strip()[-80:]!r}")
    return Outcome(True, "renamed in both files, main.py still runs")


# --- 4. answer a question about the code -------------------------------------------------------------

TEXT = '''import re


def slugify(title):
    """Lower-case words of the title joined by hyphens."""
    words = re.findall(r"[a-z0-9]+", title.lower())
    return "-".join(words)
'''


def verify_question(workdir: Path, answer: str) -> Outcome:
    if "sandbox-stack-2026" in answer:
        return Outcome(True, "the answer names the slug")
    return Outcome(False, f"answer: {answer.strip()[:80]!r}")


# --- 5. run the tests and report ---------------------------------------------------------------------

STATS = """def mean(values):
    return sum(values) / len(values)


def median(values):
    ordered = sorted(values)
    return ordered[len(ordered) // 2]
"""
TEST_STATS = """import unittest

from stats import mean, median


class StatsTest(unittest.TestCase):
    def test_mean(self):
        self.assertEqual(mean([1, 2, 3]), 2)

    def test_median_odd(self):
        self.assertEqual(median([3, 1, 2]), 2)

    def test_median_even(self):
        self.assertEqual(median([1, 2, 3, 4]), 2.5)


if __name__ == "__main__":
    unittest.main()
"""


def verify_run(workdir: Path, answer: str) -> Outcome:
    if "test_median_even" in answer:
        return Outcome(True, "the answer names the failing test")
    return Outcome(False, f"answer: {answer.strip()[:80]!r}")


# --- 6. two steps: add a function, then a test for it ------------------------------------------------


def verify_two_step(workdir: Path, answer: str) -> Outcome:
    calc, tests = _read(workdir, "calc.py") or "", _read(workdir, "test_calc.py") or ""
    if "def multiply(" not in calc:
        return Outcome(False, "calc.py has no multiply()")
    if "multiply" not in tests:
        return Outcome(False, "test_calc.py does not test multiply()")
    probe = subprocess.run(
        [sys.executable, "-c", "from calc import multiply; assert multiply(3, 4) == 12"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if probe.returncode != 0:
        return Outcome(False, f"multiply(3, 4) != 12: {probe.stderr.strip()[-80:]!r}")
    return unittest_passes(workdir)


CALC_FIXED = CALC.replace("return a - b\n\n\ndef subtract", "return a + b\n\n\ndef subtract")

TASKS: tuple[Task, ...] = (
    Task(
        "fix-bug",
        "fix",
        "The test in test_calc.py fails. Fix the bug in calc.py so that the tests pass.",
        {"calc.py": CALC, "test_calc.py": TEST_CALC},
        verify_fix,
        ("Read", "Edit"),
    ),
    Task(
        "create-file",
        "create",
        f"Create a file named greeting.txt that contains exactly this line: {GREETING}",
        {"README.md": "# Greetings\n"},
        verify_create,
        ("Write",),
    ),
    Task(
        "rename-function",
        "rename",
        "Rename the function `compute` to `calculate` in utils.py and everywhere it is used (main.py).",
        {"utils.py": UTILS, "main.py": MAIN},
        verify_rename,
        ("Read", "Edit"),
    ),
    Task(
        "answer-question",
        "question",
        "What does slugify() in text.py return for the title 'Sandbox Stack 2026'? Answer with the value.",
        {"text.py": TEXT},
        verify_question,
        ("Read",),
    ),
    Task(
        "run-tests",
        "run",
        "Run the tests with `python3 -m unittest -v` and tell me the name of the test that fails.",
        {"stats.py": STATS, "test_stats.py": TEST_STATS},
        verify_run,
        ("Bash",),
    ),
    Task(
        "two-step",
        "two-step",
        "Add a function multiply(a, b) to calc.py that returns a * b. "
        "Then add a test for it to test_calc.py.",
        {"calc.py": CALC_FIXED, "test_calc.py": TEST_CALC},
        verify_two_step,
        ("Edit", "Edit"),
    ),
)


def by_name(names: str | None) -> tuple[Task, ...]:
    """The tasks named in a comma-separated list (all when None)."""
    if not names:
        return TASKS
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    known = {t.name: t for t in TASKS}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise SystemExit(f"unknown task(s) {unknown}; known: {', '.join(known)}")
    return tuple(known[n] for n in wanted)
