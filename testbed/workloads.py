"""Workloads: what a scenario runs. Each builds its party coroutines from the scenario and may
add fields to the report after the run.

Built in: ``calibration`` (one large message and a one-byte reply, the network model's check
against a closed form) and ``pingpong`` (request/response rounds). Protocol packages register
more with ``register_workload``.
"""

from __future__ import annotations

import importlib

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed.effects import Party, Phase, Receive, Send
from testbed.errors import MalformedMessage
from testbed.runtime import RunResult
from testbed.scenario import Key, Scenario, register_section


@dataclass
class Session:
    """One prepared run of a workload.

    ``parties`` are the coroutines by party name. ``report`` contains fields known before the run,
    written even when the run fails. ``finish(result, out_dir)`` returns fields known after a
    successful run and may write files into ``out_dir``.

    A workload whose parties are not coroutines (MPyC runs one process per party) leaves
    ``parties`` empty and sets ``record_trace``: it runs the parties for real, returns their
    trace and output, and the scenario's network is then applied by replaying that trace.
    ``finish`` then receives a ``ReplayResult`` whose ``outputs`` are what ``record_trace``
    returned.
    """

    parties: dict[str, Party] = field(default_factory=dict)
    variant: str = "semi-honest"
    report: dict[str, Any] = field(default_factory=dict)
    finish: Callable[[RunResult, Path], dict[str, Any]] | None = None
    record_trace: Callable[[], tuple[Any, dict[str, Any]]] | None = None


@dataclass(frozen=True)
class Workload:
    """A named kind of run; ``prepare(scenario)`` does all set-up and returns a ``Session``."""

    name: str
    prepare: Callable[[Scenario], Session]


WORKLOADS: dict[str, Workload] = {}


def register_workload(workload: Workload) -> None:
    WORKLOADS[workload.name] = workload


# -- calibration --------------------------------------------------------------------------------

register_section(
    "calibration",
    {
        "message_bytes": Key("int", 100_000_000, "bytes party a sends to party b", minimum=0),
        "reply_bytes": Key("int", 1, "bytes party b replies with", minimum=0),
    },
)


def calibration_sender(message_bytes: int) -> Party[int]:
    yield Phase("transfer")
    yield Send("b", bytes(message_bytes))
    reply = yield Receive("b")
    return len(reply)


def calibration_receiver(reply_bytes: int) -> Party[int]:
    yield Phase("transfer")
    message = yield Receive("a")
    yield Send("a", bytes(reply_bytes))
    return len(message)


def calibration_analytic_seconds(scenario: Scenario) -> float:
    """Closed-form time of the calibration exchange on one link, ignoring compute."""
    from testbed.build import base_link

    link, overhead = base_link(scenario)
    spec = scenario.values["calibration"]
    if link.jitter_s or link.loss_rate:
        raise ValueError("the closed form applies only without jitter and loss")
    there = (spec["message_bytes"] + overhead) * 8 / link.bandwidth_bps + link.latency_s
    back = (spec["reply_bytes"] + overhead) * 8 / link.bandwidth_bps + link.latency_s
    return there + back


def _calibration_fields(scenario: Scenario, result: RunResult) -> dict[str, Any]:
    fields: dict[str, Any] = {"received": result.outputs}
    try:
        analytic = calibration_analytic_seconds(scenario)
    except ValueError as exc:
        fields["analytic_note"] = str(exc)
        return {"calibration": fields}
    fields["analytic_seconds"] = analytic
    fields["formula"] = "(message_bytes + overhead) * 8 / bandwidth + latency + (reply_bytes + overhead) * 8 / bandwidth + latency"
    fields["simulated_minus_analytic_s"] = result.sim_seconds - analytic
    return {"calibration": fields}


def _prepare_calibration(scenario: Scenario) -> Session:
    return Session(
        parties={
            "a": calibration_sender(scenario["calibration.message_bytes"]),
            "b": calibration_receiver(scenario["calibration.reply_bytes"]),
        },
        finish=lambda result, out_dir: _calibration_fields(scenario, result),
    )


register_workload(Workload("calibration", _prepare_calibration))

# -- ping-pong -----------------------------------------------------------------------------------

register_section(
    "pingpong",
    {
        "exchanges": Key("int", 100, "request/response exchanges", minimum=1),
        "message_bytes": Key("int", 64, "bytes per request and per response", minimum=1),
    },
)


def ping(exchanges: int, message_bytes: int) -> Party[int]:
    """Send numbered requests and check each echo; returns the number of exchanges."""
    yield Phase("pingpong")
    for i in range(exchanges):
        request = i.to_bytes(8, "big") + bytes(message_bytes - 8) if message_bytes >= 8 else bytes(message_bytes)
        yield Send("pong", request)
        response = yield Receive("pong")
        if response != request:
            raise MalformedMessage(f"echo {i} differs from its request")
    return exchanges


def pong(exchanges: int) -> Party[int]:
    """Echo every request back; returns the number of bytes echoed."""
    yield Phase("pingpong")
    total = 0
    for _ in range(exchanges):
        request = yield Receive("ping")
        total += len(request)
        yield Send("ping", request)
    return total


def _prepare_pingpong(scenario: Scenario) -> Session:
    exchanges = scenario["pingpong.exchanges"]
    return Session(parties={"ping": ping(exchanges, scenario["pingpong.message_bytes"]), "pong": pong(exchanges)})


register_workload(Workload("pingpong", _prepare_pingpong))


# Protocol packages that register a workload and its scenario sections when imported.
PROTOCOL_WORKLOADS = (
    "protocols.sure.workload",
    "protocols.mpyc_matching.workload",
    "protocols.baseline.workload",
)


def load_workloads() -> dict[str, Workload]:
    """Import every protocol workload (once) and return the registry.

    Imported on demand, not at module import, because those modules import this one.
    """
    for module in PROTOCOL_WORKLOADS:
        importlib.import_module(module)
    return WORKLOADS
