"""Client-side pacing: requests-per-minute and tokens-per-minute limits over a sliding minute.

One :class:`RateLimiter` is shared by every worker of a describer (thread-safe, with an async
twin). A request reserves its *estimated* tokens before it leaves; :meth:`Reservation.settle`
replaces the estimate with the tokens the server reported, so the budget tracks reality.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import CancelledError

from .errors import ConfigurationError

WINDOW_S = 60.0


class Reservation:
    __slots__ = ("t", "tokens")

    def __init__(self, t: float, tokens: int):
        self.t = t
        self.tokens = tokens

    def settle(self, actual_tokens: int) -> None:
        """Record the tokens the request really used (prompt + completion)."""
        self.tokens = max(0, int(actual_tokens))


class RateLimiter:
    """Waits so that at most ``rpm`` requests and ``tpm`` tokens start in any 60-second window.

    ``None`` disables a limit. A single request estimated above ``tpm`` is let through alone
    (when the window is empty) instead of waiting forever.
    """

    def __init__(self, rpm: float | None = None, tpm: float | None = None, *,
                 clock: Callable[[], float] = time.monotonic):
        for name, v in (("rpm", rpm), ("tpm", tpm)):
            if v is not None and not (isinstance(v, (int, float)) and v > 0):
                raise ConfigurationError(f"{name} must be a positive number or None, got {v!r}")
        self.rpm, self.tpm = rpm, tpm
        self._clock = clock
        self._window: deque[Reservation] = deque()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rpm is not None or self.tpm is not None

    def _try(self, tokens: int) -> tuple[Reservation | None, float]:
        """Reserve now, or say how long to wait before trying again."""
        with self._lock:
            now = self._clock()
            while self._window and now - self._window[0].t >= WINDOW_S:
                self._window.popleft()
            wait = 0.0
            if self.rpm is not None and len(self._window) >= self.rpm:
                idx = len(self._window) - int(self.rpm)
                wait = max(wait, self._window[idx].t + WINDOW_S - now)
            if self.tpm is not None and self._window:
                used = sum(r.tokens for r in self._window)
                excess = used + tokens - self.tpm
                for r in self._window:  # wait until enough old tokens leave the window
                    if excess <= 0:
                        break
                    excess -= r.tokens
                    wait = max(wait, r.t + WINDOW_S - now)
            if wait > 0:
                return None, wait
            res = Reservation(now, tokens)
            self._window.append(res)
            return res, 0.0

    def acquire(self, tokens: int = 0, *, cancel: threading.Event | None = None) -> Reservation:
        """Reserve a request's slot, waiting as long as the limits say; raises
        :class:`concurrent.futures.CancelledError` once ``cancel`` is set while waiting."""
        while True:
            res, wait = self._try(tokens)
            if res is not None:
                return res
            self._pause(min(wait, 1.0) + 0.001, cancel)

    @staticmethod
    def _pause(seconds: float, cancel: threading.Event | None) -> None:
        if cancel is None:
            time.sleep(seconds)
        elif cancel.wait(seconds):
            raise CancelledError("cancelled while waiting for the rate limit")

    def release(self, res: Reservation) -> None:
        """Give back a reservation whose request was never sent."""
        with self._lock:
            try:
                self._window.remove(res)
            except ValueError:  # already out of the window
                pass

    async def aacquire(self, tokens: int = 0) -> Reservation:
        while True:
            res, wait = self._try(tokens)
            if res is not None:
                return res
            await asyncio.sleep(min(wait, 1.0) + 0.001)


__all__ = ["RateLimiter", "Reservation"]
