"""Cross-protocol contagion: per-protocol random streams, distress tracking, shocks.

* :class:`StreamedLiquidationEngine` — the liquidation engine with each
  protocol's visiting/offer order drawn from that protocol's own generator
  (``contagion.rng_streams``), so liquidations on one venue do not shift the
  random numbers of another.
* :class:`ContagionTracker` — per protocol, the first step with an account
  below maintenance, the first liquidation and the first bad debt; summarised by
  :func:`contagion_summary` (``summary.json`` key ``contagion`` in worlds with
  more than one protocol or an issued token).
* :func:`sell_shock` — a confined shock: a whale account on one protocol sells
  a given notional at market on each of that protocol's perpetual books. The
  makers quote around the oracle index and marks are index-anchored, so the
  book recovers within the step: it moves prices, not solvency.
* :func:`isolated_crash_overrides` — the reference world of end-to-end
  contagion: a gap crash in an asset only alpha lists gives alpha bad debt,
  which impairs its receipt token and liquidates beta's accounts.
* :func:`exploit_shock` — a confined default: an account on one protocol
  borrows a given amount and leaves the world with it, so the protocol is left
  with the deficit (the shape of an oracle-manipulation exploit or a large
  borrower's default).
* :func:`contagion_matrix` — run a shock at each protocol ``i`` and record the
  loss (bad debt, liquidations, traders' equity) at every ``j``.

Contagion channels (``contagion.*`` switches, DESIGN.md "collateral graph"):
``fire_sales``/``arbitrage`` gate the arbitrageur's cross-venue trades (the only
agent trading on several venues' books); ``token_impairment`` lets the issuer's
bad debt lower its token's price and so collateral values elsewhere
(:mod:`sim.tokens`); ``venue_oracle`` prices tokens off one venue's book;
``universal_margin`` margins owners with sub-accounts on several venues as one
(:mod:`sim.universal`); ``shared_liquidator_capital`` pools each liquidator's
capital across venues (:mod:`agents.liquidator`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sim.liquidation import LiquidationEngine

__all__ = ["ContagionTracker", "StreamedLiquidationEngine", "contagion_matrix",
           "contagion_summary", "isolated_crash_overrides", "run_with_shock", "sell_shock"]


SHOCK_OWNER = 999_999_999
"""Ledger owner id of :func:`sell_shock`'s whale account."""

EXPLOIT_OWNER = 999_999_998
"""Ledger owner id of :func:`exploit_shock`'s account."""


class StreamedLiquidationEngine(LiquidationEngine):
    """Liquidation rounds drawing each protocol's random order from its own stream."""

    def _round_protocol(self, proto: Any, margins: Any) -> bool:
        m = self.model
        prev = m._rng_active
        m._rng_active = m._rng_streams[proto.index]
        try:
            return super()._round_protocol(proto, margins)
        finally:
            m._rng_active = prev


class ContagionTracker:
    """First-distress steps per protocol (``-1``: never).

    An account counts as below maintenance in a step if it is so after the
    step's liquidation rounds or if the rounds liquidated or resolved a
    bankrupt account (which was below maintenance when they started), so a
    spell that the liquidation engine closes within one step is not missed.
    """

    KEYS = ("first_below_maintenance", "first_liquidation", "first_bad_debt")

    def __init__(self, model: Any) -> None:
        self.first = {p.index: dict.fromkeys(self.KEYS, -1) for p in model.protocols}

    def update(self, model: Any, margins: dict[int, Any]) -> None:
        """Record this step as the first of each kind of distress not seen before."""
        t = int(model.steps)
        liq = model.liquidation
        for p in model.protocols:
            f = self.first[p.index]
            stats = liq.step_stats[p.index]
            if f["first_below_maintenance"] < 0 and (
                    margins[p.index][1].below_maintenance.any()
                    or stats["liquidations"] > 0 or stats["insolvency"] > 0):
                f["first_below_maintenance"] = t
            if f["first_liquidation"] < 0 and liq.step_stats[p.index]["liquidations"] > 0:
                f["first_liquidation"] = t
            if f["first_bad_debt"] < 0 and liq.bad_debt[p.index] > 0:
                f["first_bad_debt"] = t


