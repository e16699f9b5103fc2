"""ccstack.probes: the pure parts (results, tables, parsers, the egress cases). The probes themselves
run against real containers in tests/isolation."""

from __future__ import annotations

import pytest
from ccstack import probes

pytestmark = pytest.mark.unit

NET = probes.FakeInternet(
    canary=probes.Endpoint("canary", "198.18.0.10", "2001:db8:18::10"),
    dns=probes.Endpoint("dns", "198.18.0.53"),
    registry=probes.Endpoint("registry", "198.18.0.20"),
    canary_private_ipv4="10.213.0.10",
)


def test_a_failed_control_fails_the_probe() -> None:
    assert probes._result("p", "network", True, "d", control=True).passed
    assert probes._result("p", "network", True, "d").passed
    assert not probes._result("p", "network", True, "d", control=False).passed
    assert not probes._result("p", "network", False, "d", control=True).passed


def test_row_and_table() -> None:
    results = [
        probes.ProbeResult("tcp", "network", True, "refused", control=True),
        probes.ProbeResult("mounts", "files", False, "x" * 300),
    ]
    assert results[0].row() == ("network", "tcp", "pass", "reached", "refused")
    assert results[1].row()[2:4] == ("FAIL", "-")
    table = probes.format_table(results, width=50)
    lines = table.splitlines()
    assert lines[0].split() == ["area", "probe", "result", "control", "detail"]
    assert lines[-1] == "1/2 probes passed"
    assert lines[2].endswith("...")
    assert len(lines[2].split("  ")[-1]) <= 50


def test_nonces_are_fresh() -> None:
    nonces = {probes.new_nonce() for _ in range(100)}
    assert len(nonces) == 100
    assert all(n.startswith("n") and len(n) == 17 for n in nonces)


MOUNTINFO = """\
1 0 0:1 / / ro,relatime - overlay overlay rw,lowerdir=/x
2 1 0:2 / /proc rw,nosuid - proc proc rw
3 1 8:1 /home/u/project /workspace rw,relatime - ext4 /dev/sda1 rw
4 3 8:1 /home/u/project/.git/hooks /workspace/.git/hooks ro,relatime - ext4 /dev/sda1 rw
5 1 0:3 / /tmp rw - tmpfs tmpfs rw
"""


def test_parse_mountinfo() -> None:
    assert probes.parse_mountinfo(MOUNTINFO) == [
        ("/", "ro,relatime", "overlay", "overlay"),
        ("/proc", "rw,nosuid", "proc", "proc"),
        ("/workspace", "rw,relatime", "ext4", "/dev/sda1"),
        ("/workspace/.git/hooks", "ro,relatime", "ext4", "/dev/sda1"),
        ("/tmp", "rw", "tmpfs", "tmpfs"),
    ]


def test_status_fields() -> None:
    text = (
        "Name:\tnode\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\nUid:\t1000\t1000\t1000\t1000\n"
    )
    f = probes._status_fields(text)
    assert f["CapEff"] == "0000000000000000"
    assert f["NoNewPrivs"] == "1"
    assert f["Uid"].split() == ["1000"] * 4


def test_egress_cases_encode_the_canary_address() -> None:
    cases = {name: (target, dest) for name, target, _kind, dest in probes.egress_cases(NET, "nonce1")}
    assert cases["egress-literal-decimal"] == ("3323068426:443", ("198.18.0.10", 443))
    assert cases["egress-literal-hex"][0] == "0xc612000a:443"
    assert cases["egress-literal-dotted-hex"][0] == "0xc6.0x12.0x0.0xa:443"
    assert cases["egress-literal-octal"][0] == "0306.022.00.012:443"
    assert cases["egress-literal-ipv6"][0] == "[2001:db8:18::10]:443"
    assert cases["egress-not-allowlisted"][0] == "nonce1.canary.test:443"
    assert cases["egress-private-by-name"][1] == ("10.213.0.10", 443)
    assert cases["egress-metadata-169.254.169.254"][1] == ("169.254.169.254", 443)
    # every destination a refused request would reach is one of the canary's addresses
    canary = {"198.18.0.10", "2001:db8:18::10", "10.213.0.10", "169.254.169.254"}
    assert {dest[0] for _t, dest in cases.values()} <= canary


ROUTES = """\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010012C6\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth3\t0000D50A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth0\t000012C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth4\t00A9FEA9\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
"""


@pytest.mark.parametrize(
    ("address", "local"),
    [
        ("198.18.0.10", True),
        ("10.213.0.10", True),
        ("169.254.169.254", True),
        ("169.254.170.1", False),  # only the default route: would leave through the gateway
        ("8.8.8.8", False),
    ],
)
def test_routes_locally(address: str, local: bool) -> None:
    assert probes.routes_locally(ROUTES, address) is local


def test_routes_locally_without_default_route() -> None:
    table = "\n".join(ROUTES.splitlines()[:1] + ROUTES.splitlines()[2:])
    assert not probes.routes_locally(table, "1.1.1.1")
