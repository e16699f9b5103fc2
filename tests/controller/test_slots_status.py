"""llama-server's /slots in words, and the proxy's prefill line (a recorded /slots answer)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ccstack.slots_status import Slot, backend_lines, latest_prefill, parse_slots, slot_line

pytestmark = pytest.mark.unit

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "llama_server" / "slots_prefill.json"
LOG = """\
2026-12-01 18:32:35,465 INFO ccproxy: llama-server: 2 slot(s), n_ctx 32768 per slot
2026-12-01 18:33:59,665 INFO ccproxy: req_95b0 prefill 2048/8056 tokens (0 cached) 72.3 s, 28 tok/s
2026-12-01 18:35:11,002 INFO ccproxy: req_95b0 prefill 4096/8056 tokens (0 cached) 144.0 s, 28 tok/s
"""


def test_a_recorded_answer_during_a_prefill() -> None:
    slots = parse_slots(json.loads(FIXTURE.read_text()))
    assert slots == [
        Slot(id=0, processing=True, prompt_tokens=2048, processed=0, cached=0, decoded=0),
        Slot(id=1, processing=False),
    ]
    assert [slot_line(s) for s in slots] == [
        "slot 0 prefill: 0 tokens processed, 2048 handed to the model (0 cached)",
        "slot 1 idle",
    ]


@pytest.mark.parametrize(
    ("slot", "line"),
    [
        (Slot(0, True, 4096, 4096, 100, 0), "slot 0 prefill: 4096 tokens processed (100 cached)"),
        (Slot(1, True, 4096, 4096, 0, 12), "slot 1 generating: 12 tokens so far"),
        (Slot(0, True), "slot 0 processing the prompt"),  # a build without the counts
    ],
)
def test_slot_line(slot: Slot, line: str) -> None:
    assert slot_line(slot) == line


def test_parse_slots_skips_what_is_not_a_slot() -> None:
    assert parse_slots([{"id": 0, "is_processing": False}, "x", {"id": -1}, {"n_ctx": 5}]) == [Slot(0, False)]
    with pytest.raises(ValueError, match="expected a list"):
        parse_slots({"error": "slots disabled"})


def test_latest_prefill() -> None:
    assert latest_prefill(LOG) == (
        "req_95b0 prefill 4096/8056 tokens (0 cached) 144.0 s, 28 tok/s: 51%, about 2:21 left"
    )
    assert latest_prefill("req_1 prefill 2048/2048 tokens (0 cached) 9.0 s, 227 tok/s") == (
        "req_1 prefill 2048/2048 tokens (0 cached) 9.0 s, 227 tok/s: 100%"
    )
    assert latest_prefill("req_1 prefill 10/20 tokens (0 cached) 0.0 s") == (
        "req_1 prefill 10/20 tokens (0 cached) 0.0 s: 50%"  # no rate (no time yet): no estimate
    )
    assert latest_prefill("nothing here\n") is None


def test_backend_lines_add_the_proxys_line_only_while_a_prompt_is_processed() -> None:
    prefill = [Slot(0, True, 6144, 4096, 0, 0), Slot(1, False)]
    assert backend_lines(prefill, LOG) == [
        "slot 0 prefill: 4096 tokens processed, 6144 handed to the model (0 cached)",
        "slot 1 idle",
        "proxy: req_95b0 prefill 4096/8056 tokens (0 cached) 144.0 s, 28 tok/s: 51%, about 2:21 left",
    ]
    assert backend_lines([Slot(0, False), Slot(1, False)], LOG) == ["slot 0 idle", "slot 1 idle"]
    assert backend_lines([Slot(0, True, 10, 10, 0, 3)], LOG) == ["slot 0 generating: 3 tokens so far"]
