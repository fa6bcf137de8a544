"""The registry of checked protocols: one module per protocol, each with a ``specs()`` function.

To add a protocol, write a module here whose ``specs()`` returns one
:class:`proofs_check.spec.CheckSpec` per corruptible party, and add one line to
``CHECK_MODULES``. Modules load lazily, so a protocol whose code is missing or broken shows as
unavailable in the report instead of stopping the other checks.
"""

from __future__ import annotations

import importlib
import logging

from proofs_check.spec import CheckSpec

logger = logging.getLogger(__name__)

CHECK_MODULES: dict[str, str] = {
    "ot.base": "proofs_check.checks.ot_base",
    "ot.extension": "proofs_check.checks.ot_extension",
    "ot.one_of_n": "proofs_check.checks.one_of_n",
    "matching": "proofs_check.checks.matching",
    "sure": "proofs_check.checks.sure",
}


def load_specs(protocol: str | None = None, party: str | None = None) -> tuple[list[CheckSpec], dict[str, str]]:
    """Return the specs whose protocol name starts with ``protocol`` and whose party is ``party``.

    The second value maps each registry entry that failed to import to the error.
    """
    specs: list[CheckSpec] = []
    unavailable: dict[str, str] = {}
    for name, module_name in CHECK_MODULES.items():
        if protocol is not None and not (name.startswith(protocol) or protocol.startswith(name)):
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            logger.warning("protocol %s unavailable: %s", name, exc)
            unavailable[name] = f"{type(exc).__name__}: {exc}"
            continue
        for spec in module.specs():
            if protocol is not None and not spec.protocol.startswith(protocol):
                continue
            if party is not None and spec.party != party:
                continue
            specs.append(spec)
    return specs, unavailable