def contagion_summary(model: Any, shocked: int | None = None,
                      measure: str = "first_liquidation") -> dict[str, Any]:
    """Per-protocol distress, cascade reach and time to contagion.

    Args:
        model: A stepped :class:`~sim.model.MarketModel`.
        shocked: Index of the shocked protocol; default the one distressed first
            by ``measure``.
        measure: Which first-distress step defines contagion timing.

    Returns:
        ``{"protocols": {name: {first_*, liquidations, bad_debt}}, "cascade_reach",
        "shocked", "time_to_contagion"}``; ``time_to_contagion`` is the earliest
        ``measure`` step on another protocol minus that of the shocked one
        (``None`` when either never happened).
    """
    tr = model.contagion_tracker
    liq = model.liquidation
    per = {}
    for p in model.protocols:
        entry: dict[str, Any] = dict(tr.first[p.index])
        entry["liquidations"] = float(liq.totals[p.index]["liquidations"])
        entry["bad_debt"] = float(liq.bad_debt[p.index])
        per[p.name] = entry
    steps = {p.index: tr.first[p.index][measure] for p in model.protocols}
    if shocked is None:
        hit = [(s, i) for i, s in steps.items() if s >= 0]
        shocked = min(hit)[1] if hit else None
    ttc = None
    if shocked is not None and steps[shocked] >= 0:
        others = [s for i, s in steps.items() if i != shocked and s >= 0]
        if others:
            ttc = int(min(others) - steps[shocked])
    return {"protocols": per,
            "cascade_reach": int(sum(liq.bad_debt[p.index] > 0 for p in model.protocols)),
            "shocked": None if shocked is None else model.protocols[shocked].name,
            "measure": measure,
            "time_to_contagion": ttc}


def sell_shock(model: Any, protocol: int, notional: float, kinds: str = "perp") -> int:
    """A whale on ``protocol`` sells ``notional`` (quote) at market on each of its books.

    Opens a dedicated, amply funded account on that protocol (so the pre-trade
    check passes) and sends one market sell per perpetual (``kinds="perp"``) or
    per book (``"all"``). Touches only that protocol's books and ledger rows.

    Returns:
        The shock account's ledger row.
    """
    from sim.book import MARKET

    proto = model.protocols[protocol]
    row = model.open_trader(protocol, SHOCK_OWNER, 1e4 * notional, 0.0)
    for inst in proto.instruments:
        if kinds == "perp" and not inst.is_perp:
            continue
        ev = model.view.new_events(1)
        ev["kind"] = MARKET
        ev["side"] = -1
        ev["qty"] = max(1, int(notional / model.marks[inst.index] / inst.lot_size))
        ev["owner"] = row
        model.submit(inst.index, ev)
    return row


