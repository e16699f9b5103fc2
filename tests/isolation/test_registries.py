"""Opt-in registry egress through Squid: the allowlisted (fake) registry works over CONNECT :443;
other names, other ports, plain HTTP, literal IPs in every notation, private ranges (also through an
allowlisted name) and 169.254.169.254 are refused and never reach the canary."""

from __future__ import annotations

import pytest
from ccstack import probes

pytestmark = pytest.mark.isolation


def test_registry_egress(iso, net, record) -> None:
    results = probes.probe_egress(iso.sandbox, net, egress_container=iso.egress)
    record(*results)
    failed = [r for r in results if not r.passed]
    assert not failed, "; ".join(f"{r.name}: {r.detail} (control {r.control})" for r in failed)
    assert len(results) >= 16
