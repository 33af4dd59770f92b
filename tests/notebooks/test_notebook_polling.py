"""The papermill engine waits for cell replies in short polls (a missed wake-up costs a second, not the cell timeout)."""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from queue import Empty

import pytest

from workbench.notebooks import REPLY_POLL_SECONDS, _sliced


class ReplyAfter:
    """A shell channel whose reply is there from `ready_at` on, but whose poll never wakes for it."""

    def __init__(self, delay: float):
        self.ready_at = time.monotonic() + delay
        self.timeouts: list[float] = []

    async def get_msg(self, timeout=None):
        self.timeouts.append(timeout)
        if time.monotonic() >= self.ready_at:
            return {"msg_type": "execute_reply"}
        await asyncio.sleep(timeout)  # a poll that misses the message sleeps out its whole timeout
        raise Empty


def run_in_own_loop(coroutine):
    # The session's Playwright browser (sync API) keeps an event loop running in the main thread,
    # where asyncio.run refuses to start; nbclient runs its loop in a thread of its own then, and so do we.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_a_missed_reply_is_picked_up_by_the_next_short_poll():
    channel = ReplyAfter(delay=1.5)
    started = time.monotonic()
    reply = run_in_own_loop(_sliced(channel.get_msg)(timeout=3600))
    assert reply == {"msg_type": "execute_reply"}
    assert time.monotonic() - started < 1.5 + 2 * REPLY_POLL_SECONDS
    assert max(channel.timeouts) <= REPLY_POLL_SECONDS


def test_no_reply_still_times_out_at_the_cell_timeout():
    channel = ReplyAfter(delay=60)
    started = time.monotonic()
    with pytest.raises(Empty):
        run_in_own_loop(_sliced(channel.get_msg)(timeout=2.5))
    assert 2.5 <= time.monotonic() - started < 2.5 + REPLY_POLL_SECONDS
