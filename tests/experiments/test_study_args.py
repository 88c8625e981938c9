"""Study arguments: every bad value over every schema leaf stops before any run, in one line.

The fuzz cases are generated from :data:`experiments.study_args.SCHEMAS` itself
(wrong types, out-of-range numbers, inf / nan, booleans for numbers, negatives,
empty lists, unknown choices and keys, strings for lists, overrides the run
config rejects), plus each study's cross-key rules and unparsable arguments.
Each case calls the study's ``main(argv)`` in-process with its work replaced
by a tripwire, and checks: ``SystemExit(2)``, exactly one line on stderr
naming the key, no traceback, nothing written to the output directory.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from experiments.common import load_study_config
from experiments.study_args import (
    SCHEMAS,
    Arg,
    Bool,
    Float,
    Int,
    List,
    Map,
    Overrides,
    PathArg,
    Record,
    Scalar,
    Str,
    StudyArgError,
    describe_schema,
    validate_study_args,
)

ROOT = Path(__file__).resolve().parents[2]
KV_STUDIES = ("compare_regimes", "stress_sweep", "backtest_report", "contagion_matrix",
              "contagion_topology", "capital_efficiency", "calibrate", "validate_oct2025")
OPTION_STUDIES = ("tail_risk", "stylised_facts", "gamma_squeeze")
A_FILE = str(Path(__file__).resolve())  # an existing file: not a directory


def _y(value: Any) -> str:
    """A value as YAML flow text (JSON is YAML)."""
    return json.dumps(value)


def _bad_values(arg: Arg, default: Any = None) -> list[str]:
    """Bad YAML texts for one schema node (its own level only)."""
    null = [] if arg.nullable else ["null"]
    if isinstance(arg, Int):
        out = ["1.5", "true", "false", "abc", "[1]", "{a: 1}", ".inf", ".nan", *null]
        out += [str(arg.lo - 1)] if arg.lo is not None else []
        out += [str(arg.hi + 1)] if arg.hi is not None else []
        return out
    if isinstance(arg, Float):
        out = ["true", "abc", "[0.5]", "{a: 1}", ".inf", "-.inf", ".nan", *null]
        if arg.lo is not None:
            out.append(str(arg.lo) if arg.lo_open else str(arg.lo - 1))
        if arg.hi is not None:
            out.append(str(arg.hi) if arg.hi_open else str(arg.hi + 1))
        return out
    if isinstance(arg, Bool):
        return ["2", "0.5", "abc", "[true]", *null]
    if isinstance(arg, Str):
        out = ["1", "true", "[a]", "''", *null]
        out += ["bogus_choice"] if arg.choices is not None else []
        out += ["'bad key!'"] if arg.pattern is not None else []
        return out
    if isinstance(arg, PathArg):
        return ["1", "true", "[a]", "''", _y(A_FILE), *null]
    if isinstance(arg, Scalar):
        return ["[1]", "{a: 1}", ".nan", "''", "null"]
    if isinstance(arg, Overrides):
        return ["agents.noise.n=5", "{a: 1}", "5", "[nokey]", "[1]", "[agents.noise.n=-5]",
                "[bogus.key=1]", *null]
    if isinstance(arg, List):
        out = ["a_string", "{a: 1}", "5", "true", *null]
        out += ["[]"] if arg.min_len >= 1 else []
        if isinstance(default, list) and default:
            if arg.unique:
                out.append(_y([default[0]] * max(2, arg.min_len)))
            if arg.max_len is not None:
                out.append(_y([default[0]] * (arg.max_len + 1)))
        items = _bad_values(arg.item)
        out += [f"[{v}]" for v in items[:6]]
        return out
    if isinstance(arg, Map):
        out = ["[a]", "abc", "5", *null]
        out += ["{}"] if arg.min_len >= 1 else []
        out += ["{bogus_key_x: []}"] if arg.keys.choices is not None else ["{'bad key!': [1]}"]
        if isinstance(default, dict) and default:
            k = next(iter(default))
            sub = arg.per_key.get(k, arg.values)
            out += [f"{{{_y(k)}: {v}}}" for v in _bad_values(sub, default[k])[:6]]
        return out
    if isinstance(arg, Record):
        out = ["[1]", "abc", "5", "{bogus_x: 1}", *null]
        if any(k not in arg.optional for k in arg.fields):
            out.append("{}")
        return out
    raise AssertionError(f"no generator for {type(arg).__name__}")


def _leaves(args: dict[str, Arg], default: dict[str, Any], pre: str = ""):
    """``(path, node, default)`` for every node reachable by a dotted path."""
    for key, arg in args.items():
        path = f"{pre}{key}"
        d = (default or {}).get(key)
        yield path, arg, d
        if isinstance(arg, Record) and arg.fields:
            yield from _leaves(arg.fields, d or {}, f"{path}.")


# stress_sweep: a replaced grid must not trip the heat-map rule first
CONTEXT = {("stress_sweep", "grid"): ["heatmap=[]"]}

RULE_CASES: dict[str, list[tuple[list[str], str]]] = {
    "compare_regimes": [(["regimes=[cross]", "baseline=static"], "baseline"),
                        (["overrides=[margin=static]"], "overrides"),
                        (["scenarios={calm: [seed=3]}"], "scenarios.calm"),
                        (["scenarios={calm: [agents.noise.n=-1]}"], "scenarios.calm"),
                        (["scenarios={jump_crash: [scenario.params.crash=2]}"],
                         "scenarios.jump_crash")],
    "stress_sweep": [(["heatmap=[nope]"], "heatmap"),
                     (["grid={seed: [1, 2]}", "heatmap=[]"], "grid.seed"),
                     (["grid={agents.leveraged.leverage_max: [10, bogus]}", "heatmap=[]"],
                      "grid.agents.leveraged.leverage_max"),
                     (["grid={agents.leveraged.leverage_max: [10, -5]}", "heatmap=[]"],
                      "grid.agents.leveraged.leverage_max"),
                     (["grid={bogus.key: [1]}", "heatmap=[]"], "grid.bogus.key"),
                     (["scenario_overrides=[scenario.params.bogus=1]"], "scenario_overrides")],
    "backtest_report": [(["horizon=400"], "horizon"), (["steps=2", "horizon=1"], "horizon"),
                        (["overrides=[margin.params.bogus=1]"], "overrides")],
    "contagion_matrix": [(["shock_step=1000"], "shock_step"), (["shock_step=60"], "shock_step"),
                         (["channels={x: [seed=3]}"], "channels.x"),
                         (["channels={x: [steps=10]}"], "shock_step"),
                         (["overrides=[protocols=nowhere]"], "overrides")],
    "contagion_topology": [(["multi_threshold=25"], "multi_threshold"),
                           (["agent_topology.shock_step=20"], "agent_topology.shock_step"),
                           (["agent_topology.multi_threshold=5"],
                            "agent_topology.multi_threshold"),
                           (["agent_topology.world.ltv=0.95"], "agent_topology.world.ltv"),
                           (["agent_topology.world.leverage=[20.0, 5.0]"],
                            "agent_topology.world.leverage"),
                           (["agent_model.overrides=[agents.noise.n=-1]"],
                            "agent_model.overrides"),
                           (["agent_topology.overrides=[bogus.key=1]"],
                            "agent_topology.overrides"),
                           (["core_periphery_ratios=[0, 0, 0]"], "core_periphery_ratios"),
                           (["topologies={erdos_renyi: {gamma: [3.0]}}"],
                            "topologies.erdos_renyi.gamma")],
    "capital_efficiency": [(["regimes=[cross,portfolio]"], "baselines"),
                           (["candidate=static"], "candidate"),
                           (["steps=180"], "steps"),
                           (["accounts_every=2000"], "steps"),
                           (["overrides=[output.accounts_every=0]"], "overrides"),
                           (["overrides=[agents.option_books.counts.basis=0]"], "overrides"),
                           (["scenarios={calm: [market=btc_eth]}"], "scenarios.calm"),
                           (["scenarios={calm: [agents.noise.n=-1]}"], "scenarios.calm")],
    "validate_oct2025": [(["event_window=[2025-10-10 21:27, 2025-10-10 21:15]"], "event_window"),
                         (["cascade_window=[2025-10-11 12:00, 2025-10-11 13:00]"],
                          "cascade_window"),
                         (["start=2025-10-10 12:00", "end=2025-10-10 18:00"], "event_window"),
                         (["start=2025-10-10 22:00", "end=2025-10-10 21:00"], "end"),
                         (["start=2030-01-01 00:00"], "start"),
                         (["steps=60"], "event_window"),
                         (["overrides=[scenario=calm]"], "overrides"),
                         (["overrides=[scenario.params.start=2025-10-10]"], "overrides")],
}


def kv_cases(study: str) -> list[tuple[list[str], str]]:
    """Bad ``key=value`` argument lists for ``study`` and the key the error must name."""
    default = OmegaConfPlain.load(study)
    cases: list[tuple[list[str], str]] = []
    for path, arg, d in _leaves(dict(SCHEMAS[study].args), default):
        ctx = CONTEXT.get((study, path), [])
        cases += [([*ctx, f"{path}={v}"], path) for v in _bad_values(arg, d)]
        if isinstance(arg, Record):
            cases.append(([f"{path}.bogus_x=1"], f"{path}.bogus_x"))
    first = next(iter(SCHEMAS[study].args))
    cases += [([f"{first}=["], first), ([f"{first}=[1, 2"], first),
              ([f"{first}=${{oops}}"], first), ([f"{first}=${{{first}}}"], first),
              ([first], first), (["bogus_key=1"], "bogus_key"), (["=5"], "=5")]
    cases += RULE_CASES.get(study, [])
    return cases


class OmegaConfPlain:
    """The study's default config as plain containers."""

    @staticmethod
    def load(study: str) -> dict[str, Any]:
        """``conf/experiment/<study>.yaml`` as dicts and lists."""
        from omegaconf import OmegaConf

        return OmegaConf.to_container(load_study_config(study, []))  # type: ignore[return-value]


