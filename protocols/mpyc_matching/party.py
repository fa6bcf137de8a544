"""MPyC program of one matching party; run by ``protocols.mpyc_matching.matching`` as a process.

Party 0 is the SP (input: the encoded query ``q̂``), party 1 the MRI (inputs: the encoded keys
``K̂`` and, when a threshold is set, ``τ̂``), parties 2.. are helpers with no input. All values are
Shamir-shared with threshold ``t`` among the ``m`` parties. The program computes the scores
``K̂ q̂`` (one secure dot product per key: local products, one resharing each), the first
occurrence of their maximum with MPyC's ``np_argmax`` (an odd-even tournament of ``n − 1``
secure comparisons, lowest index on ties), compares the maximum with ``τ̂``, and opens only
``found · (index + 1) − 1`` and only to the SP. Honest-majority, semi-honest security: any ``t``
parties with ``2t < m`` learn nothing beyond their own inputs and outputs.
"""

from __future__ import annotations

import numpy as np

from protocols.mpyc_matching.process import PartyJob, bind_listener_to_loopback

SP, MRI = 0, 1


async def match(mpc, job: PartyJob) -> int | None:
    """Run the matching and return the output at the SP (``-1`` for no match), ``None`` elsewhere."""
    params = job.spec["params"]
    n, d, bits = params["n"], params["dim"], params["bit_length"]
    has_threshold = params["has_threshold"]
    own = job.load_inputs()
    secint = mpc.SecInt(bits)

    job.begin()
    job.mark("connect")
    await mpc.start()
    job.mark("matching")

    # Non-senders pass zeros of the public shape; MPyC ignores their values.
    keys = own.get("keys", np.zeros((n, d), dtype=np.int64)) if mpc.pid == MRI else np.zeros((n, d), dtype=np.int64)
    query = own.get("query", np.zeros(d, dtype=np.int64)) if mpc.pid == SP else np.zeros(d, dtype=np.int64)
    shared_keys = mpc.input(secint.array(keys), senders=MRI)
    shared_query = mpc.input(secint.array(query), senders=SP)

    scores = shared_keys @ shared_query
    index, best = mpc.np_argmax(scores, arg_only=False)
    if has_threshold:
        limit = int(own["threshold"]) if mpc.pid == MRI else 0
        shared_limit = mpc.input(secint(limit), senders=MRI)
        found = best >= shared_limit
        result = found * (index + 1) - 1
    else:
        result = index
    opened = await mpc.output(result, receivers=[SP])

    job.mark("shutdown")
    await mpc.shutdown()
    return None if opened is None else int(opened)


def main() -> None:
    job = PartyJob.from_argv()
    from mpyc.runtime import mpc

    bind_listener_to_loopback(mpc)
    output = mpc.run(match(mpc, job))
    job.finish(output, {"threshold_t": mpc.threshold, "parties": len(mpc.parties)})


if __name__ == "__main__":
    main()
