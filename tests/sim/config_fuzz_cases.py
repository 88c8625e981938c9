"""Generated bad values over every leaf of the run-config schema, for the door tests.

Each case is ``(world, override, key)``: a preset world (overrides choosing
config groups), one ``key=value`` override with a value that no reading of the
schema allows, and the key the one-line error must name. Values are chosen by
the leaf's kind in the composed default config: booleans get numbers and
words, integers get fractions, words, booleans and infinities, floats get
infinities, NaN, words, booleans and magnitudes past any bound, strings that
name a choice get an unknown name, and lists get a scalar.
"""

from __future__ import annotations

import copy
from typing import Any

from omegaconf import DictConfig, ListConfig

WORLDS = {
    "default": [],
    "two_venues": ["protocols=two_venues"],
    "portfolio": ["margin=portfolio"],
    "adaptive": ["margin=adaptive"],
    "static": ["margin=static"],
    "vol_spike": ["scenario=vol_spike"],
    "replay": ["scenario=replay_may2021"],
    "flash_crash": ["scenario=flash_crash"],
}
"""Preset worlds whose leaves are fuzzed (each group's own params appear in one of them)."""

FREE_STRINGS = {"market.quote", "name", "venue", "start", "end", "universal_regime"}
"""String leaves whose value is a free name (any other name is valid there too)."""

SKIP_SUBTREES = ("scenario.params.files",)
"""Leaves checked by their own dedicated tests (file paths)."""

BAD = {
    bool: ["2", "maybe", "1.5"],
    int: ["1.5", "abc", "true", "inf", "-inf", "[1]"],
    float: ["inf", "-inf", "nan", "abc", "true", "1e300", "[1.0]"],
    str: ["[1,2]", "bogus_choice_xyz"],
    list: ["5", "abc"],
}


def leaves(node: Any, path: str = "") -> list[tuple[str, Any]]:
    """``(dotted path, value)`` of every leaf of a composed config (list items by index)."""
    out: list[tuple[str, Any]] = []
    if isinstance(node, DictConfig):
        items = [(str(k), node[k]) for k in node.keys()]
    elif isinstance(node, ListConfig):
        if len(node) and not isinstance(node[0], DictConfig | ListConfig):
            return [(path, list(node))]  # a list of scalars is one leaf
        if len(node) and isinstance(node[0], ListConfig):
            return [(path, [list(r) for r in node])]  # a matrix is one leaf
        items = [(str(i), node[i]) for i in range(len(node))]
    else:
        return [(path, node)]
    for k, v in items:
        out += leaves(v, f"{path}.{k}" if path else k)
    return out


def kind(value: Any) -> type | None:
    """The fuzzing kind of a leaf value (None: not fuzzed, e.g. null)."""
    for t in (bool, int, float, str, list):
        if isinstance(value, t):
            return t
    return None


def cases(composed: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Every ``(world, override, key)`` for the composed worlds ``{world: cfg}``.

    A leaf shared by several worlds is fuzzed in the first world that has it.
    """
    seen: set[str] = set()
    out = []
    for world, cfg in composed.items():
        for path, value in leaves(copy.deepcopy(cfg)):
            if path in seen or path.startswith(SKIP_SUBTREES):
                continue
            seen.add(path)
            k = kind(value)
            if k is None:
                continue
            bad = list(BAD[k])
            last = path.rsplit(".", 1)[-1]
            if k is str and (path in FREE_STRINGS or last in FREE_STRINGS):
                bad.remove("bogus_choice_xyz")
            if k is int and not isinstance(value, bool) and value >= 0:
                bad.append("-1")
            out += [(world, f"{path}={v}", path) for v in bad]
    return out
