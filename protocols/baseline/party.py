"""MPyC program of one generic-MPC baseline party; run by ``protocols.baseline.baseline``.

Party 0 is the SP (inputs: query ``q`` of width ``d`` and its cross-attention projections stacked
into one ``R × d`` matrix ``W``), party 1 the MRI (inputs: keys ``K``, ``n × d``, and fixes
``F``, ``n × d × d``), parties 2.. are helpers. Everything is a secure fixed-point array
(``SecFxp(l, f)``). The program

1. scores every key (``K q``) and takes the first maximum as a one-hot vector ``u``
   (MPyC's ``np_argmax`` with ``arg_unary=True``): the linear-scan matching;
2. selects the fix obliviously, ``W_fix = Σ_i u_i F_i`` (``u @ F`` over all ``d²`` entries);
3. applies the TIME update to every layer at once, ``W' = W W_fix`` (each product truncated
   with MPyC's probabilistic rounding), and opens ``W'`` to the SP only.
"""

from __future__ import annotations

import numpy as np

from protocols.mpyc_matching.process import PartyJob, bind_listener_to_loopback

SP, MRI = 0, 1


async def repair(mpc, job: PartyJob) -> list | None:
    """Run the baseline and return ``W'`` (nested lists) at the SP, ``None`` elsewhere."""
    params = job.spec["params"]
    n, d, rows = params["n"], params["dim"], params["rows"]
    own = job.load_inputs()
    secfxp = mpc.SecFxp(params["bit_length"], params["frac_bits"])

    job.begin()
    job.mark("connect")
    await mpc.start()
    job.mark("baseline")

    # Non-senders pass zeros of the public shape; MPyC ignores their values. Every party must
    # also agree on each array's ``integral`` flag (MPyC infers it from the local values, which
    # differ between sender and non-senders), else they take different truncation paths.
    is_sp = mpc.pid == SP
    is_mri = mpc.pid == MRI
    query = own["query"] if is_sp else np.zeros(d)
    weights = own["weights"] if is_sp else np.zeros((rows, d))
    keys = own["keys"] if is_mri else np.zeros((n, d))
    fixes = own["fixes"].reshape(n, d * d) if is_mri else np.zeros((n, d * d))
    shared_query = mpc.input(secfxp.array(query, integral=False), senders=SP)
    shared_weights = mpc.input(secfxp.array(weights, integral=False), senders=SP)
    shared_keys = mpc.input(secfxp.array(keys, integral=False), senders=MRI)
    shared_fixes = mpc.input(secfxp.array(fixes, integral=False), senders=MRI)

    scores = shared_keys @ shared_query
    if n == 1:
        one_hot = secfxp.array(np.ones(1))
    else:
        one_hot = mpc.np_argmax(scores, arg_unary=True)
    selected = mpc.np_reshape(one_hot @ shared_fixes, (d, d))
    repaired = shared_weights @ selected
    opened = await mpc.output(repaired, receivers=[SP])

    job.mark("shutdown")
    await mpc.shutdown()
    if opened is None:
        return None
    return np.asarray(opened, dtype=np.float64).tolist()


def main() -> None:
    job = PartyJob.from_argv()
    from mpyc.runtime import mpc

    bind_listener_to_loopback(mpc)
    output = mpc.run(repair(mpc, job))
    job.finish(output, {"threshold_t": mpc.threshold, "parties": len(mpc.parties)})


if __name__ == "__main__":
    main()