def option_cases(study: str) -> list[tuple[list[str], str]]:
    """Bad argument lists for the ``--option`` studies."""
    cases: list[tuple[list[str], str]] = []
    bad_overrides = [["nokey"], ["agents.noise.n=-5"], ["bogus.key=1"], ["steps=abc"]]
    for key, arg in SCHEMAS[study].args.items():
        if key.startswith("--") and not isinstance(arg, Overrides):
            cases += [([f"{key}={v}"], key) for v in _bad_values(arg) if v != "null"]
        elif key == "overrides":
            cases += [(ov, key) for ov in bad_overrides]
        elif key == "--run":
            cases += [(["--run", *ov], key) for ov in bad_overrides]
        elif key == "run_dir":
            cases += [([v], key) for v in ("/nonexistent/run", str(ROOT), A_FILE)]
    cases += [(["--bogus"], "--bogus"), (["--help-me"], "--help-me")]
    if study == "stylised_facts":
        cases += [([], "run_dir"), ([str(ROOT), "--run"], "run_dir")]
    return cases


class _Ran(Exception):
    """Raised by the tripwire that replaces a study's work."""


def _tripwire(*_a: Any, **_k: Any) -> None:
    raise _Ran


@pytest.fixture
def tripwires(monkeypatch):
    """Replace every study's work (runs, sweeps) by :class:`_Ran`."""
    import experiments.sweep
    import sim

    for study in KV_STUDIES:
        monkeypatch.setattr(importlib.import_module(f"experiments.{study}"), "run_study",
                            _tripwire)
    monkeypatch.setattr(experiments.sweep, "run_sweep", _tripwire)
    monkeypatch.setattr(importlib.import_module("experiments.tail_risk"), "run_replicates",
                        _tripwire)
    monkeypatch.setattr(importlib.import_module("experiments.gamma_squeeze"), "run_study",
                        _tripwire)
    monkeypatch.setattr(sim, "run", _tripwire)


