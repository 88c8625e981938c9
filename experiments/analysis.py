"""Post-processing shared by the studies: headline metrics and tables.

Everything here reads the table :func:`experiments.sweep.collect` built from
finished runs; nothing re-runs a model.

* :func:`headline_metrics` reduces a run's flattened summary to the study
  metrics (summed or maxed over protocols / instruments).
* :func:`write_table` writes a DataFrame as CSV, Markdown and LaTeX without
  optional dependencies (``tabulate`` / ``jinja2`` are not required).

Intervals and statistics (paired-*t*, *t*, Wilson, quantiles, Gauntlet VaR /
LaR) are :mod:`experiments.stats`.

Neighbours: ``experiments.sweep`` (runs and ``collect``), ``experiments.stats``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["METRIC_LABELS", "headline_metrics", "open_interest_notional", "to_latex",
           "to_markdown", "write_table"]

#: Study metric → (label, unit) for tables and axes.
METRIC_LABELS: dict[str, tuple[str, str]] = {
    "liquidations": ("liquidations", "count"),
    "liquidation_notional": ("liquidated notional", "USD"),
    "insolvency": ("insolvent debt", "USD"),
    "bad_debt": ("bad debt written off", "USD"),
    "amplification": ("amplification (max over instruments)", "ratio"),
    "capital_efficiency": ("capital efficiency", "notional / IM"),
    "margin_peak_to_trough": ("margin peak-to-trough", "ratio"),
    "margin_max_60_step_increase": ("margin max 60-step increase", "ratio"),
    "open_interest": ("open interest", "USD"),
}


def _cols(df: pd.DataFrame, prefix: str, suffix: str) -> list[str]:
    return [c for c in df.columns if c.startswith(prefix) and c.endswith(suffix)
            and c.count(".") == prefix.count(".") + suffix.count(".")]


def _reduce(df: pd.DataFrame, prefix: str, suffix: str, how: str) -> pd.Series:
    cols = _cols(df, prefix, suffix)
    if not cols:
        return pd.Series(np.nan, index=df.index)
    block = df[cols].apply(pd.to_numeric, errors="coerce")
    return getattr(block, how)(axis=1, skipna=True, **({"min_count": 1} if how == "sum" else {}))


def open_interest_notional(df: pd.DataFrame) -> pd.Series:
    """Final open interest in quote currency, summed over perpetuals.

    ``instruments.<venue:BASE-PERP>.final_open_interest`` (base units, one side)
    times the base asset's final fundamental price ``assets.<BASE>.fundamental_end``.
    The fundamental stands in for the mark because a run's last book mid can be
    missing (one-sided book); marks track the fundamental to a few bps.
    """
    total = pd.Series(0.0, index=df.index)
    found = False
    for c in df.columns:
        if c.startswith("instruments.") and c.endswith(".final_open_interest"):
            inst = c[len("instruments."):-len(".final_open_interest")]
            base = inst.split(":")[-1].split("-")[0]
            price = f"assets.{base}.fundamental_end"
            if price in df.columns:
                total = total + pd.to_numeric(df[c], errors="coerce").fillna(0.0) * df[price]
                found = True
    return total if found else pd.Series(np.nan, index=df.index)


def headline_metrics(df: pd.DataFrame) -> pd.DataFrame:
    """Add the study metrics to a :func:`experiments.sweep.collect` table.

    Columns added (sums over protocols unless stated):

    * ``liquidations`` — liquidation count (``liquidation.*.liquidations``);
    * ``liquidation_notional`` — liquidated notional, USD;
    * ``insolvency`` — debt beyond liquidated accounts' collateral, USD
      (Gauntlet's "insolvent debt", before the insurance fund pays);
    * ``bad_debt`` — written off after insurance (``bad_debt_total``), USD;
    * ``amplification`` — max over instruments of simulated / fundamental
      drawdown;
    * ``capital_efficiency`` — mean over protocols of mean gross notional (perps
      and non-quote balances) / mean capital set aside (IM plus haircuts);
    * ``margin_peak_to_trough``, ``margin_max_60_step_increase`` — max over
      protocols (EMIR Art. 28 procyclicality measures);
    * ``open_interest`` — :func:`open_interest_notional`.

    Args:
        df: The collected table.

    Returns:
        A copy with the columns added.
    """
    out = df.copy()
    out["liquidations"] = _reduce(df, "liquidation.", ".liquidations", "sum")
    out["liquidation_notional"] = _reduce(df, "liquidation.", ".notional", "sum")
    out["insolvency"] = _reduce(df, "liquidation.", ".insolvency", "sum")
    out["bad_debt"] = _reduce(df, "liquidation.", ".bad_debt_total", "sum")
    amp = [c for c in df.columns if c.startswith("instruments.") and c.endswith(".amplification")]
    out["amplification"] = (df[amp].apply(pd.to_numeric, errors="coerce").max(axis=1)
                            if amp else np.nan)
    out["capital_efficiency"] = _reduce(df, "protocols.", ".capital_efficiency", "mean")
    out["margin_peak_to_trough"] = _reduce(df, "protocols.", ".margin_peak_to_trough", "max")
    out["margin_max_60_step_increase"] = _reduce(df, "protocols.",
                                                 ".margin_max_60_step_increase", "max")
    out["open_interest"] = open_interest_notional(df)
    return out


def _fmt(v: object, digits: int = 4) -> str:
    if isinstance(v, float | np.floating):
        if not np.isfinite(v):
            return "–"
        return f"{v:,.{digits}g}" if abs(v) < 1e4 else f"{v:,.0f}"
    return str(v)


def to_markdown(df: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub-flavoured Markdown table (no ``tabulate`` needed)."""
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(df[c]) else ":---"
                          for c in df.columns) + "|"
    body = ["| " + " | ".join(_fmt(v, digits).replace("|", "\\|") for v in row) + " |"
            for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body]) + "\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
        "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}",
        "–": "--"}


