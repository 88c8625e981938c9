r"""Universal (cross-protocol) margin: one owner's sub-accounts on several venues margined as one.

Switched on by ``contagion.universal_margin`` (DESIGN.md, "Protocols and the
collateral graph": cross-protocol (universal) margin accounts as a contagion
channel). Siloed mode (the switch off) never builds this object.

**Who.** An *owner* is a ledger ``owner`` id; its sub-accounts are its
``HolderKind.TRADER`` rows. Owners whose rows span at least two protocols are
margined universally: the arbitrageur (one account per protocol) and, with
``agents.leveraged.all_venues``, every leveraged trader. Liquidators are
excluded: their cross-venue capital is the separate
``contagion.shared_liquidator_capital`` channel. Groups are rebuilt whenever the
ledger gains rows.

**Universal result of an owner** with sub-accounts ``k = 1..K`` (protocol
``p_k``, siloed results ``E_k, IM_k, MM_k`` from ``p_k``'s own engine):

1. *Netted requirement.* The run's top-level ``margin`` engine (the regime of
   the run, or the preset ``contagion.universal_regime`` names) evaluates one
   synthetic account: the owner's balances summed over
   its sub-accounts and its perpetual positions summed per underlying into one
   *canonical* column (the first protocol's perpetual on that underlying,
   valued at that instrument's mark), entry prices at the marks. Its IM and MM
   are ``IM_u, MM_u``: a BTC long on alpha and a BTC short on beta offset,
   as in cross-margin / portfolio-margin netting of one account
   (margin_methods.md §3.3 Binance cross margin; §1 SPAN nets all positions on
   one underlying before charging).
2. *Collateral allocation.* ``U_k = E_k − Σ_a max(b_{k,a}, 0) p_a (1 − h_{a,k})``
   is sub-account ``k``'s equity without its positive balances (unrealised
   P&L plus liabilities). The owner's positive balances ``C_a = Σ_k max(b_{k,a}, 0)``
   (wherever they sit), plus any surplus ``Σ_k max(U_k − R_k, 0)`` in quote, are
   placed on the requirement shares ``R_k = IM_u · IM_k / Σ_j IM_j`` (equal
   shares when no sub-account has a requirement) by
   :func:`margin.risk.optimisation.allocate_keeping_best`, with protocol ``p_k``'s
   haircut ``h_{a,k}`` on asset ``a``: the least total shortfall and, among
   the placements that reach it, the one that leaves the most value spare. The
   owner's equity is ``E_u = Σ_k min(U_k, R_k) + Σ_k credited_k +
   Σ_a left_a p_a (1 − min_k h_{a,k})`` (collateral the requirements did not
   need counts where its haircut is smallest). With one asset whose haircut
   differs between the owner's protocols (``two_venues``: the receipt token
   aLP) the placement is in closed form
   (:func:`margin.risk.optimisation.allocate_keeping_best`: that asset first where
   it is worth most, cash where it is worth least, then the rest of it);
   with several, a two-phase LP (``scipy.optimize.linprog``, HiGHS). A
   one-phase LP is not enough: its optimum is often not unique, and its
   vertex (the token placed where cash would do) would change ``E_u``. When every asset the owner
   holds has the same haircut on all its protocols, placement cannot change
   values and the LP is skipped: ``E_u = Σ_k min(U_k, R_k) + Σ_a C_a p_a (1 − h_a)``
   (with the surplus in ``C``), shortfall ``max(0, Σ_k d_k − Σ_a C_a p_a (1 − h_a))``
   — the LP's optimum in closed form (Dantzig's greedy, any filling order).
3. *Protocol level.* Every sub-account reports the owner's figures scaled by
   one weight ``w_k ∝ max(E_k, 0) + MM_k`` (its stand-alone footprint; equal
   weights when all are zero): equity ``w_k E_u``, IM ``w_k IM_u``, MM
   ``w_k MM_u``. Each protocol's liquidation trigger (equity < MM), backstop
   threshold (equity < 2/3 MM), close-out sizing and agents' margin reads
   therefore see the *owner's* margin ratio ``E_u / MM_u``: a sub-account is
   below maintenance exactly when the owner is, so a loss on one venue
   liquidates the owner's positions on the others.
4. *Pre-trade.* An order of a universal owner is checked by the top-level
   engine's ``pretrade`` on the synthetic account (quote balance set so that
   the engine's equity is ``E_u``), the order's perpetual mapped to its
   canonical column: it is accepted when the owner's netted post-trade IM is
   covered (or it reduces the netted exposure). Execution-price slippage is
   measured against the canonical instrument's mark.

5. *Default.* With ``contagion.universal_cover`` (on by default) a sub-account
   that goes bankrupt first draws on the owner's other sub-accounts (their
   balances, up to their value: :meth:`sim.venue.liquidation.LiquidationEngine._universal_cover`);
   what is left goes through its own protocol's waterfall.

The netted requirement treats one underlying's perpetuals on different venues
as one position; their basis risk comes back as a spread charge on every
cross-venue long/short pair (:meth:`UniversalMargin.spread_charge`, SPAN's
intra-commodity charge, ``contagion.universal_spread_charge``).

Simplification (ASSUMPTIONS.md): while the owner is solvent, balances are not
moved between sub-accounts — the allocation is a margin computation.
"""

