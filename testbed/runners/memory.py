"""In-memory runner: no time and no network, for unit tests and fast correctness runs."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from testbed.effects import Party, Phase, Receive, Send
from testbed.errors import DeadlockError, PeerAborted, RunFailed
from testbed.runtime import (
    Interceptor,
    MessageLog,
    PartyDriver,
    RunResult,
    apply_interceptor,
    check_party_names,
    unknown_peer,
)
from testbed.transcript import MessageRecord


def run_in_memory(
    parties: Mapping[str, Party],
    *,
    keep_payloads: bool = True,
    intercept: Interceptor | None = None,
) -> RunResult:
    """Run party coroutines to completion, passing messages through in-memory queues.

    Parties take turns one effect at a time, round robin, so a party that streams many
    messages hands each to its receiver before producing the next and memory stays bounded.
    Raises ``RunFailed`` when any party raises (its peers then see ``PeerAborted``) and
    ``DeadlockError`` when every unfinished party waits on an empty queue.
    """
    check_party_names(parties)
    drivers = {name: PartyDriver(name, gen) for name, gen in parties.items()}
    log = MessageLog(keep_payloads)
    queues: dict[tuple[str, str], deque[tuple[MessageRecord, bytes]]] = {}
    sent_count: dict[tuple[str, str], int] = {}
    failures: dict[str, BaseException] = {}
    # Each ready party with the effect it yielded last and has not had carried out yet.
    ready: deque[tuple[str, object]] = deque()
    waiting: dict[str, Receive] = {}

    def step(driver: PartyDriver, effect) -> object:
        """Carry out one effect; return the party's next effect, or ``waiting`` to park it."""
        if isinstance(effect, Phase):
            return driver.advance(None)
        error = unknown_peer(driver, effect.peer, drivers)
        if error is not None:
            return driver.throw(error)
        if isinstance(effect, Send):
            key = (driver.name, effect.peer)
            index = sent_count.get(key, 0)
            sent_count[key] = index + 1
            for payload in apply_interceptor(intercept, driver.name, effect.peer, index, bytes(effect.payload)):
                record = log.record(driver.phase, driver.name, effect.peer, payload, 0.0, 0.0)
                queues.setdefault(key, deque()).append((record, payload))
            if waiting.get(effect.peer) is not None and waiting[effect.peer].peer == driver.name:
                ready.append((effect.peer, waiting.pop(effect.peer)))
            return driver.advance(None)
        queue = queues.get((effect.peer, driver.name))
        if queue:
            record, payload = queue.popleft()
            log.delivered(record)
            return driver.advance(payload)
        if effect.peer in failures:
            return driver.throw(PeerAborted(effect.peer, str(failures[effect.peer])))
        if drivers[effect.peer].done:
            return driver.throw(PeerAborted(effect.peer, "it finished without sending this message"))
        waiting[driver.name] = effect
        return waiting

    def finish(driver: PartyDriver) -> None:
        if driver.error is None:
            return
        failures[driver.name] = driver.error
        for other, effect in list(waiting.items()):
            if effect.peer == driver.name:
                ready.append((other, waiting.pop(other)))

    for name, driver in drivers.items():
        effect = driver.advance(None)
        if effect is None:
            finish(driver)
        else:
            ready.append((name, effect))

    while ready or waiting:
        if not ready:
            # Parties waiting on a finished peer get PeerAborted; otherwise nobody can move.
            stalled = [n for n, e in waiting.items() if drivers[e.peer].done]
            if not stalled:
                waits = ", ".join(f"{n} waits for {e.peer}" for n, e in waiting.items())
                raise DeadlockError(f"deadlock: {waits}")
            for n in stalled:
                ready.append((n, waiting.pop(n)))
        name, effect = ready.popleft()
        driver = drivers[name]
        following = step(driver, effect)
        if following is waiting:
            continue
        if following is None:
            finish(driver)
        else:
            ready.append((name, following))

    if failures:
        raise RunFailed(failures) from next(iter(failures.values()))
    return RunResult.from_drivers(drivers, log)
