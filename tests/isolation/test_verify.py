"""`ccstack verify` (the user-facing self-check) against the isolation stack: it starts its own
throwaway agent with `docker compose run`, runs the non-destructive probes, prints a table and exits 0
only when every probe passed."""

from __future__ import annotations

import pytest
from ccstack import verify

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
    import subprocess

    name = "ccsandbox-iso-weak"
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    started = subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "none",
            "--user",
            "0",
            "--entrypoint",
            "sleep",
            "ccsandbox/claude-sandbox:local",
            "300",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert started.returncode == 0, started.stderr
    try:
        code = verify.main(["--state-dir", str(iso.paths.state_dir), "--agent", name, "--no-host-listener"])
        out = capsys.readouterr().out
        print(out)
        assert code == 1
        lines = {line.split()[1]: line for line in out.splitlines()[1:] if len(line.split()) > 2}
        assert "FAIL" in lines["privileges"]
        assert "FAIL" in lines["sudo-su"]  # root: su works
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
