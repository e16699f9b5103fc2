"""ccstack.toolchain: policies/toolchain.yaml -> the sandbox image's EXTRA_*_PACKAGES build arguments, and
`ccstack build` passing them (tests/stack/test_toolchain.py builds the real image with them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ccstack import cli, commands
from ccstack.toolchain import Toolchain, build_args, describe, load_toolchain, parse_toolchain

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_policy_is_valid_and_adds_nothing() -> None:
    assert load_toolchain(REPO / "policies") == Toolchain()
    assert build_args(Toolchain()) == {
        "EXTRA_APT_PACKAGES": "",
        "EXTRA_PIP_PACKAGES": "",
        "EXTRA_NPM_PACKAGES": "",
    }


def test_the_examples_in_the_shipped_policy_parse() -> None:
    # The commented examples in policies/toolchain.yaml are real entries.
    text = (REPO / "policies" / "toolchain.yaml").read_text(encoding="utf-8")
    examples = {}
    for line in text.splitlines():
        kind, _, rest = line.partition(":")
        if kind in ("apt", "pip", "npm") and "e.g. " in rest:
            examples[kind] = yaml.safe_load(rest.split("e.g. ", 1)[1])
    assert set(examples) == {"apt", "pip", "npm"}
    parsed = parse_toolchain(examples)
    assert parsed.pip == ("ruff==0.8.4", "requests")
    assert parsed.npm == ("typescript@5.7.2",)


def test_build_args_and_description() -> None:
    t = parse_toolchain(
        {
            "apt": ["bc", "postgresql-client=15.10-0+deb12u1", "bc"],
            "pip": ["tomli-w==1.0.0", "requests[socks]>=2,<3", "Django~=5.1"],
            "npm": ["semver@7.6.3", "@types/node", "typescript@next"],
        }
    )
    assert t.apt == ("bc", "postgresql-client=15.10-0+deb12u1")  # duplicates dropped, order kept
    assert build_args(t) == {
        "EXTRA_APT_PACKAGES": "bc postgresql-client=15.10-0+deb12u1",
        "EXTRA_PIP_PACKAGES": "tomli-w==1.0.0 requests[socks]>=2,<3 Django~=5.1",
        "EXTRA_NPM_PACKAGES": "semver@7.6.3 @types/node typescript@next",
    }
    assert describe(t).startswith("apt: bc postgresql-client")
    assert not t.empty
    assert parse_toolchain(None).empty
    assert parse_toolchain({"apt": None, "pip": []}).empty


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"apt": ["-o", "APT::x=y"]}, "apt.0: '-o'"),
        ({"apt": ["bc; curl evil"]}, "apt.0"),
        ({"pip": ["x", "--index-url=http://evil/"]}, "pip.1"),
        ({"pip": ["git+https://example.org/x.git"]}, "pip.0"),
        ({"pip": ["./local/path"]}, "pip.0"),
        ({"pip": ["pkg ; python_version<'3'"]}, "pip.0"),
        ({"npm": ["../x"]}, "npm.0"),
        ({"npm": ["x$(id)"]}, "npm.0"),
        ({"npm": ["https://example.org/x.tgz"]}, "npm.0"),
        ({"npm": [3]}, "npm.0"),
        ({"pip": "requests"}, "pip: must be a list"),
        ({"cargo": ["ripgrep"]}, "unknown key(s) cargo"),
        (["bc"], "must be a mapping"),
    ],
)
def test_rejects_what_a_shell_or_installer_would_read_as_more_than_a_name(data: Any, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        parse_toolchain(data)


def test_load_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "toolchain.yaml").write_text("apt: [bc]\nnpm: ['a b']\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"toolchain\.yaml: npm\.0"):
        load_toolchain(tmp_path)
    assert load_toolchain(tmp_path / "absent") == Toolchain()


def _capture_build(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []
    monkeypatch.setattr(commands, "check_docker", lambda: None)
    monkeypatch.setattr(commands, "run_compose", lambda _paths, _state, args, **_kw: calls.append(list(args)))
    return calls


def test_ccstack_build_passes_the_policy_to_the_sandbox_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _capture_build(monkeypatch)
    policy = tmp_path / "extra.yaml"
    policy.write_text("apt: [bc]\npip: [tomli-w]\n", encoding="utf-8")
    assert cli.main(["build", "claude-sandbox", "--toolchain", str(policy)]) == 0
    args = calls[-1]
    assert "EXTRA_APT_PACKAGES=bc" in args
    assert "EXTRA_PIP_PACKAGES=tomli-w" in args
    assert "EXTRA_NPM_PACKAGES=" in args
    assert args[-1] == "claude-sandbox"
    # an explicit --build-arg wins over the policy
    cli.main(["build", "claude-sandbox", "--toolchain", str(policy), "--build-arg", "EXTRA_APT_PACKAGES=jq"])
    assert "EXTRA_APT_PACKAGES=jq" in calls[-1]
    assert "EXTRA_APT_PACKAGES=bc" not in calls[-1]
    # other images get no such arguments
    cli.main(["build", "proxy", "--toolchain", str(policy)])
    assert not any(a.startswith("EXTRA_") for a in calls[-1])


def test_ccstack_build_refuses_a_bad_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = _capture_build(monkeypatch)
    policy = tmp_path / "toolchain.yaml"
    policy.write_text("pip: ['x; rm -rf /']\n", encoding="utf-8")
    assert cli.main(["build", "claude-sandbox", "--toolchain", str(policy)]) == 1
    assert "pip.0" in capsys.readouterr().err
    assert cli.main(["build", "claude-sandbox", "--toolchain", str(tmp_path / "missing.yaml")]) == 1
    assert "not found" in capsys.readouterr().err
    assert calls == []