def _run_case(study: str, argv: list[str], capsys) -> tuple[Any, str, str]:
    main = importlib.import_module(f"experiments.{study}").main
    try:
        main(argv)
        code: Any = "returned"
    except SystemExit as exc:
        code = exc.code
    except _Ran:
        code = "ran"
    except Exception as exc:  # noqa: BLE001 - reported as a failure below
        code = f"raised {type(exc).__name__}: {exc}"
    out, err = capsys.readouterr()
    return code, out, err


def _check(study: str, cases: list[tuple[list[str], str]], capsys, out_dir: Path | None) -> int:
    failures = []
    for argv, key in cases:
        code, out, err = _run_case(study, argv, capsys)
        lines = err.strip().splitlines()
        prefix = f"{study}: argument error: "
        ok = (code == 2 and len(lines) == 1 and lines[0].startswith(prefix)
              and key in lines[0] and "Traceback" not in err and not out.strip())
        if out_dir is not None and out_dir.exists():
            ok = False
            err += f" [wrote {sorted(p.name for p in out_dir.iterdir())}]"
        if not ok:
            failures.append(f"{argv} (key {key}): exit {code!r}, stderr {err!r}")
    assert not failures, f"{len(failures)} of {len(cases)} not rejected properly:\n" + \
        "\n".join(failures[:40])
    return len(cases)