from __future__ import annotations

from dataclasses import replace
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from margin.engine import PERP, MarginInputs, MarginResult
from margin.risk.optimisation import allocate_keeping_best
from sim.ledger import HolderKind


__all__ = ["MULTI_VENUE_OWNER", "OwnerMargin", "UniversalHost", "UniversalMargin",
           "canonical_columns"]

MULTI_VENUE_OWNER = 1_000_000_000
"""Owner id of leveraged trader ``i`` with a sub-account on every protocol: this plus ``i``."""


def canonical_columns(kind: np.ndarray, underlying: np.ndarray) -> np.ndarray:
    """Column of each instrument in the netted account: a perp maps to its underlying's first perp.

    Args:
        kind: int64[n_instruments] instrument kinds.
        underlying: int64[n_instruments] asset index of each instrument's base.

    Returns:
        int64[n_instruments]; non-perpetuals map to themselves.
    """
    out = np.arange(len(kind), dtype=np.int64)
    first: dict[int, int] = {}
    for j in range(len(kind)):
        if kind[j] == PERP:
            out[j] = first.setdefault(int(underlying[j]), j)
    return out


class OwnerMargin:
    """The universal result of one owner (see the module docstring, steps 1–3).

    Attributes:
        rows: int64[K] the owner's sub-account rows.
        equity, initial, maintenance: ``E_u``, ``IM_u``, ``MM_u``.
        weights: float64[K] reporting weights ``w_k`` (sum 1).
        shortfall: Requirement the allocation left uncovered (``Σ_k`` of it).
        method: ``"closed-form"`` (one asset's haircut differs between the
            protocols), ``"linprog-highs"`` (several), ``"uniform"`` (equal
            haircuts: closed form) or ``"none"`` (no deficit to allocate).
        synthetic: The netted one-row :class:`MarginInputs` (quote set so that
            the top-level engine's equity is ``E_u``).
    """

    def __init__(self, rows: np.ndarray, equity: float, initial: float, maintenance: float,
                 weights: np.ndarray, shortfall: float, method: str,
                 synthetic: MarginInputs) -> None:
        self.rows = rows
        self.equity = equity
        self.initial = initial
        self.maintenance = maintenance
        self.weights = weights
        self.shortfall = shortfall
        self.method = method
        self.synthetic = synthetic


