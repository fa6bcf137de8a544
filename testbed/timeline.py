"""Phase spans: when each protocol phase started and ended in simulated time."""

from __future__ import annotations


class PhaseClock:
    """Track, per party, the phase it is in; a phase spans from the first party entering it to
    the last party leaving it."""

    def __init__(self) -> None:
        self._current: dict[str, tuple[str, float]] = {}
        self._spans: dict[str, list[float]] = {}

    def enter(self, party: str, phase: str, now: float) -> None:
        self.leave(party, now)
        self._current[party] = (phase, now)

    def leave(self, party: str, now: float) -> None:
        previous = self._current.pop(party, None)
        if previous is None:
            return
        phase, started = previous
        span = self._spans.get(phase)
        if span is None:
            self._spans[phase] = [started, now]
        else:
            span[0] = min(span[0], started)
            span[1] = max(span[1], now)

    def spans(self) -> dict[str, tuple[float, float]]:
        return {phase: (start, end) for phase, (start, end) in self._spans.items()}