def isolated_crash_overrides(crash: float = 0.3, start_step: int = 30, horizon: int = 20,
                             noise: int = 30, leveraged: int = 30, supply: float = 8e5,
                             asset: str = "ETH", shared: str = "BTC") -> list[str]:
    """Hydra overrides of a reference world where a shock confined to alpha reaches beta.

    ``protocols=two_venues`` with a one-step gap crash of ``crash`` in ``asset``
    at ``start_step``, an asset only alpha lists (beta lists ``shared`` only),
    run for ``horizon`` steps after it. Alpha is fragile: ``leveraged``
    traders, all long, target 15–25× (its cross-margin tiers allow it),
    its insurance fund is empty and it has no ADL (``bad_debt=write_off``, a
    lending pool: Aave v3.3 deficits, Maker's Black Thursday debt,
    contagion_and_peers.md §2.3), so the gap becomes recorded bad debt.
    Its receipt token aLP, with a pool of ``supply`` units, is repriced from
    that bad debt (:func:`sim.tokens.receipt_price`), and beta's traders — on
    portfolio margin, unleveraged beyond its ~5× scan-grid cap and untouched
    by the crash — hold 10,000 aLP each. The calibration (ASSUMPTIONS.md,
    "Several protocols and contagion") gives alpha about 0.45–0.49 M USD of
    bad debt, aLP at about 0.4 and 16–21 beta liquidations (seeds 1–3, 42),
    none with ``contagion.token_impairment=false``.

    The contagion switches are left to the caller (``contagion.*``).

    Raises:
        ValueError: A size out of range (one line naming the argument).
    """
    if not 0.0 < crash < 1.0:
        raise ValueError(f"crash must be in (0, 1), got {crash!r}")
    for key, v, lo in (("start_step", start_step, 1), ("horizon", horizon, 1),
                       ("noise", noise, 0), ("leveraged", leveraged, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"{key} must be an integer >= {lo}, got {v!r}")
    if not supply > 0:
        raise ValueError(f"supply must be > 0, got {supply!r}")
    if asset == shared:
        raise ValueError(f"asset and shared must differ, both are {asset!r}")
    return ["protocols=two_venues", "scenario=jump_crash", f"steps={start_step + horizon}",
            f"scenario.params.crash={crash}", f"scenario.params.start_step={start_step}",
            "scenario.params.duration_steps=1", f"scenario.params.assets=[{asset}]",
            f"protocols.1.assets=[{shared}]", f"agents.noise.n={noise}",
            f"agents.leveraged.n={leveraged}", "agents.leveraged.leverage_min=15",
            "agents.leveraged.leverage_max=25", "agents.leveraged.trade_prob=0.5",
            "agents.leveraged.long_share=1.0", "protocols.0.insurance_fund=0",
            "protocols.0.liquidation.bad_debt=write_off", f"protocols.0.issues.supply={supply}"]


def exploit_shock(model: Any, protocol: int, amount: float) -> int:
    """An account on ``protocol`` borrows ``amount`` of the quote asset and leaves with it.

    The account holds nothing else, so its equity is ``-amount``: the next
    margin evaluation finds it below maintenance and the liquidation engine
    resolves it through that protocol's own waterfall (insurance fund, then
    ADL, socialisation or a recorded write-off, as configured). The money
    goes to the ledger's outside world, so value stays conserved. It is the
    end state of an oracle-manipulation exploit such as Mango Markets'
    (October 2022: an account borrowed about 114 M USD against manipulated
    collateral; recalled, not in the reference notes) or of a large borrower's
    default, and touches only that protocol's rows.

    Returns:
        The exploit account's ledger row.

    Raises:
        ValueError: An unknown protocol or a non-positive amount (one line).
    """
    from sim.ledger import HolderKind

    if not 0 <= int(protocol) < len(model.protocols):
        raise ValueError(f"protocol must be in [0, {len(model.protocols) - 1}], got {protocol!r}")
    if not (np.isfinite(amount) and amount > 0):
        raise ValueError(f"amount must be a finite number > 0, got {amount!r}")
    lg = model.ledger
    row = lg.open_account(HolderKind.TRADER, owner=EXPLOIT_OWNER, protocol=int(protocol))
    lg.transfer(row, lg.world_row, 0, float(amount), allow_negative=True)
    model.protocols[int(protocol)].accounts.append(row)
    return row


SHOCKS: dict[str, Callable[[Any, int, float], int]] = {"sell": sell_shock,
                                                       "exploit": exploit_shock}
"""Confined shocks by name: ``sell`` (a market sell of a notional on each perp book of
the protocol) and ``exploit`` (a borrowed amount taken out of the protocol)."""


def run_with_shock(cfg: Any, protocol: int | None, size: float, shock_step: int,
                   kind: str = "sell") -> Any:
    """Build and step a model, applying shock ``kind`` (:data:`SHOCKS`) before ``shock_step``.

    Raises:
        ValueError: An unknown shock kind (one line).
    """
    from sim.model import MarketModel

    if kind not in SHOCKS:
        raise ValueError(f"shock kind must be one of {', '.join(SHOCKS)}, got {kind!r}")
    model = MarketModel(cfg)
    for t in range(int(model.cfg.steps)):
        if protocol is not None and t == shock_step:
            SHOCKS[kind](model, protocol, size)
        model.step()
    return model


def trader_equity(model: Any, exclude: Sequence[int] = ()) -> np.ndarray:
    """Engine equity of each protocol's trader accounts, by index.

    Shock accounts are always excluded, and so are accounts of the owner ids
    in ``exclude`` (e.g. :data:`sim.topology_world.BORROWER_OWNER`).
    """
    owners = model.ledger.owner
    out = np.zeros(len(model.protocols))
    skip = np.array([SHOCK_OWNER, EXPLOIT_OWNER, *exclude], dtype=np.int64)
    for p, (rows, res) in model.margin_state.items():
        keep = ~np.isin(owners[rows], skip)
        out[p] = float(res.equity[keep].sum())
    return out


def contagion_matrix(run_fn: Callable[[int | None], Any],
                     protocols: Sequence[str] | int) -> dict[str, Any]:
    """Loss at protocol ``j`` when protocol ``i`` is shocked, for every ``i``.

    Args:
        run_fn: ``run_fn(i)`` returns a stepped model with protocol ``i`` shocked
            (``run_fn(None)``: the unshocked baseline), e.g.
            ``lambda i: run_with_shock(cfg, i, 5e6, 50)``.
        protocols: Protocol names (or their number).

    Returns:
        ``{"protocols": names, "bad_debt": M, "liquidations": L, "equity_loss": E,
        "baseline": {...}}`` with ``M[i][j]`` the bad debt at ``j`` in excess of
        the baseline run when ``i`` is shocked, ``L`` likewise for liquidation
        counts and ``E`` the fall of ``j``'s traders' equity at the end of the
        run (:func:`trader_equity`; positive = a loss).
    """
    names = [f"p{k}" for k in range(protocols)] if isinstance(protocols, int) else list(protocols)
    n = len(names)

    def losses(model: Any) -> np.ndarray:
        liq = model.liquidation
        return np.array([[liq.bad_debt[k] for k in range(n)],
                         [liq.totals[k]["liquidations"] for k in range(n)],
                         trader_equity(model)[:n]])

    base = losses(run_fn(None))
    out = np.zeros((3, n, n))
    for i in range(n):
        out[:, i] = losses(run_fn(i)) - base
    out[2] *= -1.0  # equity lost, not gained
    return {"protocols": names, "bad_debt": out[0].tolist(), "liquidations": out[1].tolist(),
            "equity_loss": out[2].tolist(),
            "baseline": {"bad_debt": base[0].tolist(), "liquidations": base[1].tolist(),
                         "trader_equity": base[2].tolist()}}
