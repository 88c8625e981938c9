"""Study arguments: one declarative schema per study, checked before any work starts.

Every study's parameters are described once, in :data:`SCHEMAS`: a table of
key → kind (:class:`Int`, :class:`Float`, :class:`Bool`, :class:`Str`,
:class:`PathArg`, :class:`Scalar`, :class:`List`, :class:`Overrides`,
:class:`Map`, :class:`Record`) with its bounds, choices and a line of
documentation, plus the study's cross-key rules and one *composition* check:
the run-config overrides a study carries (``overrides``,
``scenario_overrides``, per-scenario or per-channel extras, grid keys that
are run-config paths) are composed into a run config with
:func:`sim.config.load_config` — the cheapest representative composition
(one per scenario, channel or grid value; the first regime stands for the
rest, since regime names are checked against ``conf/margin``).

:func:`validate_study_args` checks a loaded config and raises
:class:`StudyArgError` (one line, ``<key> = <value> is invalid: <what is
allowed>``, the format of :mod:`sim.config.checks`); :func:`study_config` is what a
study's ``main()`` calls: load, validate, and on a bad argument print
``<study>: argument error: ...`` to stderr and exit with status 2 — before
anything is written to the output directory. Studies with ``--option``
arguments (``tail_risk``, ``stylised_facts``) use :class:`ArgParser` and
:func:`study_options` for the same behaviour.

Numbers: integers must be integers (``1.5`` and booleans are rejected),
floats must be finite (``.inf`` / ``.nan`` are rejected, booleans too).

Neighbours: :func:`experiments.common.load_study_config` (parsing
``key=value`` arguments), :mod:`sim.config.checks` (the one-line format),
:mod:`sim.config` (run-config validation).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from sim.config.checks import check_choice, invalid

from experiments.common import StudyArgError, load_study_config

__all__ = ["SCHEMAS", "ArgParser", "Bool", "Float", "Int", "List", "Map", "Overrides",
           "PathArg", "Record", "Scalar", "Str", "StudyArgError", "StudySchema",
           "describe_schema", "fail", "study_config", "study_options", "validate_study_args"]

_CONF = Path(__file__).resolve().parents[1] / "conf"

MAX_STEPS = 100_000_000
"""Largest run length (the run config's own bound on ``steps``)."""
MAX_SEED = 2**63 - 1
"""Largest seed (the run config's bound on ``seed``)."""
MAX_REPLICATES = 1_000_000
"""Largest number of replicates (or networks per cell)."""
MAX_WORKERS = 256
"""Largest number of worker processes."""
MAX_AGENTS = 1_000_000
"""Largest agent count per population (the run config's bound on ``agents.noise.n``)."""


# --------------------------------------------------------------------------- choices

Choices = tuple[str, ...] | Callable[[], tuple[str, ...]]


@functools.cache
def _conf_names(group: str) -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in (_CONF / group).glob("*.yaml")))


def margin_regimes() -> tuple[str, ...]:
    """Margin regime presets (``conf/margin/*.yaml``)."""
    return _conf_names("margin")


def scenario_names() -> tuple[str, ...]:
    """Scenario presets (``conf/scenario/*.yaml``)."""
    return _conf_names("scenario")


def metric_names() -> tuple[str, ...]:
    """Metrics :func:`experiments.analysis.headline_metrics` computes."""
    from experiments.analysis import METRIC_LABELS

    return tuple(METRIC_LABELS)


def shock_kinds() -> tuple[str, ...]:
    """Confined shocks (:data:`sim.contagion.SHOCKS`)."""
    from sim.contagion import SHOCKS

    return tuple(SHOCKS)


def weight_dists() -> tuple[str, ...]:
    """Exposure-size distributions (:data:`sim.network.WEIGHT_DISTS`)."""
    from sim.network import WEIGHT_DISTS

    return tuple(WEIGHT_DISTS)


def agent_model_regimes() -> tuple[str, ...]:
    """Beta's regimes in the agent-model part of ``contagion_topology``."""
    from experiments.worlds import AGENT_MODEL_REGIMES

    return tuple(AGENT_MODEL_REGIMES)


def topology_regimes() -> tuple[str, ...]:
    """Regimes of :func:`sim.contagion.topology_world.topology_world`."""
    from sim.contagion.topology_world import REGIMES

    return tuple(REGIMES)


def _options(choices: Choices) -> tuple[str, ...]:
    return choices() if callable(choices) else tuple(choices)


# --------------------------------------------------------------------------- kinds

class _Short:
    """A value whose repr is cut to a readable length (long lists, whole mappings)."""

    def __init__(self, value: Any, limit: int = 160) -> None:
        self.value, self.limit = value, limit

    def __repr__(self) -> str:
        text = repr(self.value)
        return text if len(text) <= self.limit else text[: self.limit - 5] + " ...]"


def _bad(key: str, value: Any, allowed: str) -> NoReturn:
    invalid(key, _Short(value), allowed)


def _num(x: float) -> str:
    if isinstance(x, int):
        return "2**63 - 1" if x == MAX_SEED else f"{x:,}"
    return f"{x:g}"


def _interval(lo: float | None, hi: float | None, lo_open: bool = False,
              hi_open: bool = False) -> str:
    if lo is None and hi is None:
        return ""
    if hi is None:
        return f" {'>' if lo_open else '>='} {_num(lo)}"
    if lo is None:
        return f" {'<' if hi_open else '<='} {_num(hi)}"
    return f" in {'(' if lo_open else '['}{_num(lo)}, {_num(hi)}{')' if hi_open else ']'}"


@dataclass(frozen=True, kw_only=True)
class Arg:
    """Base of the argument kinds: ``doc`` and whether ``null`` is accepted."""

    doc: str = ""
    nullable: bool = False

    def allowed(self) -> str:
        """What the kind accepts, as the tail of ``must be ...``."""
        raise NotImplementedError

    def check(self, key: str, value: Any) -> None:
        """Raise ``ValueError("<key> = <value> is invalid: ...")`` unless ``value`` fits."""
        if value is None and self.nullable:
            return
        self._check(key, value)

    def _check(self, key: str, value: Any) -> None:
        raise NotImplementedError

    def _null(self) -> str:
        return " (or null)" if self.nullable else ""


@dataclass(frozen=True)
class Int(Arg):
    """An integer (not a bool, not a float) in ``[lo, hi]``."""

    lo: int | None = None
    hi: int | None = None

    def allowed(self) -> str:  # noqa: D102
        return f"an integer{_interval(self.lo, self.hi)}{self._null()}"

    def _check(self, key: str, value: Any) -> None:
        bad = isinstance(value, bool) or not isinstance(value, int)
        if bad or (self.lo is not None and value < self.lo) or (
                self.hi is not None and value > self.hi):
            _bad(key, value, f"must be {self.allowed()}")