def _tex(s: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in s)


def to_latex(df: pd.DataFrame, caption: str = "", label: str = "", digits: int = 4) -> str:
    r"""A booktabs LaTeX table (no ``jinja2`` needed; needs ``\usepackage{booktabs}``)."""
    align = "".join("r" if pd.api.types.is_numeric_dtype(df[c]) else "l" for c in df.columns)
    lines = [r"\begin{table}[htbp]", r"\centering"]
    if caption:
        lines.append(rf"\caption{{{_tex(caption)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines += [rf"\begin{{tabular}}{{{align}}}", r"\toprule",
              " & ".join(_tex(str(c)) for c in df.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(_tex(_fmt(v, digits)) for v in row) + r" \\"
              for row in df.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_table(df: pd.DataFrame, out_dir: str | Path, name: str, *, caption: str = "",
                group: str | None = None) -> dict[str, Path]:
    """Write ``name.csv`` (full precision), ``name.md`` and ``name.tex``.

    Args:
        df: The table.
        out_dir: Directory (created).
        name: File stem.
        caption: Title of the Markdown / LaTeX output.
        group: Optional column: one Markdown section and one LaTeX table per
            value (the column itself is dropped from those tables).

    Returns:
        ``{"csv": path, "md": path, "tex": path}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"csv": out / f"{name}.csv", "md": out / f"{name}.md", "tex": out / f"{name}.tex"}
    df.to_csv(files["csv"], index=False)
    parts = [(None, df)] if group is None else [
        (g, sub.drop(columns=group)) for g, sub in df.groupby(group, sort=False)]
    md = [f"# {caption}\n"] if caption else []
    tex = []
    for g, sub in parts:
        title = caption if g is None else f"{caption} — {group} {g}".strip(" —")
        if g is not None:
            md.append(f"## {group}: {g}\n")
        md.append(to_markdown(sub))
        tex.append(to_latex(sub, caption=title,
                            label=f"tab:{name}" + ("" if g is None else f":{g}")))
    files["md"].write_text("\n".join(md))
    files["tex"].write_text("\n".join(tex))
    return files
