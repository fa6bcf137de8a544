"""Simulated runner: party coroutines as simpy processes over a modelled network.

Each party's simulated clock advances by the real compute time it spends between two effects
(measured with ``time.perf_counter`` and multiplied by ``compute_factor``, so 0.5 models
hardware twice as fast) and by waiting for messages, whose arrival times come from
``testbed.network.Network``. Sends never block the sender.

NOTE: there is no flow control, so a sender that streams faster than its link keeps every
message it is ahead by in memory until delivery (gigabytes for a dense 1-out-of-n retrieval over
a WAN). Run such protocols on ``loopback`` and replay the trace for slower networks, as the
``sweep`` command and ``benchmarks/bench_sure.py`` do.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import simpy

from testbed.effects import Party, Phase, Receive, Send
from testbed.errors import DeadlockError, LinkDown, PartyStopped, PeerAborted, RunFailed
from testbed.network import Network
from testbed.runtime import (
    Interceptor,
    MessageLog,
    PartyDriver,
    RunResult,
    apply_interceptor,
    check_party_names,
    unknown_peer,
)
from testbed.timeline import PhaseClock

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault injected at a simulated time: ``stop_party`` (``party``) or ``cut_link`` (``a``, ``b``)."""

    kind: str
    at_s: float
    party: str = ""
    a: str = ""
    b: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("stop_party", "cut_link"):
            raise ValueError(f"invalid fault kind {self.kind!r}: use 'stop_party' or 'cut_link'")
        if not self.at_s >= 0:
            raise ValueError(f"invalid fault time {self.at_s!r}: use simulated seconds >= 0")


