"""Session -> slot affinity and per-slot FIFO queues."""

from __future__ import annotations

import asyncio

import pytest
from ccproxy.slots import SlotPool

pytestmark = pytest.mark.unit


def test_affinity_spreads_sessions_and_reserves_a_side_slot() -> None:
    pool = SlotPool(4)
    assert pool.main_slots == (0, 1, 2)
    assert pool.side_slot == 3
    assert [pool.assign(k, side=False) for k in ("a", "b", "c", "d", "a", "b")] == [0, 1, 2, 0, 0, 1]
    assert pool.assign("a", side=True) == 3


def test_single_slot_shares_everything() -> None:
    pool = SlotPool(1)
    assert pool.assign("a", side=False) == pool.assign("b", side=False) == pool.assign("a", side=True) == 0


def test_two_slots() -> None:
    pool = SlotPool(2)
    assert [pool.assign(k, side=False) for k in ("a", "b")] == [0, 0]
    assert pool.assign("a", side=True) == 1


async def test_requests_on_one_slot_run_one_at_a_time_in_order() -> None:
    pool = SlotPool(2)
    order: list[str] = []
    running = 0
    peak = 0

    async def job(name: str, slot: int) -> None:
        nonlocal running, peak
        async with pool.acquire(slot):
            running += 1
            peak = max(peak, running)
            order.append(name)
            await asyncio.sleep(0.02)
            running -= 1

    tasks = [asyncio.create_task(job(f"j{i}", 0)) for i in range(4)]
    await asyncio.sleep(0.005)
    assert pool.queued(0) == 4
    await asyncio.gather(*tasks)
    assert order == ["j0", "j1", "j2", "j3"]
    assert peak == 1
    assert pool.queued(0) == 0


async def test_cancelled_waiter_leaves_the_queue() -> None:
    pool = SlotPool(1)
    async with pool.acquire(0):
        waiter = asyncio.create_task(_hold(pool))
        await asyncio.sleep(0.01)
        assert pool.queued(0) == 2
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    assert pool.queued(0) == 0
    async with asyncio.timeout(1), pool.acquire(0):
        pass


async def _hold(pool: SlotPool) -> None:
    async with pool.acquire(0):
        await asyncio.sleep(10)
