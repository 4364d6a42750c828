"""Work waited for only so long: a call in a daemon thread of its own.

A server that trickles its answer a byte at a time stays within each read's timeout, out of
reach of requests' API, and a DAG file may take its import timeout to fail. The success
callback (which must return within its deadline) and the Heartbeats page (which answers from
the API server's shared thread pool) run such work in a daemon thread, wait for it as long as
they may, and go on without it after that.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Call(Generic[T]):
    """``work()`` started in a daemon thread (abandoned if it never ends)."""

    def __init__(self, work: Callable[[], T], name: str) -> None:
        self._done = threading.Event()
        self._result: T | None = None
        self._error: BaseException | None = None
        threading.Thread(target=self._run, args=(work,), name=f"opsgenie-heartbeat-{name}", daemon=True).start()

    def _run(self, work: Callable[[], T]) -> None:
        try:
            self._result = work()
        except BaseException as exc:
            self._error = exc
        finally:
            self._done.set()

    def wait(self, seconds: float) -> bool:
        """Whether it ended within ``seconds``."""
        return self._done.wait(seconds)

    def result(self, seconds: float, slow: Callable[[], BaseException]) -> T:
        """Its result, or its error; ``slow()`` is raised when it did not end within ``seconds``."""
        if not self._done.wait(seconds):
            raise slow()
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]