@pytest.mark.parametrize("study", KV_STUDIES)
def test_bad_key_value_arguments_stop_before_work_in_one_line(study, tripwires, capsys,
                                                              tmp_path) -> None:
    """Each generated bad value: exit 2, one line naming the key, no output directory."""
    out_dir = tmp_path / "out"
    cases = [([f"output_dir={out_dir}", *argv], key) for argv, key in kv_cases(study)]
    n = _check(study, cases, capsys, out_dir)
    assert n >= 40


@pytest.mark.parametrize("study", OPTION_STUDIES)
def test_bad_option_arguments_stop_before_work_in_one_line(study, tripwires, capsys) -> None:
    """The ``--option`` studies: the same, including argparse's own errors."""
    assert _check(study, option_cases(study), capsys, None) >= 8


def test_fuzz_covers_every_study_and_a_few_hundred_values() -> None:
    """Every study has a schema and the fuzz generates a few hundred cases."""
    total = sum(len(kv_cases(s)) for s in KV_STUDIES) + sum(
        len(option_cases(s)) for s in OPTION_STUDIES)
    assert set(SCHEMAS) == set(KV_STUDIES) | set(OPTION_STUDIES)
    assert total >= 300


@pytest.mark.parametrize("study", KV_STUDIES)
def test_default_configs_validate_without_running(study, tripwires, capsys, tmp_path) -> None:
    """The shipped defaults pass (validation alone, and main up to the work)."""
    plain = validate_study_args(study, load_study_config(study, []))
    assert set(plain) == set(SCHEMAS[study].args)
    # main gets past validation to the work with the defaults (the tripwire)
    code, _, err = _run_case(study, [f"output_dir={tmp_path / 'out'}"], capsys)
    assert code == "ran", err
    assert describe_schema(study).count("\n") >= len(SCHEMAS[study].args)


def test_option_studies_defaults_validate(tripwires, capsys) -> None:
    """``tail_risk`` and ``stylised_facts`` accept their defaults and the README's examples."""
    validate_study_args("tail_risk", {"--runs": 20, "--seed": 1, "--quantile": 0.95,
                                      "overrides": ["scenario=flash_crash"]})
    validate_study_args("stylised_facts", {"run_dir": None, "--run": [], "--aggregate": 1})
    assert _run_case("tail_risk", ["--runs", "2", "scenario=calm"], capsys)[0] == "ran"
    assert _run_case("stylised_facts", ["--run", "steps=50"], capsys)[0] == "ran"


def test_valid_input_keeps_load_semantics() -> None:
    """Replace-not-merge at the top, dotted keys inside; validation errors are one line."""
    cfg = load_study_config("compare_regimes", ["regimes=[cross,static]", "baseline=static",
                                                "scenarios={calm: []}", "replicates=4"])
    assert list(cfg.regimes) == ["cross", "static"] and list(cfg.scenarios) == ["calm"]
    validate_study_args("compare_regimes", cfg)
    cfg = load_study_config("stress_sweep", ["target.quantile=0.9"])
    assert cfg.target.quantile == 0.9 and cfg.target.debt_metric == "insolvency"
    with pytest.raises(StudyArgError, match=r"^replicates = -1 is invalid: must be an integer"):
        validate_study_args("compare_regimes", load_study_config("compare_regimes",
                                                                 ["replicates=-1"]))


def test_existing_study_yaml_is_not_overwritten(tripwires, capsys, tmp_path) -> None:
    """A bad argument leaves a finished study's ``study.yaml`` as it was."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "study.yaml").write_text("before\n")
    code, _, err = _run_case("compare_regimes", [f"output_dir={out}", "replicates=0"], capsys)
    assert code == 2 and "replicates = 0" in err
    assert (out / "study.yaml").read_text() == "before\n"


@pytest.mark.parametrize("argv", [
    ["experiments.compare_regimes", "replicates=-1"],
    ["experiments.contagion_matrix", "shock_step=1000"],
    ["experiments.tail_risk", "--quantile=2"],
])
def test_command_line_bad_argument_is_one_line_exit_2(argv, tmp_path) -> None:
    """Real processes: exit status 2, one line on stderr, nothing written."""
    extra = [f"output_dir={tmp_path / 'out'}"] if "tail_risk" not in argv[0] else []
    proc = subprocess.run([sys.executable, "-m", *argv, *extra], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    study = argv[0].split(".")[1]
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{study}: argument error: "), proc.stderr
    assert argv[1].lstrip("-").split("=")[0] in lines[0]
    assert not (tmp_path / "out").exists()
