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
)
from testbed.transcript import MessageRecord


def run_in_memory(
    parties: Mapping[str, Party],
    *,
    keep_payloads: bool = True,
    intercept: Interceptor | None = None,
) -> RunResult:
    """Run party coroutines to completion, passing messages through in-memory queues.

    Parties take turns in a fixed order, each running until it waits for a message that has
    not arrived. Raises ``RunFailed`` when any party raises (its peers then see ``PeerAborted``)
    and ``DeadlockError`` when every unfinished party waits on an empty queue.
    """
    check_party_names(parties)
    drivers = {name: PartyDriver(name, gen) for name, gen in parties.items()}
    log = MessageLog(keep_payloads)
    queues: dict[tuple[str, str], deque[tuple[MessageRecord, bytes]]] = {}
    sent_count: dict[tuple[str, str], int] = {}
    waiting: dict[str, Receive] = {}
    failures: dict[str, BaseException] = {}

    def run_until_blocked(driver: PartyDriver, effect) -> None:
        while effect is not None:
            if isinstance(effect, Send):
                if effect.peer not in drivers or effect.peer == driver.name:
                    effect = driver.throw(ValueError(f"unknown peer {effect.peer!r}; parties are {sorted(drivers)}"))
                    continue
                key = (driver.name, effect.peer)
                index = sent_count.get(key, 0)
                sent_count[key] = index + 1
                for payload in apply_interceptor(intercept, driver.name, effect.peer, index, bytes(effect.payload)):
                    record = log.record(driver.phase, driver.name, effect.peer, payload, 0.0, 0.0)
                    queues.setdefault(key, deque()).append((record, payload))
                effect = driver.advance(None)
            elif isinstance(effect, Receive):
                if effect.peer not in drivers or effect.peer == driver.name:
                    effect = driver.throw(ValueError(f"unknown peer {effect.peer!r}; parties are {sorted(drivers)}"))
                    continue
                queue = queues.get((effect.peer, driver.name))
                if queue:
                    record, payload = queue.popleft()
                    log.delivered(record)
                    effect = driver.advance(payload)
                elif effect.peer in failures:
                    effect = driver.throw(PeerAborted(effect.peer, str(failures[effect.peer])))
                elif drivers[effect.peer].done:
                    effect = driver.throw(PeerAborted(effect.peer, "it finished without sending this message"))
                else:
                    waiting[driver.name] = effect
                    return
            else:
                assert isinstance(effect, Phase)
                effect = driver.advance(None)
        waiting.pop(driver.name, None)
        if driver.error is not None:
            failures[driver.name] = driver.error

    for driver in drivers.values():
        run_until_blocked(driver, driver.advance(None))

    while waiting:
        progressed = False
        for name in list(waiting):
            effect = waiting[name]
            driver = drivers[name]
            peer_queue = queues.get((effect.peer, name))
            if peer_queue or drivers[effect.peer].done:
                del waiting[name]
                run_until_blocked(driver, effect)
                progressed = True
        if not progressed:
            waits = ", ".join(f"{name} waits for {eff.peer}" for name, eff in waiting.items())
            raise DeadlockError(f"deadlock: {waits}")

    if failures:
        raise RunFailed(failures) from next(iter(failures.values()))
    return RunResult(
        outputs={name: d.output for name, d in drivers.items()},
        transcript=log.transcript(),
        trace={name: d.trace for name, d in drivers.items()},
        compute_seconds={name: d.trace.compute_total_s() for name, d in drivers.items()},
        phase_compute_seconds={name: dict(d.phase_compute) for name, d in drivers.items()},
    )