@dataclass(frozen=True)
class Float(Arg):
    """A finite real number (an int is accepted, a bool is not) within the bounds."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def allowed(self) -> str:  # noqa: D102
        return (f"a finite number{_interval(self.lo, self.hi, self.lo_open, self.hi_open)}"
                f"{self._null()}")

    def _check(self, key: str, value: Any) -> None:
        ok = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
        if ok and self.lo is not None:
            ok = value > self.lo if self.lo_open else value >= self.lo
        if ok and self.hi is not None:
            ok = value < self.hi if self.hi_open else value <= self.hi
        if not ok:
            _bad(key, value, f"must be {self.allowed()}")


@dataclass(frozen=True)
class Bool(Arg):
    """``true`` or ``false``."""

    def allowed(self) -> str:  # noqa: D102
        return f"true or false{self._null()}"

    def _check(self, key: str, value: Any) -> None:
        if not isinstance(value, bool):
            _bad(key, value, f"must be {self.allowed()}")


@dataclass(frozen=True)
class Str(Arg):
    """A non-empty string, one of ``choices`` if given, matching ``pattern`` if given."""

    choices: Choices | None = None
    pattern: str | None = None
    what: str = ""

    def allowed(self) -> str:  # noqa: D102
        if self.choices is not None:
            return f"one of {', '.join(_options(self.choices))}{self._null()}"
        return f"{self.what or 'a non-empty string'}{self._null()}"

    def _check(self, key: str, value: Any) -> None:
        if not isinstance(value, str) or not value:
            _bad(key, value, f"must be {self.allowed()}")
        if self.choices is not None:
            check_choice(key, value, _options(self.choices))
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            _bad(key, value, f"must be {self.allowed()}")


@dataclass(frozen=True)
class PathArg(Arg):
    """A directory path (a non-empty string); if it exists it must be a directory.

    ``must_hold``: a file the directory must already contain (e.g. a run's
    ``timeseries.parquet``).
    """

    must_hold: str | None = None

    def allowed(self) -> str:  # noqa: D102
        base = "a directory path (a string; quote a numeric name)"
        if self.must_hold:
            base = f"a directory holding {self.must_hold}"
        return f"{base}{self._null()}"

    def _check(self, key: str, value: Any) -> None:
        if not isinstance(value, str) or not value.strip():
            _bad(key, value, f"must be {self.allowed()}")
        path = Path(value)
        if self.must_hold is not None and not (path / self.must_hold).is_file():
            _bad(key, value, f"must be {self.allowed()}")
        if path.exists() and not path.is_dir():
            _bad(key, value, f"must be {self.allowed()} (it is a file)")


@dataclass(frozen=True)
class Scalar(Arg):
    """A single value: an integer, a finite number, a bool or a non-empty string."""

    def allowed(self) -> str:  # noqa: D102
        return "a single value (number, true/false or string)"

    def _check(self, key: str, value: Any) -> None:
        if isinstance(value, bool | int):
            return
        if isinstance(value, float) and math.isfinite(value):
            return
        if isinstance(value, str) and value:
            return
        _bad(key, value, f"must be {self.allowed()}")


def _ident(x: Any) -> str:
    return json.dumps(x, sort_keys=True, default=str)


@dataclass(frozen=True)
class List(Arg):
    """A list of ``item`` with ``min_len <= len <= max_len``, optionally without duplicates."""

    item: Arg = field(default_factory=Scalar)
    min_len: int = 0
    max_len: int | None = None
    unique: bool = False

    def allowed(self) -> str:  # noqa: D102
        lo, hi = self.min_len, self.max_len
        if hi is not None and hi == lo:
            n = f"a list of exactly {lo} items"
        elif hi is not None:
            n = f"a list of {lo} to {hi} items" if lo else f"a list of at most {hi} items"
        elif lo:
            n = "a non-empty list" if lo == 1 else f"a list of at least {lo} items"
        else:
            n = "a list"
        dup = ", no duplicates" if self.unique else ""
        return f"{n}, each {self.item.allowed()}{dup}{self._null()}"

    def _check(self, key: str, value: Any) -> None:
        if not isinstance(value, list):
            _bad(key, value, f"must be {self.allowed()}")
        if len(value) < self.min_len or (self.max_len is not None and len(value) > self.max_len):
            _bad(key, value, f"must be {self.allowed()}")
        for i, x in enumerate(value):
            self.item.check(f"{key}[{i}]", x)
        if self.unique:
            seen = [_ident(x) for x in value]
            dup = next((x for i, x in enumerate(value) if seen[i] in seen[:i]), None)
            if len(set(seen)) != len(seen):
                _bad(key, value, f"must not repeat an item ({dup!r} twice)")


_OVERRIDE = re.compile(r"^(~[^=\s]+(=.*)?|\+{0,2}[^=~\s][^=\s]*=.*)$", re.DOTALL)


@dataclass(frozen=True)
class Overrides(Arg):
    """Hydra overrides of the run config (``key=value``, ``+key=value``, ``~key``).

    Their values are checked by the study's composition (:func:`sim.config.load_config`).
    """

    def allowed(self) -> str:  # noqa: D102
        return f"a list of run-config overrides such as [agents.noise.n=20]{self._null()}"

    def _check(self, key: str, value: Any) -> None:
        if not isinstance(value, list):
            _bad(key, value, f"must be {self.allowed()}")
        for i, x in enumerate(value):
            if not isinstance(x, str) or not _OVERRIDE.match(x):
                _bad(f"{key}[{i}]", x, "must be a run-config override key=value "
                                       "(+key=value to add, ~key to delete)")


@dataclass(frozen=True)
class Map(Arg):
    """A mapping ``{key: value}``: keys per ``keys``, values per ``values``.

    ``per_key`` overrides ``values`` for particular keys (e.g. a topology's
    concentration parameter).
    """

    keys: Str = field(default_factory=Str)
    values: Arg = field(default_factory=Scalar)
    per_key: Mapping[str, Arg] = field(default_factory=dict)
    min_len: int = 0

    def allowed(self) -> str:  # noqa: D102
        n = {0: "a mapping", 1: "a non-empty mapping"}.get(
            self.min_len, f"a mapping of at least {self.min_len} entries")
        return (f"{n} from {self.keys.allowed()} to {self.values.allowed()}"
                f"{self._null()}")

    def _check(self, key: str, value: Any) -> None:
        if not isinstance(value, dict) or len(value) < self.min_len:
            _bad(key, value, f"must be {self.allowed()}")
        for k, v in value.items():
            if not isinstance(k, str):
                _bad(key, value, f"keys must be {self.keys.allowed()}, got {k!r}")
            try:
                self.keys.check(k, k)
            except ValueError:
                _bad(f"{key}.{k}", v, f"unknown key {k!r}; keys must be {self.keys.allowed()}")
            self.per_key.get(k, self.values).check(f"{key}.{k}", v)


@dataclass(frozen=True)
class Record(Arg):
    """A mapping with fixed keys: ``fields`` (all required unless listed in ``optional``)."""

    fields: Mapping[str, Arg] = field(default_factory=dict)
    optional: frozenset[str] = frozenset()

    def allowed(self) -> str:  # noqa: D102
        req = [k for k in self.fields if k not in self.optional]
        opt = [k for k in self.fields if k in self.optional]
        parts = ([f"keys {', '.join(req)}"] if req else []) + (
            [f"optional {', '.join(opt)}"] if opt else [])
        return f"a mapping with {'; '.join(parts) or 'no keys'}{self._null()}"

    def _check(self, key: str, value: Any) -> None:
        if not isinstance(value, dict):
            _bad(key, value, f"must be {self.allowed()}")
        pre = f"{key}." if key else ""
        for k in value:
            if k not in self.fields:
                _bad(f"{pre}{k}", value[k], f"unknown key; valid keys"
                                            f"{' of ' + key if key else ''}: "
                                            f"{', '.join(self.fields)}")
        for k, arg in self.fields.items():
            if k in value:
                arg.check(f"{pre}{k}", value[k])
            elif k not in self.optional:
                _bad(key, value, f"misses key {k!r}; must be {self.allowed()}")


# --------------------------------------------------------------------------- schemas

Rule = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class StudySchema:
    """One study's arguments: the key table, cross-key rules and the run-config composition.

    Attributes:
        args: Key → kind (the top level of the study's config).
        rules: Cross-key checks, each raising a one-line ``ValueError``.
        compose: Composes the representative run config(s); raises likewise.
        doc: One line on the study.
    """

    args: Mapping[str, Arg]
    rules: tuple[Rule, ...] = ()
    compose: Rule | None = None
    doc: str = ""


def _run_config(groups: Sequence[tuple[str, Any, list[str]]],
                build: Callable[[list[str]], Any] | None = None) -> Any:
    """Compose one run config from ``groups`` (``(key, value, overrides)``, in order).

    On failure, shorter and shorter prefixes are composed until one succeeds: the
    group after it broke the composition and its key is named (only the failure
    path pays; user overrides come last, so this is usually one more composition).
    """
    from sim.config import load_config

    build = build or load_config
    try:
        return build([o for _, _, ov in groups for o in ov])
    except ValueError as exc:  # ConfigError and the builders' one-line ValueErrors
        err = exc
    culprit = groups[0]
    for i in range(len(groups) - 1, 0, -1):
        if not groups[i][2]:
            continue  # adds nothing: the shorter prefix fails as well
        try:
            build([o for _, _, ov in groups[:i] for o in ov])
        except ValueError as exc:
            err = exc
            continue
        culprit = groups[i]
        break
    key, value, _ = culprit
    _bad(key, value, f"the run config rejects it: {err}")


def _run_flags(seed: int) -> list[str]:
    return [f"seed={seed}", "output.figures=false", "progress=false"]


def _first_seed(base_seed: int) -> int:
    from experiments.stats import replicate_seeds

    return replicate_seeds(int(base_seed), 1)[0]


def _override_key(text: str) -> str:
    return text.lstrip("+~").split("=", 1)[0].strip()


def _not_study_set(key: str, overrides: Any, reserved: Sequence[str], why: str) -> None:
    """Overrides must not set what the study sets itself (it would be ignored or break pairing)."""
    for i, text in enumerate(overrides or []):
        if _override_key(text) in reserved:
            _bad(f"{key}[{i}]", text, f"sets {_override_key(text)}, which the study sets itself "
                                      f"({why}); not one of {', '.join(reserved)}")


_RUN_SET = ("margin", "scenario", "steps", "seed")
_RUN_WHY = "use the study's regime(s), scenario(s), steps and seed keys"


def _run_overrides_free(*keys: str) -> Rule:
    def rule(c: dict[str, Any]) -> None:
        for key in keys:
            if key == "scenarios":
                for s, extra in c["scenarios"].items():
                    _not_study_set(f"scenarios.{s}", extra, _RUN_SET, _RUN_WHY)
            else:
                _not_study_set(key, c[key], _RUN_SET, _RUN_WHY)
    return rule


REPLICATES = Int(1, MAX_REPLICATES, doc="replicates (runs) per cell")
STEPS = Int(1, MAX_STEPS, doc="steps per run")
SEED = Int(0, MAX_SEED, doc="seed (non-negative)")
WORKERS = Int(1, MAX_WORKERS, doc="worker processes")
EXECUTOR = Str(("local", "serial", "dask"),
               doc="where runs execute (experiments.executor); dask needs the [dask] extra")
DASK_ADDRESS = Str(nullable=True, pattern=r"[A-Za-z][A-Za-z0-9+.-]*://\S+",
                   what="a scheduler address such as tcp://host:8786",
                   doc="executor=dask: scheduler address (null: a LocalCluster of workers)")
EXECUTION = {"executor": EXECUTOR, "dask_address": DASK_ADDRESS}
"""The executor keys every study with runs takes (beside ``workers``)."""


def _executor_rule(c: dict[str, Any]) -> None:
    """``dask`` needs ``dask.distributed`` installed; ``dask_address`` needs ``executor=dask``."""
    if c.get("dask_address") is not None and c.get("executor") != "dask":
        _bad("dask_address", c["dask_address"], f"is only used with executor=dask "
                                                f"(executor = {c.get('executor')})")
    if c.get("executor") == "dask":
        import importlib.util

        if importlib.util.find_spec("distributed") is None:
            _bad("executor", "dask", "needs dask.distributed: pip install 'marginsim[dask]'")
LEVEL = Float(0.0, 1.0, lo_open=True, hi_open=True)
OUTPUT_DIR = PathArg(doc="output directory")
REGIMES = List(Str(margin_regimes), min_len=1, unique=True,
               doc="margin regimes (conf/margin/*.yaml)")


# compare_regimes ----------------------------------------------------------------

def _baseline_in_regimes(c: dict[str, Any]) -> None:
    if c["baseline"] not in c["regimes"]:
        _bad("baseline", c["baseline"], f"must be one of regimes ({', '.join(c['regimes'])})")


def _compose_compare(c: dict[str, Any]) -> None:
    seed = _first_seed(c["base_seed"])
    for scenario, extra in c["scenarios"].items():
        _run_config([("regimes", c["regimes"], [f"margin={c['regimes'][0]}"]),
                     ("scenarios", c["scenarios"], [f"scenario={scenario}"]),
                     (f"scenarios.{scenario}", extra, list(extra or [])),
                     ("steps", c["steps"], [f"steps={c['steps']}"]),
                     ("base_seed", c["base_seed"], _run_flags(seed)),
                     ("overrides", c["overrides"], list(c["overrides"] or []))])


COMPARE_REGIMES = StudySchema(
    doc="margin regimes x scenarios x replicates with common random numbers",
    args={
        "regimes": REGIMES,
        "baseline": Str(margin_regimes, doc="paired differences are regime - baseline; "
                                            "one of regimes"),
        "scenarios": Map(Str(scenario_names), Overrides(nullable=True), min_len=1,
                         doc="scenario (conf/scenario/*.yaml) -> extra overrides of its runs"),
        "replicates": REPLICATES,
        "steps": STEPS,
        "base_seed": SEED,
        "workers": WORKERS,
        **EXECUTION,
        "confidence": Float(0.0, 1.0, True, True, doc="paired-t interval level"),
        "tail_quantile": Float(0.0, 1.0, True, True, doc="VaR / LaR quantile"),
        "metrics": List(Str(metric_names), min_len=1, unique=True,
                        doc="metrics tabulated and plotted (experiments.analysis)"),
        "overrides": Overrides(nullable=True, doc="applied to every run"),
        "output_dir": OUTPUT_DIR,
        "report_only": Bool(doc="rebuild tables and figures from finished runs"),
        "progress": Bool(doc="progress bar"),
    },
    rules=(_baseline_in_regimes, _run_overrides_free("scenarios", "overrides"), _executor_rule),
    compose=_compose_compare)


# stress_sweep -------------------------------------------------------------------

_PATH = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*"
_STUDY_SET = ("margin", "scenario", "steps", "seed", "output.figures", "progress")


def _grid_keys(c: dict[str, Any]) -> None:
    for key in c["grid"]:
        if key in _STUDY_SET:
            _bad(f"grid.{key}", c["grid"][key], "is set by the study itself (use regime, "
                                                "scenario, steps, base_seed)")
    for i, key in enumerate(c["heatmap"]):
        if key not in c["grid"]:
            _bad(f"heatmap[{i}]", key, f"must be a grid key ({', '.join(c['grid'])})")


def _compose_stress(c: dict[str, Any]) -> None:
    seed = _first_seed(c["base_seed"])
    grid = c["grid"]
    head = [("regime", c["regime"], [f"margin={c['regime']}"]),
            ("scenario", c["scenario"], [f"scenario={c['scenario']}"]),
            ("scenario_overrides", c["scenario_overrides"], list(c["scenario_overrides"] or [])),
            ("steps", c["steps"], [f"steps={c['steps']}"]),
            ("base_seed", c["base_seed"], _run_flags(seed))]
    tail = [("overrides", c["overrides"], list(c["overrides"] or []))]
    first = {k: v[0] for k, v in grid.items()}
    cells = [first] + [{**first, k: v} for k, vals in grid.items() for v in vals[1:]]
    for cell in cells:  # every grid value once, the other axes at their first value
        _run_config([*head, *[(f"grid.{k}", grid[k], [f"{k}={v}"]) for k, v in cell.items()],
                     *tail])


STRESS_SWEEP = StudySchema(
    doc="a protocol designer's parameter grid x replicates",
    args={
        "grid": Map(Str(pattern=_PATH, what="a run-config path such as margin.haircuts.BTC"),
                    List(Scalar(), min_len=1, unique=True), min_len=1,
                    doc="run-config path -> values; every combination runs"),
        "heatmap": List(Str(pattern=_PATH, what="a grid key"), max_len=2, unique=True,
                        doc="x, y grid keys of the heat maps"),
        "regime": Str(margin_regimes, doc="margin regime of every run"),
        "scenario": Str(scenario_names, doc="scenario of every run"),
        "scenario_overrides": Overrides(nullable=True, doc="extra overrides for the scenario"),
        "replicates": REPLICATES,
        "steps": STEPS,
        "base_seed": SEED,
        "workers": WORKERS,
        **EXECUTION,
        "target": Record({"debt_metric": Str(("insolvency", "bad_debt")),
                          "quantile": Float(0.0, 1.0, True, True),
                          "threshold": Float(0.0)},
                         doc="q-quantile of debt / open interest <= threshold"),
        "lar_quantile": Float(0.0, 1.0, True, True, doc="VaR / LaR quantile"),
        "overrides": Overrides(nullable=True, doc="applied to every run"),
        "output_dir": OUTPUT_DIR,
        "report_only": Bool(),
        "progress": Bool(),
    },
    rules=(_grid_keys, _run_overrides_free("scenario_overrides", "overrides"), _executor_rule),
    compose=_compose_stress)


# backtest_report ------------------------------------------------------------------

def _two_periods(c: dict[str, Any]) -> None:
    if 2 * c["horizon"] >= c["steps"]:
        _bad("horizon", c["horizon"], f"must be < steps / 2 = {c['steps'] / 2:g} "
                                      f"(at least two P&L periods)")


def _compose_backtest(c: dict[str, Any]) -> None:
    _run_config([("regimes", c["regimes"], [f"margin={c['regimes'][0]}"]),
                 ("scenario", c["scenario"], [f"scenario={c['scenario']}"]),
                 ("scenario_overrides", c["scenario_overrides"],
                  list(c["scenario_overrides"] or [])),
                 ("steps", c["steps"], [f"steps={c['steps']}"]),
                 ("seed", c["seed"], _run_flags(c["seed"])),
                 ("overrides", c["overrides"], list(c["overrides"] or []))])


BACKTEST_REPORT = StudySchema(
    doc="margin backtest per regime on a replay of real prices",
    args={
        "regimes": REGIMES,
        "scenario": Str(scenario_names, doc="the replay (conf/scenario/*.yaml)"),
        "scenario_overrides": Overrides(nullable=True),
        "steps": STEPS,
        "seed": SEED,
        "horizon": Int(1, MAX_STEPS, doc="steps per P&L period"),
        "confidence": Float(0.0, 1.0, True, True, doc="coverage tested"),
        "level": Float(0.0, 1.0, True, True, doc="size of the LR tests"),
        "workers": WORKERS,
        **EXECUTION,
        "overrides": Overrides(nullable=True),
        "output_dir": OUTPUT_DIR,
        "report_only": Bool(),
        "progress": Bool(),
    },
    rules=(_two_periods, _run_overrides_free("scenario_overrides", "overrides"), _executor_rule),
    compose=_compose_backtest)


# contagion_matrix -----------------------------------------------------------------

_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"


def _matrix_rules(c: dict[str, Any]) -> None:
    _not_study_set("overrides", c["overrides"], ("seed",), "use seeds")
    for channel, extra in c["channels"].items():
        _not_study_set(f"channels.{channel}", extra, ("seed",), "use seeds")


def _world_names() -> tuple[str, ...]:
    from experiments.worlds import WORLDS

    return tuple(WORLDS)


def _compose_matrix(c: dict[str, Any]) -> None:
    from experiments.worlds import WORLDS

    world = WORLDS[c["world"]]() if c["world"] else []
    for channel, extra in c["channels"].items():
        rc = _run_config([("world", c["world"], world),
                          ("overrides", c["overrides"], list(c["overrides"] or [])),
                          (f"channels.{channel}", extra, list(extra)),
                          ("seeds", c["seeds"], _run_flags(c["seeds"][0]))])
        steps = int(rc.steps)
        if c["shock_step"] >= steps:
            where = f"overrides and channels.{channel}" if extra else "overrides"
            _bad("shock_step", c["shock_step"], f"must be an integer in [0, {steps - 1}]: before "
                                                f"the run ends (steps = {steps} from {where})")


CONTAGION_MATRIX = StudySchema(
    doc="loss at protocol j given a confined shock at protocol i",
    args={
        "world": Str(_world_names, nullable=True,
                     doc="reference world (experiments.worlds) the runs start from"),
        "overrides": Overrides(nullable=True, doc="overrides of the run config after the world"),
        "shock": Str(shock_kinds, doc="shock kind (sim.contagion.SHOCKS)"),
        "size": Float(0.0, lo_open=True, doc="USD taken out (exploit) or sold (sell)"),
        "shock_step": Int(0, MAX_STEPS - 1, doc="step the shock hits; < the run's steps"),
        "channels": Map(Str(pattern=_NAME, what="a name of letters, digits, _ . -"),
                        Overrides(), min_len=1,
                        doc="contagion switch setting -> extra overrides"),
        "seeds": List(SEED, min_len=1, unique=True, doc="run seeds (paired across cells)"),
        "confidence": Float(0.0, 1.0, True, True, doc="paired-t interval level"),
        "workers": WORKERS,
        **EXECUTION,
        "output_dir": OUTPUT_DIR,
    },
    rules=(_matrix_rules, _executor_rule),
    compose=_compose_matrix)


# contagion_topology ----------------------------------------------------------------

DENSITIES = List(Float(0.0, 1.0), min_len=1, unique=True, doc="expected exposure densities")


def _topologies(doc: str) -> Map:
    from_topo = ("erdos_renyi", "scale_free", "core_periphery")
    gamma = List(Float(2.0, 100.0, lo_open=True), min_len=1, unique=True)
    core = List(Float(0.0, 1.0, lo_open=True), min_len=1, unique=True)
    return Map(Str(from_topo), Record({}, nullable=True), min_len=1, doc=doc, per_key={
        "erdos_renyi": Record({}, nullable=True),
        "scale_free": Record({"gamma": gamma}, optional=frozenset({"gamma"}), nullable=True),
        "core_periphery": Record({"core_fraction": core}, optional=frozenset({"core_fraction"}),
                                 nullable=True)})


_WORLD_DEFAULTS = {"haircut": 0.1, "ltv": 0.8, "leverage": [3.0, 10.0]}

_TOPOLOGY_WORLD_SETS = (
    "protocols", "scenario", "margin", "steps", "seed", "agents.noise.n", "agents.leveraged.n",
    "agents.leveraged.leverage_min", "agents.leveraged.leverage_max", "agents.fundamentalist.n",
    "agents.momentum.n", "agents.arbitrageur.enabled", "protocols.0.spot", "protocols.0.assets",
    "protocols.0.insurance_fund", "protocols.0.liquidation.bad_debt",
    "contagion.token_impairment", "output.figures", "progress")
"""Run-config keys that :func:`sim.contagion.topology_world.topology_world` sets itself.

They are applied after the user's overrides.
"""


def _topology_rules(c: dict[str, Any]) -> None:
    if c["multi_threshold"] > c["n"] - 1:
        _bad("multi_threshold", c["multi_threshold"], f"must be an integer in [1, n - 1 = "
                                                      f"{c['n'] - 1}]")
    if sum(c["core_periphery_ratios"]) <= 0:
        _bad("core_periphery_ratios", c["core_periphery_ratios"], "must not be all zero")
    a = c["agent_model"]
    if a is not None:
        _not_study_set("agent_model.overrides", a["overrides"], ("margin", "seed"),
                       "use agent_model.regimes and agent_model.base_seed")
    b = c["agent_topology"]
    if b is None:
        return
    _not_study_set("agent_topology.overrides", b["overrides"], _TOPOLOGY_WORLD_SETS,
                   "agent_topology keys and agent_topology.world")
    if b["multi_threshold"] > b["n"] - 1:
        _bad("agent_topology.multi_threshold", b["multi_threshold"],
             f"must be an integer in [1, agent_topology.n - 1 = {b['n'] - 1}]")
    if b["shock_step"] >= b["steps"]:
        _bad("agent_topology.shock_step", b["shock_step"],
             f"must be an integer in [0, agent_topology.steps - 1 = {b['steps'] - 1}]")
    w = {**_WORLD_DEFAULTS, **b["world"]}
    if w["ltv"] > 1.0 - w["haircut"]:
        _bad("agent_topology.world.ltv", w["ltv"],
             f"must be <= 1 - haircut = {1.0 - w['haircut']:g} (a loan starts within margin)")
    if w["leverage"][0] > w["leverage"][1]:
        _bad("agent_topology.world.leverage", w["leverage"], "must be [min, max] with min <= max")


def _compose_topology(c: dict[str, Any]) -> None:
    a = c["agent_model"]
    if a is not None and a["enabled"]:
        from experiments.worlds import isolated_crash

        world = isolated_crash(float(a["crashes"][0]), None, a["start_step"], a["horizon"],
                               a["noise"], a["leveraged"], float(a["supply"]))
        _run_config([("agent_model", _Short(a), world),
                     ("agent_model.regimes", a["regimes"],
                      [f"margin={a['regimes'][0]}", "protocols.1.margin=null"]),
                     ("agent_model.token_haircut", a["token_haircut"],
                      [f"+margin.haircuts.aLP={float(a['token_haircut'])}"]),
                     ("agent_model.base_seed", a["base_seed"], _run_flags(_first_seed(
                         a["base_seed"]))),
                     ("agent_model.overrides", a["overrides"], list(a["overrides"] or []))])
    b = c["agent_topology"]
    if b is not None and b["enabled"]:
        import numpy as np

        from sim.contagion.topology_world import topology_world

        def build(overrides: list[str]) -> Any:
            w = dict(b["world"])
            if "leverage" in w:
                w["leverage"] = tuple(float(x) for x in w["leverage"])
            return topology_world(np.ones((2, 2)), regime=b["regimes"][0], seed=0,
                                  steps=b["steps"], token_impairment=b["token_impairment"],
                                  overrides=overrides, **w)

        _run_config([("agent_topology.world", b["world"], []),
                     ("agent_topology.overrides", b["overrides"], list(b["overrides"] or []))],
                    build)


AGENT_MODEL = Record(nullable=True, doc="agent-model part: two venues, a crash at alpha", fields={
    "enabled": Bool(),
    "regimes": List(Str(agent_model_regimes), min_len=1, unique=True, doc="beta's regime"),
    "crashes": List(Float(0.0, 1.0, True, True), min_len=1, unique=True, doc="gap crash sizes"),
    "replicates": REPLICATES,
    "base_seed": SEED,
    "start_step": Int(1, MAX_STEPS, doc="crash step"),
    "horizon": Int(1, MAX_STEPS, doc="steps after the crash"),
    "noise": Int(0, MAX_AGENTS, doc="noise traders per venue"),
    "leveraged": Int(1, MAX_AGENTS, doc="leveraged traders per venue"),
    "supply": Float(0.0, lo_open=True, doc="aLP units outstanding"),
    "token_haircut": Float(0.0, 1.0, hi_open=True, doc="beta's haircut on aLP"),
    "workers": WORKERS,
    "overrides": Overrides(nullable=True),
})

WORLD = Record(optional=frozenset({"holding_usd", "haircut", "pool_ratio", "min_supply",
                                   "borrowers", "borrow_usd", "ltv", "insurance_fund", "noise",
                                   "leveraged", "leverage"}),
               doc="sim.contagion.topology_world.topology_world keyword arguments", fields={
    "holding_usd": Float(0.0),
    "haircut": Float(0.0, 1.0, hi_open=True),
    "pool_ratio": Float(1.0),
    "min_supply": Float(0.0, lo_open=True),
    "borrowers": Int(0, 10_000),
    "borrow_usd": Float(0.0),
    "ltv": Float(0.0, 1.0),
    "insurance_fund": Float(0.0),
    "noise": Int(0, MAX_AGENTS),
    "leveraged": Int(0, MAX_AGENTS),
    "leverage": List(Float(1.0), min_len=2, max_len=2),
})

AGENT_TOPOLOGY = Record(nullable=True, doc="agent model on random topologies", fields={
    "enabled": Bool(),
    "n": Int(2, 100, doc="protocols per network"),
    "densities": DENSITIES,
    "topologies": _topologies("topology -> concentration values"),
    "weight_dist": Str(weight_dists),
    "regimes": List(Str(topology_regimes), min_len=1, unique=True),
    "replicates": REPLICATES,
    "base_seed": SEED,
    "multi_threshold": Int(1, 100),
    "shock_fraction": Float(0.0, 1.0, lo_open=True),
    "shock_step": Int(0, MAX_STEPS - 1),
    "steps": Int(2, MAX_STEPS),
    "token_impairment": Bool(),
    "world": WORLD,
    "overrides": Overrides(nullable=True),
})

CONTAGION_TOPOLOGY = StudySchema(
    doc="contagion probability and extent vs network topology",
    args={
        "n": Int(2, 5000, doc="protocols per network"),
        "densities": DENSITIES,
        "topologies": _topologies("topology -> {gamma | core_fraction: [values]}"),
        "core_periphery_ratios": List(Float(0.0), min_len=3, max_len=3,
                                      doc="core-core, core-periphery, periphery-periphery"),
        "weight_dist": Str(weight_dists, doc="exposure sizes"),
        "capital_ratio": Float(0.0, doc="capital / total interbank exposure"),
        "multi_threshold": Int(1, 5000, doc="defaults counted as multi-protocol contagion"),
        "replicates": REPLICATES,
        "base_seed": SEED,
        "confidence": Float(0.0, 1.0, True, True),
        "example_density": Float(0.0, 1.0, doc="density of the example graphs"),
        **EXECUTION,
        "agent_model": AGENT_MODEL,
        "agent_topology": AGENT_TOPOLOGY,
        "output_dir": OUTPUT_DIR,
        "progress": Bool(),
    },
    rules=(_topology_rules, _executor_rule),
    compose=_compose_topology)


# capital_efficiency --------------------------------------------------------------

def book_names() -> tuple[str, ...]:
    """Books the capital-efficiency study measures (:data:`experiments.book_metrics.BOOKS`)."""
    from experiments.book_metrics import BOOKS

    return BOOKS


def book_metric_names() -> tuple[str, ...]:
    """Per-book measures (:data:`experiments.book_metrics.BOOK_METRICS`)."""
    from experiments.book_metrics import BOOK_METRICS

    return BOOK_METRICS


def _capital_rules(c: dict[str, Any]) -> None:
    for key in ("baselines", "candidate"):
        for name in (c[key] if isinstance(c[key], list) else [c[key]]):
            if name not in c["regimes"]:
                _bad(key, c[key], f"must name regimes in regimes ({', '.join(c['regimes'])}); "
                                  f"{name!r} is not")
    if c["candidate"] in c["baselines"]:
        _bad("candidate", c["candidate"], f"must not be one of baselines "
                                          f"({', '.join(c['baselines'])})")
    reserved = (*_RUN_SET, "market", "output.accounts_every", "output.figures", "progress")
    counts = "agents.option_books.counts"
    why = "use regimes, scenarios, steps, base_seed, per_book and accounts_every"
    named = [("overrides", c["overrides"]),
             *[(f"scenarios.{s}", extra) for s, extra in c["scenarios"].items()]]
    for key, overrides in named:
        for i, text in enumerate(overrides or []):
            k = _override_key(text)
            if k in reserved or k == counts or k.startswith(f"{counts}."):
                _bad(f"{key}[{i}]", text, f"sets {k}, which the study sets itself ({why}); "
                                          f"not one of {', '.join(reserved)}, {counts}.*")


def _compose_capital(c: dict[str, Any]) -> None:
    from experiments.worlds import options_books

    seed = _first_seed(c["base_seed"])
    world = options_books(per_book=c["per_book"], accounts_every=c["accounts_every"])
    for scenario, extra in c["scenarios"].items():
        rc = _run_config([("per_book", c["per_book"], world),
                          ("regimes", c["regimes"], [f"margin={c['regimes'][0]}"]),
                          ("scenarios", c["scenarios"], [f"scenario={scenario}"]),
                          (f"scenarios.{scenario}", extra, list(extra or [])),
                          ("steps", c["steps"], [f"steps={c['steps']}"]),
                          ("base_seed", c["base_seed"], _run_flags(seed)),
                          ("overrides", c["overrides"], list(c["overrides"] or []))])
        warmup = int(rc.agents.option_books.enter_steps) + c["settle_steps"]
        every = c["accounts_every"]
        if c["steps"] // every * every <= warmup:
            _bad("steps", c["steps"], f"must leave an account snapshot (every {every} steps) "
                                      f"after the warm-up, step > agents.option_books.enter_steps"
                                      f" + settle_steps = {warmup}")


CAPITAL_EFFICIENCY = StudySchema(
    doc="capital per unit of risk each regime asks of each option book (common random numbers)",
    args={
        "regimes": REGIMES,
        "baselines": List(Str(margin_regimes), min_len=1, unique=True,
                          doc="paired differences are regime - baseline; each one of regimes"),
        "candidate": Str(margin_regimes, doc="the regime the verdict judges; one of regimes"),
        "verdict_metric": Str(book_metric_names, doc="the measure the verdict judges"),
        "scenarios": Map(Str(scenario_names), Overrides(nullable=True), min_len=1,
                         doc="scenario (conf/scenario/*.yaml) -> extra overrides of its runs"),
        "books": List(Str(book_names), min_len=1, unique=True,
                      doc="books measured (option-book types and dealer)"),
        "per_book": Int(1, 10_000, doc="traders per book type and underlying"),
        "accounts_every": Int(1, MAX_STEPS, doc="steps between account snapshots"),
        "settle_steps": Int(0, MAX_STEPS, doc="snapshots count from step > enter_steps + this"),
        "risk_floor": Float(0.0, 1.0, hi_open=True,
                            doc="risk below this x (gross notional + |value|) counts as zero"),
        "replicates": REPLICATES,
        "steps": STEPS,
        "base_seed": SEED,
        "workers": WORKERS,
        **EXECUTION,
        "confidence": Float(0.0, 1.0, True, True, doc="paired-t and t interval level"),
        "figure_metrics": List(Str(book_metric_names), unique=True,
                               doc="measures drawn as bar charts"),
        "overrides": Overrides(nullable=True, doc="applied to every run"),
        "output_dir": OUTPUT_DIR,
        "report_only": Bool(doc="rebuild tables and figures from finished runs"),
        "progress": Bool(doc="progress bar"),
    },
    rules=(_capital_rules, _executor_rule),
    compose=_compose_capital)


# tail_risk, stylised_facts (--option arguments) ---------------------------------------

def _compose_tail(c: dict[str, Any]) -> None:
    _run_config([("overrides", c["overrides"], list(c["overrides"])),
                 ("--seed", c["--seed"], _run_flags(_first_seed(c["--seed"])))])


TAIL_RISK = StudySchema(
    doc="Gauntlet VaR / LaR over seeded replicates",
    args={"--runs": Int(1, MAX_REPLICATES, doc="replicates"),
          "--seed": SEED,
          "--quantile": Float(0.0, 1.0, True, True, doc="VaR / LaR quantile"),
          "overrides": Overrides(doc="run-config overrides")},
    compose=_compose_tail)


def _one_source(c: dict[str, Any]) -> None:
    if (c["run_dir"] is None) == (c["--run"] is None):
        _bad("run_dir", c["run_dir"], "give a run directory or --run overrides (one of them)")


def _compose_facts(c: dict[str, Any]) -> None:
    if c["--run"] is not None:
        _run_config([("--run", c["--run"], list(c["--run"]))])


STYLISED_FACTS = StudySchema(
    doc="stylised facts of a run's returns",
    args={"run_dir": PathArg(must_hold="timeseries.parquet", nullable=True,
                             doc="a finished run's directory"),
          "--run": Overrides(nullable=True, doc="run the model with these overrides first"),
          "--aggregate": Int(1, MAX_STEPS, doc="steps per return")},
    rules=(_one_source,),
    compose=_compose_facts)


def _compose_squeeze(c: dict[str, Any]) -> None:
    from experiments.worlds import gamma_squeeze

    _not_study_set("overrides", c["overrides"], ("seed",), "use --seed")
    _run_config([("--asset", c["--asset"], gamma_squeeze()),
                 ("overrides", c["overrides"], list(c["overrides"])),
                 ("--seed", c["--seed"], _run_flags(_first_seed(c["--seed"])))],
                build=_squeeze_build(c["--asset"]))


def _squeeze_build(asset: str) -> Callable[[list[str]], Any]:
    """Compose, then refuse an ``--asset`` the composed market does not list."""
    from sim.config import load_config

    def build(overrides: list[str]) -> Any:
        cfg = load_config(overrides)
        names = [a.name for a in cfg.market.assets]
        if asset not in names:
            _bad("--asset", asset, f"must be an asset of the world ({', '.join(names)})")
        return cfg

    return build


GAMMA_SQUEEZE = StudySchema(
    doc="dealers' delta hedging of short gamma in a sell-off, hedged vs unhedged (paired)",
    args={"--replicates": Int(2, MAX_REPLICATES, doc="replicates (pairs)"),
          "--seed": SEED,
          "--asset": Str(doc="underlying whose perpetual is measured"),
          "overrides": Overrides(doc="run-config overrides of the gamma-squeeze world")},
    compose=_compose_squeeze)


# validate_oct2025 ------------------------------------------------------------------

def protocol_names() -> tuple[str, ...]:
    """Venue presets (``conf/protocols/*.yaml``)."""
    return _conf_names("protocols")


_TIME = r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?"
_TIME_WHAT = "a UTC time such as '2025-10-10 21:15'"
_WINDOWS = ("event_window", "calm_window", "cascade_window")


def _window_doc(what: str) -> List:
    return List(Str(pattern=_TIME, what=_TIME_WHAT), min_len=2, max_len=2,
                doc=f"[start, end) UTC of {what}")


def _utc_time(key: str, value: Any) -> Any:
    import pandas as pd

    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        ts = None
    if ts is None or pd.isna(ts):
        _bad(key, value, f"must be {_TIME_WHAT}")
    return ts


def _validation_rules(c: dict[str, Any]) -> None:
    for key in _WINDOWS:
        a, b = (_utc_time(f"{key}[{i}]", v) for i, v in enumerate(c[key]))
        if not a < b:
            _bad(key, c[key], "must be [start, end) with start before end")
    bounds = {k: None if c[k] is None else _utc_time(k, c[k]) for k in ("start", "end")}
    if bounds["start"] is not None and bounds["end"] is not None and (
            bounds["end"] < bounds["start"]):
        _bad("end", c["end"], f"must not be before start ({c['start']})")
    reserved = ("protocols", "scenario", "scenario.params.start", "scenario.params.end",
                "steps", "seed", "output.figures", "progress")
    _not_study_set("overrides", c["overrides"], reserved,
                   "use protocol, start, end, steps and base_seed")


def _compose_validation(c: dict[str, Any]) -> None:
    """Compose the first replicate's run config; every window must lie inside the run."""
    import pandas as pd

    from experiments.worlds import hyperliquid_oct2025
    from sim.scenarios.replay import replay

    try:
        head = hyperliquid_oct2025(start=c["start"], end=c["end"], steps=c["steps"],
                                   protocol=c["protocol"])
    except ValueError as exc:  # the replayed part (start / end) does not resolve
        key = "start" if c["start"] is not None else "end"
        _bad(key, c[key], f"the run config rejects it: {' '.join(str(exc).split())}")
    rc = _run_config([("protocol", c["protocol"], head),
                      ("overrides", c["overrides"], list(c["overrides"] or [])),
                      ("base_seed", c["base_seed"], [f"seed={_first_seed(c['base_seed'])}"])])
    scen = replay(rc.scenario.params, rc.market)
    t0 = scen.start
    t1 = t0 + scen.bar_interval / scen.steps_per_bar * int(rc.steps)
    for key in _WINDOWS:
        a, b = (pd.Timestamp(v, tz="UTC") if pd.Timestamp(v).tzinfo is None
                else pd.Timestamp(v).tz_convert("UTC") for v in c[key])
        if a < t0 or b > t1:
            _bad(key, c[key], f"must lie inside the run, {t0:%Y-%m-%d %H:%M} to "
                              f"{t1:%Y-%m-%d %H:%M} UTC (start, end, steps)")


VALIDATE_OCT2025 = StudySchema(
    doc="10 Oct 2025 replayed on a Hyperliquid-like venue: real against simulated ratios",
    args={
        "protocol": Str(protocol_names, doc="the venue (conf/protocols/*.yaml)"),
        "start": Str(nullable=True, pattern=_TIME, what=_TIME_WHAT,
                     doc="first 5-minute bar replayed (null: the scenario's, 2025-10-09 12:00)"),
        "end": Str(nullable=True, pattern=_TIME, what=_TIME_WHAT,
                   doc="last bar replayed (null: the scenario's, 2025-10-11 11:55)"),
        "steps": Int(1, MAX_STEPS, nullable=True,
                     doc="steps per run (null: the replayed part in real time)"),
        "replicates": REPLICATES,
        "base_seed": SEED,
        "workers": WORKERS,
        **EXECUTION,
        "event_window": _window_doc("the ADL window (Hyperliquid replay: 21:15-21:27)"),
        "calm_window": _window_doc("the calm hours of the depth comparison"),
        "cascade_window": _window_doc("the cascade of the depth comparison"),
        "confidence": Float(0.0, 1.0, True, True, doc="t-interval level over replicates"),
        "overrides": Overrides(nullable=True, doc="applied to every run"),
        "output_dir": OUTPUT_DIR,
        "report_only": Bool(doc="rebuild tables and figures from finished runs"),
        "progress": Bool(doc="progress bar"),
    },
    rules=(_validation_rules, _executor_rule),
    compose=_compose_validation)


# calibrate --------------------------------------------------------------------------

_AGENT_KEY = r"agents\.[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+"


def moment_names() -> tuple[str, ...]:
    """The calibration's target moments (:mod:`experiments.moments`)."""
    from experiments.moments import CRASH_MOMENTS, MOMENTS

    return (*MOMENTS, *CRASH_MOMENTS)


def _calibrate_rules(c: dict[str, Any]) -> None:
    for key, p in c["params"].items():
        if p["low"] >= p["high"]:
            _bad(f"params.{key}.high", p["high"], f"must be > low ({p['low']})")
        if p.get("scale", "lin") == "log" and p["low"] <= 0:
            _bad(f"params.{key}.low", p["low"], "must be > 0 with scale log")
    for k in c["start"]:
        if k not in c["params"]:
            _bad(f"start.{k}", c["start"][k], f"must name a fitted key ({', '.join(c['params'])})")
    for i, text in enumerate(c["fixed"]):
        if not _override_key(text).startswith("agents."):
            _bad(f"fixed[{i}]", text, "must set an agents.* key (it is written into the group)")
    reserved = ("scenario", "steps", "seed")
    for key in ("overrides", "fixed"):
        _not_study_set(key, c[key], reserved, "use calm_overrides, crash_overrides and the "
                                              "study's steps and seeds")
    fitted = set(c["params"])
    for key in ("overrides", "fixed", "calm_overrides", "crash_overrides"):
        for i, text in enumerate(c[key]):
            if _override_key(text) in fitted:
                _bad(f"{key}[{i}]", text, "sets a fitted parameter")
    if c["report_replicates"] < 2:
        _bad("report_replicates", c["report_replicates"], "must be >= 2 (intervals over seeds)")
    if c["skip_steps"] >= c["calm_steps"]:
        _bad("skip_steps", c["skip_steps"], f"must be < calm_steps ({c['calm_steps']})")


def _compose_calibrate(c: dict[str, Any]) -> None:
    seed = _first_seed(c["base_seed"])
    # every bound and every kind of run composed once: the calm runs at the lower bounds,
    # the crash runs (the calm ones without a crash moment) at the upper ones
    crash = "depth_collapse" in c["moments"]
    for kind, bound in (("calm", "low"), ("crash" if crash else "calm", "high")):
        fitted = [f"{k}={p[bound]!r}" for k, p in c["params"].items()]
        rc = _run_config([("fixed", c["fixed"], list(c["fixed"])),
                          ("overrides", c["overrides"], list(c["overrides"])),
                          (f"params ({bound} bounds)", c["params"], fitted),
                          (f"{kind}_overrides", c[f"{kind}_overrides"],
                           list(c[f"{kind}_overrides"])),
                          (f"{kind}_steps", c[f"{kind}_steps"], [f"steps={c[f'{kind}_steps']}"]),
                          ("base_seed", c["base_seed"], _run_flags(seed))])
        if kind == "crash":
            p = rc.scenario.params
            if "start_step" not in p:
                _bad("crash_overrides", c["crash_overrides"],
                     "must choose a scenario with a start_step (a crash)")
            if int(p.start_step) <= c["skip_steps"] or int(p.start_step) >= c["crash_steps"]:
                _bad("crash_steps", c["crash_steps"],
                     f"must cover the crash at step {int(p.start_step)}, after skip_steps")


CALIBRATE = StudySchema(
    doc="fit agents' parameters to real moments (simulated method of moments, common seeds)",
    args={
        "params": Map(Str(pattern=_AGENT_KEY, what="an agents.* run-config key"),
                      Record({"low": Float(), "high": Float(),
                              "scale": Str(("lin", "log"))}, optional=frozenset({"scale"})),
                      min_len=1, doc="fitted key -> {low, high, scale}"),
        "start": Map(Str(pattern=_AGENT_KEY, what="an agents.* run-config key"), Float(),
                     doc="fitted key -> first value"),
        "fixed": Overrides(doc="agents.* overrides held fixed and written into the group"),
        "overrides": Overrides(doc="other overrides of every run (not written)"),
        "moments": List(Str(moment_names), min_len=1, unique=True, doc="target moments"),
        "asset": Str(("BTC", "ETH"), doc="whose perpetual is measured"),
        "calm_overrides": Overrides(doc="overrides of the calm runs"),
        "calm_steps": Int(100, MAX_STEPS, doc="steps of a calm run"),
        "crash_overrides": Overrides(doc="overrides of the crash runs"),
        "crash_steps": Int(2, MAX_STEPS, doc="steps of a crash run"),
        "crash_window_extra": Int(0, MAX_STEPS, doc="steps after the crash in its window"),
        "skip_steps": Int(0, MAX_STEPS, doc="warm-up steps left out of the moments"),
        "replicates": REPLICATES,
        "report_replicates": Int(2, MAX_REPLICATES, doc="seeds at the fitted point"),
        "max_evals": Int(1, 100_000, doc="Nelder-Mead evaluations"),
        "initial_step": Float(0.0, 1.0, True, doc="initial simplex edge on the unit cube"),
        "base_seed": SEED,
        "workers": WORKERS,
        **EXECUTION,
        "confidence": Float(0.0, 1.0, True, True, doc="t interval level"),
        "group": Str(pattern=r"[A-Za-z_][A-Za-z0-9_]*", what="a config group name",
                     nullable=True, doc="writes conf/agents/<group>.yaml"),
        "output_dir": OUTPUT_DIR,
        "progress": Bool(doc="progress bar"),
    },
    rules=(_calibrate_rules, _executor_rule),
    compose=_compose_calibrate)


SCHEMAS: dict[str, StudySchema] = {
    "compare_regimes": COMPARE_REGIMES,
    "stress_sweep": STRESS_SWEEP,
    "backtest_report": BACKTEST_REPORT,
    "contagion_matrix": CONTAGION_MATRIX,
    "contagion_topology": CONTAGION_TOPOLOGY,
    "capital_efficiency": CAPITAL_EFFICIENCY,
    "calibrate": CALIBRATE,
    "tail_risk": TAIL_RISK,
    "gamma_squeeze": GAMMA_SQUEEZE,
    "stylised_facts": STYLISED_FACTS,
    "validate_oct2025": VALIDATE_OCT2025,
}
"""Study name → its argument schema."""


# --------------------------------------------------------------------------- entry points

def _plain(cfg: Any) -> dict[str, Any]:
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        try:
            return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
        except Exception as exc:  # noqa: BLE001 - OmegaConf interpolation errors
            raise StudyArgError(f"the arguments do not resolve: "
                                f"{str(exc).strip().splitlines()[0]}") from None
    return dict(cfg)


def validate_study_args(name: str, cfg: Any, compose: bool = True) -> dict[str, Any]:
    """Check a study's arguments against :data:`SCHEMAS` (no run, nothing written).

    Order: every key's kind, bounds and choices; the cross-key rules; then
    (``compose``) the representative run-config composition(s).

    Args:
        name: Study name (a key of :data:`SCHEMAS`).
        cfg: The study config (DictConfig or mapping), e.g. from
            :func:`experiments.common.load_study_config`.
        compose: Also compose the run config(s) the study's overrides make.

    Returns:
        The config as plain containers.

    Raises:
        StudyArgError: One line, ``<key> = <value> is invalid: <what is allowed>``.
        KeyError: An unknown study name.
    """
    schema = SCHEMAS[name]
    plain = _plain(cfg)
    try:
        Record(schema.args).check("", plain)
        for rule in schema.rules:
            rule(plain)
        if compose and schema.compose is not None:
            schema.compose(plain)
    except StudyArgError:
        raise
    except ValueError as exc:  # sim.config.checks.invalid, ConfigError: already one line
        raise StudyArgError(" ".join(str(exc).split())) from None
    return plain


def fail(name: str, message: Any) -> NoReturn:
    """Print ``<name>: argument error: <message>`` (one line) to stderr and exit with status 2."""
    print(f"{name}: argument error: {' '.join(str(message).split())}", file=sys.stderr)
    raise SystemExit(2)


def describe_schema(name: str) -> str:
    """The study's argument table as text: one line per key (kind, bounds, choices, doc)."""
    def rows(args: Mapping[str, Arg], pre: str = "") -> list[str]:
        out = []
        for key, arg in args.items():
            doc = f"  -- {arg.doc}" if arg.doc else ""
            if isinstance(arg, Record) and arg.fields:
                out.append(f"{pre}{key}: a mapping{' (or null)' if arg.nullable else ''}{doc}")
                out += rows(arg.fields, f"{pre}{key}.")
            else:
                out.append(f"{pre}{key}: {arg.allowed()}{doc}")
        return out

    schema = SCHEMAS[name]
    return "\n".join([f"{name}: {schema.doc}", *rows(schema.args)])


def study_config(name: str, argv: Sequence[str] | None = None) -> Any:
    """A study's config from ``key=value`` arguments, validated; the ``main()`` entry.

    ``--help`` / ``-h`` prints :func:`describe_schema` and exits with status 0.

    Args:
        name: Study name.
        argv: ``key=value`` strings (``None``: ``sys.argv[1:]``).

    Returns:
        The loaded config (:func:`experiments.common.load_study_config`).

    Raises:
        SystemExit: Status 2 after one line on stderr for a bad argument.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        print(describe_schema(name))
        raise SystemExit(0)
    try:
        cfg = load_study_config(name, args)
        validate_study_args(name, cfg)
    except StudyArgError as exc:
        fail(name, exc)
    return cfg


class ArgParser(argparse.ArgumentParser):
    """An ``argparse`` parser whose errors are one line and exit status 2.

    Args:
        study: Study name (the message prefix).
        **kwargs: Passed to :class:`argparse.ArgumentParser`.
    """

    def __init__(self, study: str, **kwargs: Any) -> None:
        super().__init__(prog=f"python -m experiments.{study}", **kwargs)
        self.study = study

    def error(self, message: str) -> NoReturn:
        """One line on stderr, exit status 2 (no usage block)."""
        fail(self.study, message)


def yaml_value(text: str) -> Any:
    """An ``--option`` value parsed as YAML, as ``key=value`` values are (``1e3``, ``.inf``)."""
    from omegaconf import OmegaConf

    try:
        return OmegaConf.to_container(OmegaConf.from_dotlist([f"v={text}"]))["v"]
    except Exception as exc:  # noqa: BLE001 - YAML parser errors
        raise argparse.ArgumentTypeError(f"{text!r} is not a YAML value: "
                                         f"{str(exc).strip().splitlines()[0]}") from None


def study_options(name: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Validate an ``--option`` study's parsed arguments; one line and exit 2 if bad.

    Args:
        name: Study name.
        values: Schema key (``--runs``, ``overrides``, ...) → parsed value.

    Returns:
        The values (plain).
    """
    try:
        return validate_study_args(name, dict(values))
    except StudyArgError as exc:
        fail(name, exc)
