"""Scenario files: TOML, validated against a schema when loaded.

A scenario is a TOML file of sections (``[network]``, ``[compute]``, ...). Every key is
declared here with its type, default and bounds; workloads register their own sections with
``register_section``. Loading rejects unknown keys, wrong types, out-of-range values and
missing files with a ``ScenarioError`` that names the key, the value and the fix.
``--set KEY=VALUE`` overrides go through the same checks.
"""

from __future__ import annotations

import copy
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed.errors import ScenarioError
from testbed.network import PROFILES

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
DEFAULT_SCENARIO = SCENARIO_DIR / "default.toml"


@dataclass(frozen=True)
class Key:
    """Declaration of one scenario key.

    ``kind`` is one of ``str``, ``int``, ``float``, ``bool``, ``path``, ``list``, ``table``.
    ``minimum``/``exclusive_minimum``/``maximum`` bound numbers; ``choices`` limits values;
    ``check`` may raise ``ValueError`` with a message for anything else.
    """

    kind: str
    default: Any
    doc: str
    minimum: float | None = None
    exclusive_minimum: float | None = None
    maximum: float | None = None
    choices: tuple | Callable[[], tuple] | None = None
    check: Callable[[Any], None] | None = None
    example: str = ""


SCHEMA: dict[str, dict[str, Key]] = {}


def register_section(name: str, keys: Mapping[str, Key]) -> None:
    """Declare the keys of a scenario section (a workload calls this for its own section)."""
    SCHEMA.setdefault(name, {}).update(keys)


register_section(
    "scenario",
    {
        "name": Key("str", "unnamed", "scenario name used in reports"),
        "description": Key("str", "", "one-line description"),
        "seed": Key("int", 0, "seed for reproducible non-secret choices (jitter, synthetic data)", minimum=0),
        "workload": Key(
            "str",
            "pingpong",
            "what to run: a registered workload name",
            choices=lambda: tuple(sorted(_workload_names())),
        ),
    },
)
register_section(
    "network",
    {
        "profile": Key("str", "lan-10g", "named network profile", choices=tuple(PROFILES), example="lan-1g"),
        "bandwidth_bps": Key(
            "float", None, "link bandwidth in bit/s per direction (overrides the profile)", exclusive_minimum=0,
            example="1e9",
        ),
        "latency_s": Key("float", None, "one-way link latency in seconds (overrides the profile)", minimum=0,
                         example="0.01"),
        "jitter_s": Key("float", None, "maximum extra one-way delay per hop in seconds", minimum=0, example="0.001"),
        "loss_rate": Key("float", None, "packet loss probability in [0, 1)", minimum=0, maximum=0.999999,
                         example="0.01"),
        "overhead_bytes": Key("int", None, "framing bytes added to every message", minimum=0, example="8"),
    },
)
register_section(
    "topology",
    {
        "file": Key("path", None, "networkx node-link JSON file of the topology (edges carry link keys)"),
        "links": Key(
            "list",
            [],
            "links as tables {a, b, profile?, bandwidth_bps?, latency_s?, jitter_s?, loss_rate?}",
        ),
    },
)
register_section(
    "compute",
    {
        "factor": Key(
            "float", 1.0, "multiplier on measured compute time (0.5 = hardware twice as fast, 0 = ignore compute)",
            minimum=0,
        ),
    },
)
register_section(
    "output",
    {
        "keep_payloads": Key("bool", False, "keep message payloads in memory to take party views"),
    },
)
register_section(
    "faults",
    {
        "stop_party": Key("str", "", "party to stop at faults.at_s (empty: none)"),
        "cut_link": Key("list", [], "the two nodes of a link to cut at faults.at_s, e.g. [\"sp\", \"mri\"]"),
        "at_s": Key("float", 0.0, "simulated time of the fault in seconds", minimum=0),
    },
)


def _workload_names() -> list[str]:
    from testbed.workloads import load_workloads  # imported late: workloads import this module

    return list(load_workloads())


@dataclass
class Scenario:
    """A validated scenario: ``values[section][key]`` with every default filled in."""

    values: dict[str, dict[str, Any]]
    path: Path | None = None
    overrides: list[str] = field(default_factory=list)

    def __getitem__(self, dotted: str) -> Any:
        section, key = dotted.split(".", 1)
        return self.values[section][key]

    @property
    def name(self) -> str:
        return self.values["scenario"]["name"]

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {
            section: {k: (str(v) if isinstance(v, Path) else v) for k, v in keys.items()}
            for section, keys in self.values.items()
        }


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "str" or kind == "path":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "list":
        return isinstance(value, list)
    if kind == "table":
        return isinstance(value, dict)
    raise AssertionError(kind)


_KIND_WORDS = {
    "str": "a string",
    "path": "a file path string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "list": "a list",
    "table": "a table",
}


