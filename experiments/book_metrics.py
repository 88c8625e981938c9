"""Per-book capital and loss measures of one finished run of the options world.

Reads a run directory written with ``output.accounts_every > 0``
(``accounts.parquet``, ``liquidations.parquet``, ``option_events.parquet``,
``timeseries.parquet``, ``config.yaml``) and reduces it to one set of numbers
per *book*: the accounts of one option-book population
(``OptionBookPopulation:<type>``, :data:`agents.config.BOOK_TYPES`) or the
dealers (``OptionMarketMaker:dealer``, option market makers that only sell).

Capital a book ties up is its initial requirement plus the value the
regime's collateral haircuts withhold from its positive balances
(``initial + haircut_held``; the capital-efficiency notion of
``sim.output.metrics``: notional per unit of IM plus haircuts). Risk it takes
is ``risk``: the loss in the worst cell of one reference stress grid, the same
for every regime (Deribit's standard grid, ±16 % BTC / ±18 % ETH with their
volatility shocks, no add-ons, no haircuts; :mod:`sim.output.accounts`). So

* ``req_per_risk`` — capital requirement per unit of risk taken: the mean
  over post-warm-up snapshots of Σ(initial + haircut_held) / Σ risk over the
  book's accounts with non-zero risk (SPAN's and Deribit's portfolio-margin
  premise: a requirement should follow the stress loss; ``margin_methods.md``
  §1, §3.1); ``im_per_risk`` the same with the initial requirement alone;
* ``req_per_notional`` — Σ(initial + haircut_held) / Σ gross notional, gross
  notional as ``accounts.parquet`` defines it (perpetual notional at the mark
  plus option underlying notional at the index; spot balances are not in it,
  so a basis book's long spot leg is not counted);
* ``liquidations``, ``liquidation_notional``, ``accounts_liquidated`` — the
  book's liquidation events over the whole run (positions taken by a
  liquidator or the backstop, options closed in the book or taken over),
  counted and valued as the run's ``summary.json`` does: perpetuals at the
  mark, options at underlying notional (``|size| x index``);
* ``equity_lost`` — Σ over the book's accounts of max(0, equity at the first
  post-warm-up snapshot − equity at the last snapshot), with *mark-to-market*
  equity: the account's ``value`` (every balance at the index, perpetual P&L
  at the mark, options at their marks; no haircuts, the same for every
  regime), not the regime's margin equity (static isolated margin leaves free
  collateral out of it) and not realised losses; ``equity_lost_frac`` divides
  it by the book's value at the first post-warm-up snapshot.

Warm-up: traders enter over ``agents.option_books.enter_steps`` steps; only
snapshots with ``step > enter_steps + settle_steps`` count. An account's risk
counts as zero below ``risk_floor`` times its gross notional plus |value|
(round-off of a hedged book: a BTC basis book's scan loss is ~1e-13 USD); the
floor is regime-independent, as ``risk`` is.
A snapshot with no account of the book taking risk gives no ratio; a book
without any gives NaN, never zero.

Neighbours: :mod:`experiments.capital_efficiency` (the study),
:mod:`sim.output.accounts` (the snapshots), ``sim.venue.liquidation`` (event
kinds).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["BOOKS", "BOOK_METRICS", "DEALER", "book_label", "book_metrics",
           "liquidation_notional", "run_book_metrics"]

DEALER = "dealer"
"""Book name of the dealers (``OptionMarketMaker:dealer``)."""

BOOKS = ("directional", "basis", "covered_call", "cash_secured_put", "protective_put",
         "calendar_spread", "strike_spread", DEALER)
"""Books the study can report: the option-book types, then the dealers."""

BOOK_METRICS = ("req_per_risk", "im_per_risk", "req_per_notional", "liquidations",
                "accounts_liquidated", "liquidation_notional", "equity_lost",
                "equity_lost_frac")
"""Per-book measures (module docstring), in table order."""

PERP_KINDS = ("liquidator", "backstop")
"""Event kinds that move a perpetual position (``instrument >= 0``) off an account."""

OPTION_KINDS = ("option_close", "option_takeover")
"""Event kinds that close an option position of a liquidated account."""


def book_label(book: str) -> str:
    """The ``agent`` label of a book's accounts in ``accounts.parquet``.

    Args:
        book: One of :data:`BOOKS`.

    Returns:
        ``OptionMarketMaker:dealer`` for the dealers, else ``OptionBookPopulation:<book>``.
    """
    return "OptionMarketMaker:dealer" if book == DEALER else f"OptionBookPopulation:{book}"


def liquidation_notional(events: pd.DataFrame, option_events: pd.DataFrame | None,
                         timeseries: pd.DataFrame | None) -> pd.DataFrame:
    """Liquidation events that take a position, each with its notional in USD.

    Perpetual positions moved by a liquidator or the backstop are valued at
    the mark (the event's ``notional``, ``|size| x mark``); option positions
    closed in the book or taken over at underlying notional, ``|size|`` times
    the index of the option's underlying at that step (the option's asset from
    its listing in ``option_events``, the index from ``timeseries``) — the
    valuation of ``summary.json``'s ``liquidation.<protocol>.notional``.
    Balance and margin seizures, insurance, ADL and bad-debt rows are not
    liquidations of a position and are left out.

    Args:
        events: ``liquidations.parquet``.
        option_events: ``option_events.parquet`` (listing rows give the slots' assets);
            may be None when no event closes an option.
        timeseries: ``timeseries.parquet`` (``step`` and ``<ASSET>.index`` columns); may be
            None when no event closes an option.

    Returns:
        Columns ``step``, ``account``, ``kind``, ``notional``, one row per position event.

    Raises:
        ValueError: An option event whose slot was never listed or whose index is missing.
    """
    perp = events["kind"].isin(PERP_KINDS) & (events["instrument"] >= 0)
    opt = events["kind"].isin(OPTION_KINDS)
    out = events.loc[perp | opt, ["step", "account", "kind", "instrument", "size",
                                  "notional"]].copy()
    rows = out["kind"].isin(OPTION_KINDS)
    if rows.any():
        if option_events is None or timeseries is None:
            raise ValueError("option liquidations need the option events and the index series")
        listed = option_events.loc[option_events["kind"] == "list"]
        asset = (listed.drop_duplicates("instrument").set_index("instrument")["contract"]
                 .astype(str).str.split(":").str[-1].str.split("-").str[0])
        index = timeseries.set_index("step")
        values = []
        for step, inst, size in out.loc[rows, ["step", "instrument", "size"]].itertuples(
                index=False):
            name = asset.get(inst)
            col = f"{name}.index"
            if name is None or col not in index.columns or step not in index.index:
                raise ValueError(f"option liquidation at step {step} of instrument {inst}: "
                                 f"no listing or index to value it")
            values.append(abs(float(size)) * float(index.at[step, col]))
        out.loc[rows, "notional"] = values
    return out[["step", "account", "kind", "notional"]].reset_index(drop=True)


def _ratio(num: pd.Series, den: pd.Series) -> float:
    """Mean over snapshots of ``num / den``, snapshots with ``den <= 0`` left out (NaN if none)."""
    ok = den > 0.0
    return float((num[ok] / den[ok]).mean()) if ok.any() else np.nan


def book_metrics(accounts: pd.DataFrame, liquidations: pd.DataFrame, label: str, warmup: int,
                 risk_floor: float = 1e-9) -> dict[str, float]:
    """The measures of one book (module docstring) from a run's tables.

    Args:
        accounts: ``accounts.parquet``.
        liquidations: Position liquidations with USD notional (:func:`liquidation_notional`).
        label: The book's ``agent`` label (:func:`book_label`).
        warmup: Snapshots with ``step > warmup`` count.
        risk_floor: Risk below ``risk_floor x (gross notional + |value|)`` counts as zero.

    Returns:
        ``{metric: value}`` for every name in :data:`BOOK_METRICS` plus ``accounts``
        (the book's accounts); NaN where the book has nothing to measure.
    """
    mine = accounts.loc[accounts["agent"] == label]
    ids = mine["account"].unique()
    post = mine.loc[mine["step"] > warmup]
    gross = post["perp_notional"] + post["option_notional"]
    risky = post.loc[(post["risk"] > risk_floor * (gross + post["value"].abs()))
                     & np.isfinite(post["risk"])]
    req = risky["initial"] + risky["haircut_held"]
    by = risky.assign(req=req, gross=gross.loc[risky.index]).groupby("step")
    sums = by[["req", "initial", "risk", "gross"]].sum()
    out: dict[str, float] = {
        "req_per_risk": _ratio(sums["req"], sums["risk"]),
        "im_per_risk": _ratio(sums["initial"], sums["risk"]),
        "req_per_notional": _ratio(sums["req"], sums["gross"]),
    }
    liq = liquidations.loc[liquidations["account"].isin(ids)]
    out["liquidations"] = float(len(liq))
    out["accounts_liquidated"] = float(liq["account"].nunique())
    out["liquidation_notional"] = float(liq["notional"].sum())
    if len(post):
        first = post.loc[post["step"] == post["step"].min()].set_index("account")["value"]
        last = post.loc[post["step"] == post["step"].max()].set_index("account")["value"]
        both = first.index.intersection(last.index)
        lost = float(np.maximum(first[both] - last[both], 0.0).sum())
        start = float(first[both].sum())
        out["equity_lost"] = lost
        out["equity_lost_frac"] = lost / start if start > 0.0 else np.nan
    else:
        out["equity_lost"] = out["equity_lost_frac"] = np.nan
    out["accounts"] = float(len(ids))
    return out


def run_book_metrics(run_dir: str | Path, books: Sequence[str] = BOOKS, settle_steps: int = 60,
                     risk_floor: float = 1e-9) -> dict[str, Any]:
    """Every book's measures of one run, flat: ``book.<book>.<metric>``.

    The warm-up is read from the run's own ``config.yaml``
    (``agents.option_books.enter_steps``) plus ``settle_steps``.

    Args:
        run_dir: A finished run's directory.
        books: Books to measure (:data:`BOOKS`).
        settle_steps: Steps after the last entry before snapshots count.
        risk_floor: Relative floor below which an account's risk is zero.

    Returns:
        ``{"book.<book>.<metric>": value}`` and ``warmup_step``.

    Raises:
        ValueError: The run wrote no account snapshots (``output.accounts_every = 0``)
            or has none after the warm-up, or no ``value`` column, or an option
            liquidation cannot be valued.
        OSError: A file is missing.
    """
    from omegaconf import OmegaConf

    run = Path(run_dir)
    cfg = OmegaConf.load(run / "config.yaml")
    warmup = int(cfg.agents.option_books.enter_steps) + int(settle_steps)
    path = run / "accounts.parquet"
    if not path.exists():
        raise ValueError(f"{run.name}: no accounts.parquet (output.accounts_every = "
                         f"{cfg.output.accounts_every})")
    accounts = pd.read_parquet(path)
    if "value" not in accounts.columns:
        raise ValueError(f"{run.name}: accounts.parquet has no value column (older code)")
    if not (accounts["step"] > warmup).any():
        raise ValueError(f"{run.name}: no account snapshot after the warm-up (step > {warmup})")
    events = pd.read_parquet(run / "liquidations.parquet")
    option_events = ts = None
    if events["kind"].isin(OPTION_KINDS).any():  # only then are the index and listings needed
        import pyarrow.parquet as pq

        names = pq.read_schema(run / "timeseries.parquet").names
        ts = pd.read_parquet(run / "timeseries.parquet",
                             columns=["step", *[c for c in names if c.endswith(".index")]])
        option_events = pd.read_parquet(run / "option_events.parquet")
    liq = liquidation_notional(events, option_events, ts)
    out: dict[str, Any] = {"warmup_step": warmup}
    for book in books:
        for k, v in book_metrics(accounts, liq, book_label(book), warmup, risk_floor).items():
            out[f"book.{book}.{k}"] = v
    return out