class UniversalHost(Protocol):
    """What universal margin reads and calls of the world; nothing else.

    The model (:class:`sim.model.MarketModel`) provides it;
    ``tests/sim/test_phases.py`` holds :class:`UniversalMargin` to this list.
    """

    ledger: Any
    """The array ledger (:class:`sim.ledger.Ledger`)."""
    asset_prices: np.ndarray
    """Index price per asset (quote first)."""
    marks: np.ndarray
    """Mark price per instrument."""
    cfg: Any
    """The run config (the contagion switches)."""
    haircuts: np.ndarray
    """Haircut per asset of the run's ``margin``."""
    protocol_haircuts: Mapping[int, np.ndarray]
    """Haircuts of protocols with their own ``margin``."""
    protocols: Sequence[Any]
    """The protocols (:class:`sim.venue.protocol.Protocol`)."""
    specs: Any
    """Instrument kinds and underlyings (:class:`margin.engine.InstrumentSpecs`)."""
    liquidators: Sequence[Any]
    """Liquidator agents (their rows are not netted)."""

    def protocol_inputs(self, p: int) -> Any:
        """Margin inputs of protocol ``p`` (its haircuts and book depth)."""

    def shared_margin_inputs(self) -> Any:
        """Margin inputs of every ledger row."""


class UniversalMargin:
    """Universal cross-protocol margin over the world's accounts.

    Args:
        model: The world (a :class:`UniversalHost`; the model in a run).
        engine: The universal engine: the run's top-level ``margin`` regime.
    """

    def __init__(self, model: UniversalHost, engine: Any) -> None:
        self.model = model
        self.engine = engine
        self.column = canonical_columns(model.specs.kind, model.specs.underlying)
        self._key: tuple[int, int] | None = None
        self._groups: list[np.ndarray] = []
        self._group_of: dict[int, int] = {}

    # ---------------------------------------------------------- groups
    def groups(self) -> list[np.ndarray]:
        """Rows of each universal owner (owners with trader rows on >= 2 protocols), by owner id."""
        m = self.model
        lg = m.ledger
        liqs = getattr(m, "liquidators", ())
        key = (lg.n_accounts, len(liqs))
        if key != self._key:
            excluded = {int(a.unique_id) for a in liqs}
            trader = np.flatnonzero(lg.kind == int(HolderKind.TRADER))
            by_owner: dict[int, list[int]] = {}
            for r in trader.tolist():
                o = int(lg.owner[r])
                if o not in excluded:
                    by_owner.setdefault(o, []).append(r)
            self._groups = [np.asarray(rows, np.int64) for _o, rows in sorted(by_owner.items())
                            if len({int(lg.protocol[r]) for r in rows}) >= 2]
            self._group_of = {int(r): g for g, rows in enumerate(self._groups) for r in rows}
            self._key = key
        return self._groups

    def siblings(self, row: int) -> np.ndarray:
        """The other sub-accounts of ``row``'s universal owner (empty if it has none)."""
        self.groups()
        g = self._group_of.get(int(row))
        if g is None:
            return np.zeros(0, np.int64)
        rows = self._groups[g]
        return rows[rows != int(row)]

    def is_member(self, rows: np.ndarray) -> np.ndarray:
        """Bool mask: which ``rows`` belong to a universal owner."""
        self.groups()
        return np.fromiter((int(r) in self._group_of for r in np.asarray(rows).tolist()),
                           np.bool_, len(rows))

    # ------------------------------------------------------ evaluation
    def _haircuts(self, p: int) -> np.ndarray:
        m = self.model
        return m.protocol_haircuts.get(p, m.haircuts)

    def _siloed(self, rows: np.ndarray) -> np.ndarray:
        """float64[3, K]: each sub-account's equity, IM, MM from its own protocol's engine."""
        m = self.model
        out = np.empty((3, len(rows)))
        for k, r in enumerate(rows.tolist()):
            p = int(m.ledger.protocol[r])
            res = m.protocols[p].engine.evaluate(m.protocol_inputs(p).subset(np.array([r])))
            out[:, k] = res.equity[0], res.initial[0], res.maintenance[0]
        return out

    def owner(self, rows: np.ndarray, siloed: np.ndarray | None = None) -> OwnerMargin:
        """The universal result of the owner of ``rows`` (module docstring, steps 1–3).

        Args:
            rows: The owner's sub-account rows.
            siloed: Optional float64[3, K] stand-alone (equity, IM, MM) of the
                rows, when already evaluated; computed otherwise.
        """
        m = self.model
        lg = m.ledger
        base = m.shared_margin_inputs()
        sil = self._siloed(rows) if siloed is None else siloed
        prices = np.asarray(m.asset_prices, np.float64)
        coll = lg.collateral[rows]
        # 1. netted requirement on one synthetic account, entry at the marks (no uPnL)
        net = np.zeros(lg.n_instruments)
        np.add.at(net, self.column, lg.position[rows].sum(axis=0))
        pooled = coll.sum(axis=0)
        pooled[0] = 0.0
        marks = np.asarray(base.marks, np.float64)
        synth = replace(base, collateral=pooled[None, :].copy(), positions=net[None, :],
                        entry_prices=marks[None, :].copy(), position_margin=None)
        req = self.engine.evaluate(synth)
        spread = self.spread_charge(rows)
        im_u = float(req.initial[0]) + spread
        mm_u = float(req.maintenance[0]) + spread
        # 2. allocation of the owner's positive balances to the requirement shares
        h = np.stack([self._haircuts(int(lg.protocol[r])) for r in rows.tolist()], axis=1)
        positive = np.maximum(coll, 0.0)
        own_value = (positive * prices[None, :] * (1.0 - h.T)).sum(axis=1)
        u = sil[0] - own_value
        im_k = np.maximum(sil[1], 0.0)
        share = im_k / im_k.sum() if im_k.sum() > 0.0 else np.full(len(rows), 1.0 / len(rows))
        r_k = im_u * share
        budget = positive.sum(axis=0)
        budget[0] += float(np.maximum(u - r_k, 0.0).sum()) / prices[0]
        kept = np.minimum(u, r_k)
        held = budget > 0.0
        uniform = bool((h[held] == h[held][:, :1]).all())
        if uniform:  # placement cannot change values: the LP optimum in closed form
            value = float((budget * prices * (1.0 - h[:, 0])).sum())
            need = float(np.maximum(r_k - u, 0.0).sum())
            e_u = float(kept.sum()) + value
            shortfall, method = max(need - value, 0.0), "uniform"
        elif np.any(r_k - u > 0.0):
            alloc = allocate_keeping_best(budget, r_k, u, prices=prices, haircuts=h)
            credited, left = alloc.credited, np.asarray(alloc.unallocated)
            shortfall, method = alloc.total_shortfall_after, alloc.method
        else:
            credited, left = np.zeros(len(rows)), budget
            shortfall, method = float(np.maximum(r_k - u, 0.0).sum()), "none"
        if not uniform:
            best = 1.0 - h.min(axis=1)
            e_u = float(kept.sum() + credited.sum() + (left * prices * best).sum())
        # 3. reporting weights: the sub-accounts' stand-alone footprint
        foot = np.maximum(sil[0], 0.0) + np.maximum(sil[2], 0.0)
        w = foot / foot.sum() if foot.sum() > 0.0 else np.full(len(rows), 1.0 / len(rows))
        # the synthetic account's quote makes the engine's own equity E_u less the spread
        # charge, so its pre-trade check asks for IM + charge (pre-trade)
        eq0 = float(req.equity[0])
        target = e_u - spread - eq0
        hq = float(synth.haircuts[0])
        synth.collateral[0, 0] = target / (1.0 - hq) if target > 0.0 else target
        return OwnerMargin(rows, e_u, im_u, mm_u, w, shortfall, method, synth)

    def spread_charge(self, rows: np.ndarray) -> float:
        """Cross-venue spread charge of an owner: the basis risk its netting removes.

        Perpetuals on one underlying but on different venues are netted as if
        their marks moved together; as SPAN's intra-commodity (calendar)
        spread charge adds the basis risk back (margin_methods.md §1.4), each
        spread — one unit long on one venue against one unit short on another,
        ``n = min(Σ longs, Σ shorts)`` per underlying — is charged
        ``contagion.universal_spread_charge`` of its notional at the
        canonical mark (NSE's index rule: 1.75 % of the contract value). The
        charge is added to the owner's IM and MM.
        """
        rate = float(self.model.cfg.contagion.universal_spread_charge)
        if rate <= 0.0:
            return 0.0
        m = self.model
        pos = m.ledger.position[rows] * m.specs.contract_size[None, :]
        longs = np.zeros(len(self.column))
        shorts = np.zeros(len(self.column))
        np.add.at(longs, self.column, np.maximum(pos, 0.0).sum(axis=0))
        np.add.at(shorts, self.column, np.maximum(-pos, 0.0).sum(axis=0))
        spreads = np.minimum(longs, shorts)
        return rate * float((spreads * np.asarray(m.marks, np.float64)).sum())

    def apply(self, margins: dict[int, tuple[np.ndarray, MarginResult]]
              ) -> dict[int, tuple[np.ndarray, MarginResult]]:
        """Replace universal owners' rows in each protocol's result by their scaled owner figures.

        Args:
            margins: ``{protocol: (rows, MarginResult)}`` from the protocols' engines.

        Returns:
            The same mapping with new result arrays (inputs untouched); equal
            to ``margins`` when there is no universal owner.
        """
        groups = self.groups()
        if not groups:
            return margins
        where: dict[int, tuple[int, int]] = {}
        for p, (prow, _res) in margins.items():
            for i, r in enumerate(prow.tolist()):
                where[r] = (p, i)
        out = {p: (prow, MarginResult(res.equity.copy(), res.initial.copy(),
                                      res.maintenance.copy(), dict(res.extra)))
               for p, (prow, res) in margins.items()}
        for rows in groups:
            sil = np.empty((3, len(rows)))
            known = True
            for k, r in enumerate(rows.tolist()):
                if r not in where:
                    known = False
                    break
                p, i = where[r]
                res = margins[p][1]
                sil[:, k] = res.equity[i], res.initial[i], res.maintenance[i]
            om = self.owner(rows, sil if known else None)
            for k, r in enumerate(rows.tolist()):
                if r not in where:
                    continue
                p, i = where[r]
                res = out[p][1]
                res.equity[i] = om.weights[k] * om.equity
                res.initial[i] = om.weights[k] * om.initial
                res.maintenance[i] = om.weights[k] * om.maintenance
        return out

    # ------------------------------------------------------- pre-trade
    def pretrade(self, j: int, rows: np.ndarray, delta: np.ndarray, price: np.ndarray,
                 fee_rate: float) -> np.ndarray:
        """Universal pre-trade check of orders on instrument ``j`` by universal owners' rows.

        Args:
            j: Instrument of the orders.
            rows: int64[n] ordering sub-account rows (all universal members).
            delta: float64[n] signed base quantities.
            price: float64[n] expected execution prices.
            fee_rate: The venue's taker fee rate.

        Returns:
            bool[n], checked in sequence per owner (module docstring, step 4).
        """
        self.groups()
        order_groups = [self._group_of[int(r)] for r in rows.tolist()]
        uniq = list(dict.fromkeys(order_groups))
        local = np.array([uniq.index(g) for g in order_groups], np.int64)
        synth = [self.owner(self._groups[g]).synthetic for g in uniq]
        first = synth[0]
        inputs = replace(first, collateral=np.vstack([s.collateral for s in synth]),
                         positions=np.vstack([s.positions for s in synth]),
                         entry_prices=np.vstack([s.entry_prices for s in synth]))
        inst = np.full(len(rows), self.column[j], np.int64)
        return self.engine.pretrade(inputs, local, inst, np.asarray(delta, np.float64),
                                    np.asarray(price, np.float64), float(fee_rate))
