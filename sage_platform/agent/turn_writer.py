"""Finished turns are written by one thread, as many per transaction as have queued up.

At hundreds of runs a second, a commit per run is a WAL flush per run; grouping them costs a run
nothing (it waits for its own batch's commit) and saves most of the flushes. A batch that fails
is retried turn by turn, so one bad turn fails alone.

Usage::

    writer = TurnWriter(store)
    await writer.save(Turn(session_id, user_id, messages, run))
    writer.close()
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading

from sage_platform.agent.session_store import SessionStore
from sage_platform.agent.turns import Turn

logger = logging.getLogger(__name__)
_Item = tuple[Turn, concurrent.futures.Future[None]]


class TurnWriter:
    def __init__(self, store: SessionStore, max_batch: int = 256) -> None:
        self.store = store
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="sage-turn-writer", daemon=True)
        self._thread.start()

    async def save(self, turn: Turn) -> None:
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._queue.put((turn, done))
        await asyncio.wrap_future(done)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # finish this batch, then stop
                    break
                batch.append(more)
            self._write(batch)

    def _write(self, batch: list[_Item]) -> None:
        try:
            self.store.save_turns([turn for turn, _ in batch])
        except Exception:
            if len(batch) > 1:
                for item in batch:
                    self._write([item])
                return
            logger.exception("could not save a turn of session %s", batch[0][0].session_id)
            batch[0][1].set_exception(RuntimeError("the turn could not be saved"))
            return
        for _, done in batch:
            done.set_result(None)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(30)