def _validate_value(section: str, name: str, spec: Key, value: Any, base: Path) -> Any:
    dotted = f"{section}.{name}"
    if value is None:
        return None
    if not _type_ok(spec.kind, value):
        hint = f", e.g. {dotted} = {spec.example}" if spec.example else ""
        raise ScenarioError(
            f"invalid {dotted} = {value!r}: expected {_KIND_WORDS[spec.kind]}, got {type(value).__name__}{hint}"
        )
    if spec.kind == "float":
        value = float(value)
        if math.isnan(value):
            raise ScenarioError(f"invalid {dotted} = nan: use a number")
    if spec.kind in ("int", "float"):
        if spec.exclusive_minimum is not None and not value > spec.exclusive_minimum:
            raise ScenarioError(
                f"invalid {dotted} = {value!r}: must be greater than {spec.exclusive_minimum:g}"
                + (f", e.g. {spec.example}" if spec.example else "")
            )
        if spec.minimum is not None and value < spec.minimum:
            raise ScenarioError(f"invalid {dotted} = {value!r}: must be at least {spec.minimum:g}")
        if spec.maximum is not None and value > spec.maximum:
            raise ScenarioError(f"invalid {dotted} = {value!r}: must be at most {spec.maximum:g}")
    choices = spec.choices() if callable(spec.choices) else spec.choices
    if choices is not None and value not in choices:
        raise ScenarioError(f"invalid {dotted} = {value!r}: use one of {', '.join(map(str, choices))}")
    if spec.kind == "path":
        path = Path(value)
        if not path.is_absolute():
            path = (base / path).resolve()
        if not path.exists():
            raise ScenarioError(
                f"invalid {dotted} = {value!r}: file {str(path)!r} not found; give a path relative to the "
                f"scenario file or an absolute one"
            )
        value = path
    if spec.check is not None:
        try:
            spec.check(value)
        except ValueError as exc:
            raise ScenarioError(f"invalid {dotted} = {value!r}: {exc}") from None
    return value


def validate(raw: Mapping[str, Any], base: Path) -> dict[str, dict[str, Any]]:
    """Check a parsed scenario against the schema and return it with every default filled in."""
    _workload_names()  # importing the workloads registers their sections
    values: dict[str, dict[str, Any]] = {}
    for section, body in raw.items():
        if section not in SCHEMA:
            raise ScenarioError(
                f"unknown section [{section}]: valid sections are {', '.join(sorted(SCHEMA))}"
            )
        if not isinstance(body, dict):
            raise ScenarioError(f"invalid [{section}] = {body!r}: expected a table of keys")
        for key in body:
            if key not in SCHEMA[section]:
                raise ScenarioError(
                    f"unknown key {section}.{key}: valid keys of [{section}] are {', '.join(sorted(SCHEMA[section]))}"
                )
    for section, keys in list(SCHEMA.items()):
        body = raw.get(section, {})
        values[section] = {
            name: _validate_value(section, name, spec, body.get(name, copy.deepcopy(spec.default)), base)
            for name, spec in keys.items()
        }
    return values


def parse_override(text: str) -> tuple[str, str, Any]:
    """Split ``section.key=value``; the value is read as TOML (``1e9``, ``true``, ``"a"``, ``[1, 2]``)
    and falls back to a plain string."""
    if "=" not in text:
        raise ScenarioError(f"invalid override {text!r}: use KEY=VALUE, e.g. network.latency_s=0.01")
    dotted, raw_value = text.split("=", 1)
    dotted = dotted.strip()
    if dotted.count(".") != 1:
        raise ScenarioError(f"invalid override key {dotted!r}: use section.key, e.g. network.bandwidth_bps")
    section, key = dotted.split(".")
    try:
        value = tomllib.loads(f"v = {raw_value}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw_value
    return section, key, value


def load(path: str | Path | None = None, overrides: list[str] = ()) -> Scenario:
    """Load, override and validate a scenario file (the default scenario when ``path`` is None)."""
    path = Path(path) if path is not None else DEFAULT_SCENARIO
    if not path.is_file():
        candidate = SCENARIO_DIR / f"{path}.toml"
        if path.suffix == "" and candidate.is_file():
            path = candidate
        else:
            raise ScenarioError(
                f"scenario file {str(path)!r} not found: give a path to a .toml file or a name from "
                f"{', '.join(p.stem for p in sorted(SCENARIO_DIR.glob('*.toml')))}"
            )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"invalid TOML in {str(path)!r}: {exc}") from None
    return from_dict(raw, base=path.parent, overrides=overrides, path=path)


def from_dict(
    raw: Mapping[str, Any], *, base: Path = Path("."), overrides: list[str] = (), path: Path | None = None
) -> Scenario:
    """Validate a scenario given as a dict (tests and sweeps build scenarios this way)."""
    _workload_names()  # importing the workloads registers their sections
    raw = copy.deepcopy(dict(raw))
    for text in overrides:
        section, key, value = parse_override(text)
        if section not in SCHEMA:
            raise ScenarioError(f"unknown section in override {text!r}: valid sections are {', '.join(sorted(SCHEMA))}")
        if key not in SCHEMA[section]:
            raise ScenarioError(
                f"unknown key {section}.{key} in override: valid keys of [{section}] are "
                f"{', '.join(sorted(SCHEMA[section]))}"
            )
        raw.setdefault(section, {})[key] = value
    return Scenario(validate(raw, base), path=path, overrides=list(overrides))
