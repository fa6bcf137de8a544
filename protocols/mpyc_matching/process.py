"""Running an MPyC program as one process per party, every connection through the testbed relay.

MPyC (Schoenmakers, MPyC 0.11) runs one party per process. Party ``i`` listens on the port of its
own ``-P`` entry and connects to every party ``j > i`` at that party's ``-P`` entry, so each
process gets its own address list: its own real listening port, and for every ``j > i`` a relay
port that forwards to party ``j``'s listening port. The relay therefore sees, records and shapes
every byte between the parties. Each process starts as::

    python -m MODULE --job JOB.json -M m -I i -P 127.0.0.1:p_0 ... -P 127.0.0.1:p_(m-1)

``JOB.json`` holds the party's public parameters and the path of its private input file (only
its own inputs), and names the file where it writes its output and its time marks.

Security note: MPyC's threshold secret sharing assumes private channels between the parties.
Here the parties talk in the clear over loopback (MPyC's ``--ssl`` needs certificates), which is
fine for measurement but would need TLS in a deployment.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from testbed.relay import (
    HOST,
    ChunkRecord,
    LinkShape,
    ProcessFailure,
    ProcessOutcome,
    Relay,
    bytes_by_direction,
    free_ports,
    record_rounds,
    run_processes,
    thread_cpu_seconds,
    trace_from_records,
)
from testbed.trace import Trace

logger = logging.getLogger(__name__)


@dataclass
class MpycRun:
    """Outputs, time marks and the relay's record of one MPyC run.

    ``trace`` charges compute as wall-clock gaps, ``cpu_trace`` (Linux) as the CPU time of each
    party's main thread. The CPU trace leaves out the relay's and the event loops' overheads and
    the waits for a core, so it predicts runs on this machine too fast. Replay the wall trace;
    docs/mpyc.md gives the measured fidelity of both.
    """

    names: list[str]
    results: dict[str, dict]
    records: list[ChunkRecord]
    outcomes: dict[str, ProcessOutcome]
    wall_s: float
    trace: Trace = field(repr=False)
    cpu_trace: Trace | None = field(default=None, repr=False)

    @property
    def rounds(self) -> int:
        """Maximum causal depth of the forwarded segments (see ``testbed.relay.record_depths``)."""
        return record_rounds(self.records)

    @property
    def bytes(self) -> dict[str, int]:
        """Bytes forwarded per ``"src->dst"`` direction, MPyC's framing and handshakes included."""
        return bytes_by_direction(self.records)

    @property
    def total_bytes(self) -> int:
        return sum(r.nbytes for r in self.records)

    def protocol_seconds(self) -> float:
        """Wall seconds from the first party's start mark to the last party's end mark."""
        starts = [r["start"] for r in self.results.values()]
        ends = [r["end"] for r in self.results.values()]
        return max(ends) - min(starts)

    def compute_seconds(self) -> dict[str, float]:
        """Compute per party as charged by ``trace`` (wall-clock gaps, see ``testbed.relay``)."""
        return {name: t.compute_total_s() for name, t in self.trace.parties.items()}

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds (user + system) each party process reported for its protocol work."""
        return {name: r["cpu_s"] for name, r in self.results.items()}


def run_mpyc_program(
    module: str,
    names: Sequence[str],
    jobs: Sequence[Mapping],
    inputs: Sequence[Mapping[str, object] | None],
    *,
    shapes: Mapping[tuple[str, str], LinkShape] | None = None,
    default_shape: LinkShape = LinkShape(),
    timeout_s: float = 600.0,
    mpyc_args: Sequence[str] = (),
) -> MpycRun:
    """Run ``python -m module`` once per party through a recording relay and collect the results.

    ``jobs[i]`` is party ``i``'s public job (JSON-serialisable); ``inputs[i]`` maps array names
    to that party's private arrays (saved as ``.npz`` for it alone), or is ``None``. Raises
    ``testbed.relay.ProcessFailure`` when a party fails or the run takes longer than
    ``timeout_s``; every party process has been stopped by then.
    """
    if not len(names) == len(jobs) == len(inputs):
        raise ValueError(f"got {len(names)} names, {len(jobs)} jobs and {len(inputs)} inputs: give one of each per party")
    if len(set(names)) != len(names):
        raise ValueError(f"party names must be distinct, got {list(names)}")
    with tempfile.TemporaryDirectory(prefix="mpyc-run-") as tmp:
        return asyncio.run(
            _run(module, list(names), jobs, inputs, Path(tmp), shapes, default_shape, timeout_s, list(mpyc_args))
        )


async def _run(module, names, jobs, inputs, workdir: Path, shapes, default_shape, timeout_s, mpyc_args) -> MpycRun:
    import numpy as np

    m = len(names)
    listen = free_ports(m)
    pids: dict[str, int] = {}

    def cpu_clock(name: str) -> float | None:
        pid = pids.get(name)
        return None if pid is None else thread_cpu_seconds(pid)

    relay = Relay(shapes, default_shape=default_shape, cpu_clock=cpu_clock)
    commands = {}
    result_paths = {}
    try:
        routes = {}
        for i in range(m):
            for j in range(i + 1, m):
                routes[(i, j)] = await relay.open_route(names[i], names[j], listen[j])
        for i, name in enumerate(names):
            job = dict(jobs[i])
            if inputs[i] is not None:
                input_path = workdir / f"input-{i}.npz"
                np.savez(input_path, **inputs[i])
                job["input"] = str(input_path)
            else:
                job["input"] = None
            result_paths[name] = workdir / f"result-{i}.json"
            job["result"] = str(result_paths[name])
            job_path = workdir / f"job-{i}.json"
            job_path.write_text(json.dumps(job))

            # Party i dials j > i through the relay; it never dials j < i, but MPyC wants m entries.
            ports = [listen[i] if j == i else routes[(min(i, j), max(i, j))] for j in range(m)]
            argv = [sys.executable, "-m", module, "--job", str(job_path), "-M", str(m), "-I", str(i)]
            for port in ports:
                argv += ["-P", f"{HOST}:{port}"]
            commands[name] = argv + list(mpyc_args)

        # The same hash seed in every party process keeps iteration over sets of strings identical
        # across parties, because MPyC programs must take the same steps in the same order.
        env = dict(os.environ)
        env.setdefault("PYTHONHASHSEED", "0")
        started = time.monotonic()
        outcomes = await run_processes(commands, timeout_s=timeout_s, env=env, on_start=pids.__setitem__)
        wall = time.monotonic() - started
    finally:
        await relay.close()

    missing = [name for name, path in result_paths.items() if not path.is_file()]
    if missing:
        raise ProcessFailure(
            f"party processes {missing} exited with code 0 but wrote no result: "
            f"is {module!r} an MPyC party program that calls PartyJob.finish?",
            outcomes,
        )
    results = {name: json.loads(path.read_text()) for name, path in result_paths.items()}
    records = sorted(relay.records, key=lambda r: r.deliver_s)
    # One origin for every party, so that the replay starts them with the same skew as the run.
    origin = min(r["start"] for r in results.values())
    common = {
        "starts": {n: origin for n in names},
        "ends": {n: r["end"] for n, r in results.items()},
        "meta": {"source": "mpyc-relay", "module": module, "parties": names},
    }
    wall_trace = trace_from_records(
        records, names, phases={n: [(t, p) for t, p, _ in r["marks"]] for n, r in results.items()}, **common
    )
    cpu_trace = None
    if all(r.src_cpu_s is not None and r.dst_cpu_s is not None for r in records):
        cpu_trace = trace_from_records(
            records,
            names,
            phases={n: r["marks"] for n, r in results.items()},
            cpu_starts={n: r["start_cpu"] for n, r in results.items()},
            cpu_ends={n: r["end_cpu"] for n, r in results.items()},
            **common,
        )
        cpu_trace.meta["compute"] = "cpu"
    wall_trace.meta["compute"] = "wall"
    return MpycRun(names, results, records, outcomes, wall, wall_trace, cpu_trace)


# --- Party side ---------------------------------------------------------------------------------


class PartyJob:
    """The job of one MPyC party process: parameters, private inputs, and its time marks.

    Parse with ``PartyJob.from_argv()`` before importing ``mpyc.runtime`` is fine too: MPyC
    ignores the ``--job`` option it does not know.
    """

    def __init__(self, path: Path) -> None:
        self.spec = json.loads(Path(path).read_text())
        self.marks: list[tuple[float, str, float]] = []
        self.start = time.monotonic()
        self.start_cpu = time.thread_time()
        self._cpu_start = time.process_time()

    @classmethod
    def from_argv(cls, argv: Sequence[str] | None = None) -> "PartyJob":
        parser = argparse.ArgumentParser(add_help=False)
        parser.add_argument("--job", required=True, type=Path)
        options, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
        return cls(options.job)

    def load_inputs(self) -> dict:
        """Return this party's private arrays, or an empty dict when it has none."""
        import numpy as np

        if not self.spec.get("input"):
            return {}
        with np.load(self.spec["input"], allow_pickle=False) as data:
            return {key: data[key] for key in data.files}

    def begin(self) -> None:
        """Mark the start of protocol work (after imports and input loading)."""
        self.start = time.monotonic()
        self.start_cpu = time.thread_time()
        self._cpu_start = time.process_time()

    def mark(self, phase: str) -> None:
        """Log the start of a named phase: ``time.monotonic()``, the name, ``time.thread_time()``."""
        self.marks.append((time.monotonic(), phase, time.thread_time()))

    def finish(self, output: object, extra: Mapping | None = None) -> None:
        """Write the output, the time marks and the CPU seconds spent since ``begin``."""
        body = {
            "output": output,
            "start": self.start,
            "end": time.monotonic(),
            "start_cpu": self.start_cpu,
            "end_cpu": time.thread_time(),
            "cpu_s": time.process_time() - self._cpu_start,
            "marks": self.marks,
        }
        body.update(extra or {})
        Path(self.spec["result"]).write_text(json.dumps(body))


def bind_listener_to_loopback(mpc) -> None:
    """Make MPyC's listening socket bind to 127.0.0.1 only.

    MPyC 0.11 calls ``loop.create_server(factory, port=...)`` without a host, which binds every
    interface; the testbed keeps all traffic on loopback.
    """
    loop = mpc._loop
    original = loop.create_server

    async def create_server(factory, host=None, port=None, **kwargs):
        return await original(factory, host=HOST, port=port, **kwargs)

    loop.create_server = create_server
