"""OT protocols run unchanged under the simulated-network and TCP runners."""

from __future__ import annotations

import os

import numpy as np
import pytest

from testbed.network import LinkSpec, Network
from testbed.runners.simulated import run_simulated
from testbed.runners.tcp import run_tcp

from protocols.ot.extension import chosen_ot_receiver, chosen_ot_sender, random_ot_receiver, random_ot_sender
from protocols.ot.one_of_n import one_of_n_receiver, one_of_n_sender

NETWORK = Network.full_mesh(["sender", "receiver"], LinkSpec(1e9, 0.01))
SECURITY = [pytest.param(False, id="semi-honest"), pytest.param(True, id="malicious")]


def run(runner: str, parties):
    if runner == "simulated":
        return run_simulated(parties, NETWORK)
    return run_tcp(parties, timeout_s=120)


@pytest.mark.parametrize("runner", ["simulated", "tcp"])
@pytest.mark.parametrize("malicious", SECURITY)
def test_random_ot_under_runner(runner, malicious):
    choices = np.random.default_rng(0).integers(0, 2, 500)
    result = run(
        runner,
        {
            "sender": random_ot_sender("receiver", 500, malicious=malicious),
            "receiver": random_ot_receiver("sender", choices, malicious=malicious),
        },
    )
    m0, m1 = result.outputs["sender"]
    assert np.array_equal(result.outputs["receiver"], np.where(choices[:, None] == 1, m1, m0))


@pytest.mark.parametrize("runner", ["simulated", "tcp"])
def test_chosen_ot_under_runner(runner):
    rng = np.random.default_rng(1)
    m0 = rng.integers(0, 256, (100, 40), dtype=np.uint8)
    m1 = rng.integers(0, 256, (100, 40), dtype=np.uint8)
    choices = rng.integers(0, 2, 100)
    result = run(
        runner,
        {"sender": chosen_ot_sender("receiver", m0, m1), "receiver": chosen_ot_receiver("sender", choices, 40)},
    )
    assert np.array_equal(result.outputs["receiver"], np.where(choices[:, None] == 1, m1, m0))


@pytest.mark.parametrize("runner", ["simulated", "tcp"])
@pytest.mark.parametrize("malicious", SECURITY)
def test_one_of_n_under_runner(runner, malicious):
    payloads = [os.urandom(50_000 + i) for i in range(7)]
    result = run(
        runner,
        {
            "sender": one_of_n_sender("receiver", 7, lambda i: payloads[i], malicious=malicious),
            "receiver": one_of_n_receiver("sender", 7, 6, malicious=malicious),
        },
    )
    assert result.outputs["receiver"] == payloads[6]


def test_one_of_n_simulated_time_lower_bound():
    payloads = [bytes(1_000_000)] * 4
    result = run_simulated(
        {
            "sender": one_of_n_sender("receiver", 4, lambda i: payloads[i]),
            "receiver": one_of_n_receiver("sender", 4, 1),
        },
        NETWORK,
    )
    # Two one-way latencies (base-OT messages cross, then the stream) plus 4 MB at 1 Gbit/s.
    assert result.sim_seconds >= 2 * 0.01 + 4 * 8e6 / 1e9
    assert result.transcript.rounds() == 2
