"""Simulated time: a connector's retries, rate-limit waits and token expiry cost a test nothing."""

from __future__ import annotations


class SimulatedClock:
    """A monotonic clock that moves only when slept on (or set): pass it as ``clock``/``monotonic``
    and its ``sleep`` as ``sleep`` to the kit's Transport, limiter and Deadline."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
