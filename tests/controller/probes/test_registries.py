"""ccstack.probes.registries: the refused egress cases and the route check (pure parts)."""

from __future__ import annotations

import pytest
from ccstack.probes import registries, targets

pytestmark = pytest.mark.unit


NET = targets.FakeInternet(
    canary=targets.Endpoint("canary", "198.18.0.10", "2001:db8:18::10"),
    dns=targets.Endpoint("dns", "198.18.0.53"),
    registry=targets.Endpoint("registry", "198.18.0.20"),
    canary_private_ipv4="10.213.0.10",
)


def test_egress_cases_encode_the_canary_address() -> None:
    cases = {name: (target, dest) for name, target, _kind, dest in registries.egress_cases(NET, "nonce1")}
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
    assert registries.routes_locally(ROUTES, address) is local


def test_routes_locally_without_default_route() -> None:
    table = "\n".join(ROUTES.splitlines()[:1] + ROUTES.splitlines()[2:])
    assert not registries.routes_locally(table, "1.1.1.1")
