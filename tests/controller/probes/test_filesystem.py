"""ccstack.probes.filesystem: the mountinfo parser (the probes run in tests/isolation)."""

from __future__ import annotations

import pytest
from ccstack.probes import filesystem

pytestmark = pytest.mark.unit


MOUNTINFO = """\
1 0 0:1 / / ro,relatime - overlay overlay rw,lowerdir=/x
2 1 0:2 / /proc rw,nosuid - proc proc rw
3 1 8:1 /home/u/project /workspace rw,relatime - ext4 /dev/sda1 rw
4 3 8:1 /home/u/project/.git/hooks /workspace/.git/hooks ro,relatime - ext4 /dev/sda1 rw
5 1 0:3 / /tmp rw - tmpfs tmpfs rw
"""


def test_parse_mountinfo() -> None:
    assert filesystem.parse_mountinfo(MOUNTINFO) == [
        ("/", "ro,relatime", "overlay", "overlay"),
        ("/proc", "rw,nosuid", "proc", "proc"),
        ("/workspace", "rw,relatime", "ext4", "/dev/sda1"),
        ("/workspace/.git/hooks", "ro,relatime", "ext4", "/dev/sda1"),
        ("/tmp", "rw", "tmpfs", "tmpfs"),
    ]