def run_simulated(
    parties: Mapping[str, Party],
    network: Network,
    *,
    compute_factor: float = 1.0,
    keep_payloads: bool = False,
    intercept: Interceptor | None = None,
    faults: Sequence[Fault] = (),
) -> RunResult:
    """Run party coroutines in simulated time over ``network`` and return outputs and timing.

    Raises ``RunFailed`` when a party raises or a fault stops the run; every party blocked on
    a failed peer then ends with ``PeerAborted`` (or ``LinkDown`` when its path was cut).
    """
    check_party_names(parties)
    if not compute_factor >= 0:
        raise ValueError(f"invalid compute_factor {compute_factor!r}: use a factor >= 0, e.g. 1.0")
    env = simpy.Environment()
    log = MessageLog(keep_payloads)
    drivers = {name: PartyDriver(name, gen) for name, gen in parties.items()}
    stores = {(a, b): simpy.Store(env) for a in drivers for b in drivers if a != b}
    sent_count: dict[tuple[str, str], int] = {}
    in_flight: dict[tuple[str, str], int] = {key: 0 for key in stores}
    waiting: dict[str, tuple[str, simpy.Process]] = {}
    failures: dict[str, BaseException] = {}
    failed_at: list[float] = []
    end_s: dict[str, float] = {}
    phases = PhaseClock()
    processes: dict[str, simpy.Process] = {}

    def fail(name: str, exc: BaseException) -> None:
        failures[name] = exc
        failed_at.append(env.now)
        logger.info("party %s failed at %.6f s: %s", name, env.now, exc)
        for other, (peer, process) in list(waiting.items()):
            if peer == name and process.is_alive:
                process.interrupt(PeerAborted(name, f"{type(exc).__name__}: {exc}"))

    def deliver(key: tuple[str, str], item, drop_if_cut: bool):
        def on_arrival(_event) -> None:
            in_flight[key] -= 1
            if drop_if_cut and network.path_is_cut(key[0], key[1], env.now):
                lost(key)
                return
            stores[key].put(item)

        return on_arrival

    def lost(key: tuple[str, str]) -> None:
        entry = waiting.get(key[1])
        if entry and entry[0] == key[0] and entry[1].is_alive:
            entry[1].interrupt(LinkDown(f"message {key[0]}->{key[1]} lost: a link on its path was cut"))

    def party_process(driver: PartyDriver):
        name = driver.name
        phases.enter(name, driver.phase, env.now)
        effect = driver.advance(None)
        while True:
            delay = driver.last_compute * compute_factor
            if delay > 0:
                try:
                    yield env.timeout(delay)
                except simpy.Interrupt as interrupt:
                    effect = driver.throw(interrupt.cause)
                    continue
            if effect is None:
                break
            if isinstance(effect, Send):
                effect = send(driver, effect)
            elif isinstance(effect, Receive):
                error = unknown_peer(driver, effect.peer, drivers)
                if error is not None:
                    effect = driver.throw(error)
                    continue
                key = (effect.peer, name)
                store = stores[key]
                if not store.items and effect.peer in failures:
                    effect = driver.throw(PeerAborted(effect.peer, str(failures[effect.peer])))
                    continue
                waiting[name] = (effect.peer, processes[name])
                try:
                    record, payload = yield store.get()
                except simpy.Interrupt as interrupt:
                    waiting.pop(name, None)
                    effect = driver.throw(interrupt.cause)
                    continue
                waiting.pop(name, None)
                log.delivered(record)
                effect = driver.advance(payload)
            else:
                assert isinstance(effect, Phase)
                phases.enter(name, effect.name, env.now)
                effect = driver.advance(None)
        end_s[name] = env.now
        phases.leave(name, env.now)
        if driver.error is not None:
            fail(name, driver.error)

    def send(driver: PartyDriver, effect: Send):
        src, dst = driver.name, effect.peer
        error = unknown_peer(driver, dst, drivers)
        if error is not None:
            return driver.throw(error)
        key = (src, dst)
        index = sent_count.get(key, 0)
        sent_count[key] = index + 1
        for payload in apply_interceptor(intercept, src, dst, index, bytes(effect.payload)):
            try:
                arrival = network.transmit(src, dst, len(payload), env.now)
            except LinkDown as exc:
                return driver.throw(exc)
            record = log.record(driver.phase, src, dst, payload, env.now, arrival)
            in_flight[key] += 1
            event = env.timeout(arrival - env.now)
            event.callbacks.append(deliver(key, (record, payload), bool(faults)))
        return driver.advance(None)

    def inject(fault: Fault):
        yield env.timeout(fault.at_s)
        if fault.kind == "stop_party":
            process = processes[fault.party]
            if process.is_alive:
                waiting.pop(fault.party, None)
                process.interrupt(PartyStopped(f"party {fault.party!r} stopped by a fault at {fault.at_s} s"))
        else:
            for key, (peer, process) in list(waiting.items()):
                if network.path_is_cut(peer, key, env.now) and not stores[(peer, key)].items and process.is_alive:
                    process.interrupt(LinkDown(f"link {fault.a}-{fault.b} cut at {fault.at_s} s"))

    for fault in faults:
        if fault.kind == "stop_party" and fault.party not in drivers:
            raise ValueError(f"fault names unknown party {fault.party!r}; parties are {sorted(drivers)}")
        if fault.kind == "cut_link":
            network.cut_link(fault.a, fault.b, fault.at_s)
        env.process(inject(fault))
    for name, driver in drivers.items():
        processes[name] = env.process(party_process(driver))
    env.run()

    stuck = [name for name, d in drivers.items() if not d.done]
    if stuck and not failures:
        waits = ", ".join(f"{name} waits for {waiting[name][0]}" for name in stuck if name in waiting)
        raise DeadlockError(f"deadlock at simulated time {env.now:.6f} s: {waits}")
    for name in stuck:
        peer = waiting.get(name, ("?",))[0]
        failures.setdefault(name, PeerAborted(peer, "the run ended while this party waited for it"))
    result = RunResult.from_drivers(
        drivers,
        log,
        sim_seconds=max(end_s.values(), default=0.0),
        party_end_s=end_s,
        phase_span_s=phases.spans(),
    )
    if failures:
        stopped_at = min(failed_at) if failed_at else env.now
        raise RunFailed(failures, stopped_at=stopped_at, partial=result) from next(iter(failures.values()))
    return result
