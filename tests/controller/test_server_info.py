"""Context windows read from what model servers say about themselves (tests/fixtures/servers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ccstack import server_info as si

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "servers"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def test_llama_server_props_give_the_slot_context() -> None:
    window = si.window_from_llama_props(load("llama_server.props.json"))
    assert window == si.Window(8192, "llama-server /props default_generation_settings.n_ctx")


def test_llama_server_props_of_older_builds() -> None:
    assert si.window_from_llama_props({"n_ctx": 4096}) == si.Window(4096, "llama-server /props n_ctx")


def test_lmstudio_prefers_the_loaded_context() -> None:
    data = load("lmstudio.api_v0_models.json")
    window = si.window_from_lmstudio_models(data, None)
    assert window is not None
    assert window.tokens == 16384
    assert window.note is None
    named = si.window_from_lmstudio_models(data, "qwen2-vl-7b-instruct")
    assert named is not None
    assert named.tokens == 32768
    assert named.note is not None  # not loaded: LM Studio chooses the context when it loads it


def test_ollama_num_ctx_wins_over_the_model_length() -> None:
    show = load("ollama.api_show.json")
    assert si.window_from_ollama_show(show) == si.Window(16384, "Ollama /api/show parameters num_ctx")
    del show["parameters"]
    window = si.window_from_ollama_show(show)
    assert window is not None
    assert window.tokens == 32768
    assert window.note is not None
    assert "OLLAMA_CONTEXT_LENGTH" in window.note


def test_vllm_max_model_len() -> None:
    data = load("vllm.v1_models.json")
    assert si.window_from_openai_models(data, None) == si.Window(32768, "/v1/models max_model_len")
    assert si.window_from_openai_models(data, "Qwen/Qwen2.5-Coder-7B-Instruct") is not None
    assert si.window_from_openai_models(data, "other") is None


@pytest.mark.parametrize(
    "answer",
    [None, [], "text", {"data": "x"}, {"data": [{"id": "m", "max_model_len": -1}]}, {"n_ctx": True}],
)
def test_readers_say_nothing_about_odd_answers(answer: Any) -> None:
    assert si.window_from_llama_props(answer) is None
    assert si.window_from_lmstudio_models(answer, None) is None
    assert si.window_from_ollama_show(answer) is None
    assert si.window_from_openai_models(answer, None) is None


def test_llama_server_models_are_listed_and_say_no_max_model_len() -> None:
    data = load("llama_server.v1_models.json")
    assert si.model_ids(data) == ("/models/model.gguf",)
    assert si.window_from_openai_models(data, None) is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://host.docker.internal:1234/v1", "http://127.0.0.1:1234/v1"),
        ("http://192.168.1.20:8000/v1", "http://192.168.1.20:8000/v1"),
    ],
)
def test_host_view(url: str, expected: str) -> None:
    assert si.host_view(url) == expected


def fake_server(routes: dict[str, Any]) -> si.Fetch:
    def fetch(url: str, body: bytes | None) -> Any:
        path = "/" + url.split("/", 3)[3]
        if path not in routes:
            raise OSError(f"404 {path}")
        return routes[path]

    return fetch


def test_ask_server_llama() -> None:
    routes = {"/v1/models": load("llama_server.v1_models.json"), "/props": load("llama_server.props.json")}
    info = si.ask_server("http://127.0.0.1:8080/v1", None, fake_server(routes))
    assert info.reachable
    assert info.models == ("/models/model.gguf",)
    assert info.window is not None
    assert info.window.tokens == 8192


def test_ask_server_ollama_with_the_model_named() -> None:
    routes = {"/v1/models": {"data": [{"id": "a"}, {"id": "b"}]}, "/api/show": load("ollama.api_show.json")}
    info = si.ask_server("http://h:11434/v1", "a", fake_server(routes))
    assert info.window is not None
    assert info.window.tokens == 16384


def test_ask_server_vllm_and_lmstudio() -> None:
    vllm = si.ask_server("http://h/v1", None, fake_server({"/v1/models": load("vllm.v1_models.json")}))
    assert vllm.window is not None
    assert vllm.window.tokens == 32768
    lmstudio = load("lmstudio.api_v0_models.json")
    routes = {"/v1/models": {"data": [{"id": e["id"]} for e in lmstudio["data"]]}, "/api/v0/models": lmstudio}
    lms = si.ask_server("http://h:1234/v1", None, fake_server(routes))
    assert lms.window is not None
    assert lms.window.tokens == 16384


def test_an_unreachable_server() -> None:
    info = si.ask_server("http://h/v1", None, fake_server({}))
    assert not info.reachable
    assert info.error is not None


def test_a_server_that_says_nothing() -> None:
    info = si.ask_server("http://h/v1", None, fake_server({"/v1/models": {"data": []}}))
    assert info.reachable
    assert info.window is None
