"""`ccstack verify` (the user-facing self-check) against the isolation stack: it starts its own
throwaway agent with `docker compose run`, runs the non-destructive probes, prints a table and exits 0
only when every probe passed."""

from __future__ import annotations

import secrets

import pytest
from ccstack import verify
from harness.containers import DockerContainer

pytestmark = pytest.mark.isolation


def test_verify_passes_on_the_stack(iso, capsys: pytest.CaptureFixture[str]) -> None:
    code = verify.main(["--state-dir", str(iso.paths.state_dir)])
    out = capsys.readouterr().out
    print(out)
    assert "probes passed" in out
    for probe in (
        "privileges",
        "write-protected-paths",
        "mounts",
        "host-listener",
        "key-in-agent-files-environ",
        "token-checked",
        "engine-dns-forwarding",
    ):
        assert probe in out
    assert code == 0, out


def test_verify_fails_on_a_weakened_agent(iso, capsys: pytest.CaptureFixture[str]) -> None:
    """A probe that cannot fail proves nothing: a container without the hardening must fail verify."""
    weak = DockerContainer(
        "ccsandbox/claude-sandbox:local",
        name=f"ccsandbox-iso-weak-{secrets.token_hex(3)}",
        command="300",
        entrypoint="sleep",
        user="0",
        network_mode="none",
    )
    with weak:
        name = weak.get_wrapped_container().name
        code = verify.main(["--state-dir", str(iso.paths.state_dir), "--agent", name, "--no-host-listener"])
        out = capsys.readouterr().out
        print(out)
        assert code == 1
        lines = {line.split()[1]: line for line in out.splitlines()[1:] if len(line.split()) > 2}
        assert "FAIL" in lines["privileges"]
        assert "FAIL" in lines["sudo-su"]  # root: su works
