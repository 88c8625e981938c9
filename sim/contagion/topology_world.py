"""Agent-model worlds on a random protocol-exposure network (DESIGN.md, collateral graph).

:func:`topology_config` turns an exposure matrix ``A`` — the convention of
:func:`sim.network.exposure_matrix`: ``A[i, j] > 0`` means protocol ``i`` is
exposed to protocol ``j``, i.e. ``i``'s traders hold ``j``'s receipt token — into
a run config of ``n`` small protocols ``p0 .. p{n-1}``:

* protocol ``j`` issues the receipt token ``T{j}`` (:mod:`sim.contagion.tokens`: priced at
  net pool assets per unit, ``par x max(0, 1 - D_j / (supply_j x par))`` from
  its recorded bad debt ``D_j``);
* every trader account on ``i`` starts with ``holding_usd x A[i, j] / w̄`` of
  ``T{j}`` (``w̄`` the mean positive weight, so a typical link is
  ``holding_usd``), and ``i``'s own margin config (the regime applied to every
  protocol) accepts exactly the tokens ``i`` holds, with haircut ``haircut``;
* optionally (``borrowers > 0``) each link also carries ``borrowers``
  token-backed loans on ``i``: an account deposits ``borrow_usd x A[i, j] / w̄``
  of ``T{j}`` and borrows ``ltv`` of that value in the quote asset (a lending
  pool's collateralised loan, the Aave/Compound shape; Gudgeon et al. 2020,
  contagion_and_peers.md §2.7). They are opened by :func:`open_borrowers` when
  the model is built (:func:`run_topology`);
* every protocol lists one asset (BTC perpetual only), has a small insurance
  fund and the ``write_off`` bad-debt rule (a lending pool whose depositors
  bear the loss: Aave v3.3 deficits, Maker's Black Thursday, §2.3), so a loss
  its waterfall cannot absorb becomes recorded bad debt and impairs its token;
* token supply ``supply_j = pool_ratio x`` (units minted to holders and
  borrowers), at least ``min_supply``.

The shock (:func:`run_topology`) is :func:`sim.contagion.exploit_shock` at one
protocol ``s`` of ``insurance_fund + shock_fraction x supply_s``: the fund pays
first, the rest is recorded bad debt, so ``T{s}`` falls to exactly
``1 - shock_fraction`` at the next revaluation. The loss then travels only
through token impairment (the arbitrageur, the only cross-venue trader, is
off): holders' equity falls, their traders may be liquidated, and a loss their
waterfall cannot absorb impairs their own token in turn — the zero-recovery
cascade of Gai & Kapadia (2010) and the distress propagation of DebtRank
(Battiston et al. 2012) played out by agents (contagion_and_peers.md §1.1,
§1.3), with margin engines deciding who is liquidated.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

__all__ = [
    "BORROWER_OWNER",
    "REGIMES",
    "TopologyWorld",
    "hop_distances",
    "open_borrowers",
    "run_topology",
    "token_name",
    "topology_outcome",
    "topology_world",
]

BORROWER_OWNER = 999_999_997
"""Ledger owner id of the token-backed borrowers of :func:`open_borrowers`."""

REGIMES = ("static", "cross", "portfolio", "adaptive")
"""Margin presets (``conf/margin``) a topology world may apply to every protocol."""


@dataclass(frozen=True)
class TopologyWorld:
    """A run config built from an exposure matrix, and its token-backed loans.

    Attributes:
        cfg: Validated run config (``RunConfig`` structure).
        exposures: The exposure matrix (diagonal zeroed).
        unit: Mean positive weight ``w̄`` (holdings and loans scale by ``A / w̄``).
        borrowers: Loans per link; ``borrow_usd``: token value per loan at
            weight ``w̄``; ``ltv``: their loan-to-value.
    """

    cfg: DictConfig
    exposures: np.ndarray
    unit: float
    borrowers: int = 0
    borrow_usd: float = 0.0
    ltv: float = 0.0


def token_name(j: int) -> str:
    """Receipt token issued by protocol ``p{j}``."""
    return f"T{j}"


def _int(key: str, v: Any, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
        raise ValueError(f"{key} must be an integer >= {lo}, got {v!r}")
    return int(v)


def _float(key: str, v: Any, lo: float, hi: float | None = None, lo_open: bool = False,
           hi_open: bool = False) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a number, got {v!r}") from None
    bad = (not np.isfinite(x) or x < lo or (lo_open and x == lo)
           or (hi is not None and (x > hi or (hi_open and x == hi))))
    if bad:
        rng = f"{'(' if lo_open else '['}{lo:g}, {'inf' if hi is None else f'{hi:g}'}" \
              f"{')' if hi_open or hi is None else ']'}"
        raise ValueError(f"{key} must be in {rng}, got {v!r}")
    return x


def _exposures(A: Any) -> np.ndarray:
    a = np.asarray(A, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 2:
        raise ValueError(f"exposures must be a square matrix of at least 2 protocols, "
                         f"got shape {a.shape}")
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ValueError("exposures must be finite and non-negative")
    a = a.copy()
    np.fill_diagonal(a, 0.0)  # own token: wrong-way risk, not an exposure (sim.network)
    return a


def _accounts_per_protocol(cfg: Any) -> int:
    """Trader accounts every protocol opens (each receives the token holdings)."""
    ag = cfg.agents
    books = int(cfg.protocols[0].spot) + int(cfg.protocols[0].perp)
    n = ag.market_maker.per_book * books + ag.noise.n + ag.fundamentalist.n + ag.momentum.n
    n += ag.leveraged.n + ag.liquidator.n + int(bool(ag.arbitrageur.enabled))
    return int(n)


def topology_world(A: Any, *, regime: str = "portfolio", holding_usd: float = 10_000.0,
                    haircut: float = 0.1, pool_ratio: float = 1.0, min_supply: float = 1e5,
                    borrowers: int = 0, borrow_usd: float = 50_000.0, ltv: float = 0.8,
                    insurance_fund: float = 10_000.0, steps: int = 50, noise: int = 10,
                    leveraged: int = 10, leverage: tuple[float, float] = (3.0, 10.0),
                    seed: int = 1, token_impairment: bool = True,
                    overrides: Sequence[str] = ()) -> TopologyWorld:
    """Run config of the world described in the module docstring.

    Args:
        A: Exposures (n x n, n >= 2), ``A[i, j] > 0``: ``i``'s traders hold
            ``T{j}`` in proportion to ``A[i, j]`` (diagonal ignored).
        regime: Margin preset applied to every protocol (:data:`REGIMES`).
        holding_usd: Token value per trader account on a link of mean weight.
        haircut: Haircut of every accepted token, in [0, 1).
        pool_ratio: Token supply / units minted (>= 1: the pool also holds
            deposits from outside the world).
        min_supply: Lower bound of every token's supply (a token nobody holds).
        borrowers: Token-backed loans per link (0: none).
        borrow_usd: Token value deposited by each borrower on a link of mean weight.
        ltv: Loan-to-value of those loans; at most ``1 - haircut`` (a loan
            must start within margin).
        insurance_fund: Every protocol's insurance fund (quote).
        steps: Run length in steps.
        noise: Noise traders per protocol.
        leveraged: Leveraged traders per protocol.
        seed: The run's seed.
        leverage: ``(min, max)`` target leverage of the leveraged traders.
        token_impairment: The ``contagion.token_impairment`` switch.
        overrides: Further Hydra overrides of the run config (applied first).

    Returns:
        The :class:`TopologyWorld` (its ``cfg`` validated).

    Raises:
        ValueError: A bad argument (one line naming it).
    """
    from sim.config import IssuedTokenConfig, load_config, validate

    a = _exposures(A)
    n = a.shape[0]
    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {', '.join(REGIMES)}, got {regime!r}")
    holding_usd = _float("holding_usd", holding_usd, 0.0)
    haircut = _float("haircut", haircut, 0.0, 1.0, hi_open=True)
    pool_ratio = _float("pool_ratio", pool_ratio, 1.0)
    min_supply = _float("min_supply", min_supply, 0.0, lo_open=True)
    borrowers = _int("borrowers", borrowers, 0)
    borrow_usd = _float("borrow_usd", borrow_usd, 0.0)
    ltv = _float("ltv", ltv, 0.0, 1.0 - haircut)
    insurance_fund = _float("insurance_fund", insurance_fund, 0.0)
    lo, hi = (_float("leverage", x, 1.0) for x in leverage)
    if lo > hi:
        raise ValueError(f"leverage must be (min, max) with min <= max, got {leverage!r}")
    cfg = load_config([*overrides, "protocols=single", "scenario=calm", f"margin={regime}",
                       f"steps={_int('steps', steps, 1)}", f"seed={_int('seed', seed, 0)}",
                       f"agents.noise.n={_int('noise', noise, 0)}",
                       f"agents.leveraged.n={_int('leveraged', leveraged, 0)}",
                       f"agents.leveraged.leverage_min={lo}",
                       f"agents.leveraged.leverage_max={hi}",
                       "agents.fundamentalist.n=0", "agents.momentum.n=0",
                       "agents.arbitrageur.enabled=false", "protocols.0.spot=false",
                       "protocols.0.assets=[BTC]", f"protocols.0.insurance_fund={insurance_fund}",
                       "protocols.0.liquidation.bad_debt=write_off",
                       f"contagion.token_impairment={str(bool(token_impairment)).lower()}",
                       "output.figures=false", "progress=false"], validate_values=False)
    pos = a[a > 0]
    unit = float(pos.mean()) if pos.size else 1.0
    per_account = _accounts_per_protocol(cfg)
    template = OmegaConf.to_object(cfg.protocols[0])
    margin = OmegaConf.to_object(cfg.margin)
    protocols = []
    for j in range(n):
        p = OmegaConf.to_object(OmegaConf.structured(template))
        p.name = f"p{j}"
        holders = {f"p{i}": float(holding_usd * a[i, j] / unit) for i in range(n) if a[i, j] > 0}
        minted = per_account * sum(holders.values())
        minted += borrowers * sum(borrow_usd * a[i, j] / unit for i in range(n) if a[i, j] > 0)
        p.issues = IssuedTokenConfig(name=token_name(j), kind="receipt", par=1.0,
                                     supply=float(max(min_supply, pool_ratio * minted)),
                                     holdings={k: v for k, v in holders.items() if v > 0})
        m = OmegaConf.to_object(OmegaConf.structured(margin))
        m.haircuts = {**m.haircuts, **{token_name(k): haircut for k in range(n) if a[j, k] > 0}}
        p.margin = m
        protocols.append(p)
    cfg.protocols = protocols
    validate(cfg)
    return TopologyWorld(cfg, a, unit, borrowers, borrow_usd, ltv)


def open_borrowers(model: Any, world: TopologyWorld) -> list[int]:
    """Open the token-backed loans of a topology world (before the first step).

    On every link ``A[i, j] > 0``, ``borrowers`` accounts on ``p{i}`` each
    receive ``borrow_usd x A[i, j] / w̄`` of ``T{j}`` (minted from the outside
    world, counted in the token's supply) and borrow ``ltv`` of that value in
    the quote asset, which leaves the world (as :func:`sim.contagion.exploit_shock`
    does). Each such account is solvent while ``T{j}`` is above ``ltv``; below
    it its deficit goes through ``p{i}``'s waterfall.

    Returns:
        The borrowers' ledger rows.
    """
    from sim.ledger import HolderKind

    a = world.exposures
    k, usd, ltv, unit = world.borrowers, world.borrow_usd, world.ltv, world.unit
    lg = model.ledger
    rows: list[int] = []
    if k == 0 or usd <= 0:
        return rows
    for i, j in zip(*np.nonzero(a), strict=True):
        asset = model.asset_names.index(token_name(int(j)))
        value = usd * a[i, j] / unit
        for _ in range(k):
            row = lg.open_account(HolderKind.TRADER, owner=BORROWER_OWNER, protocol=int(i))
            lg.deposit(row, asset, value / float(model.asset_prices[asset]))
            if ltv > 0:
                lg.transfer(row, lg.world_row, 0, ltv * value, allow_negative=True)
            model.protocols[int(i)].accounts.append(row)
            rows.append(row)
    return rows


def run_topology(world: TopologyWorld, shocked: int | None, shock_fraction: float = 0.5,
                 shock_step: int = 10) -> Any:
    """Build a topology world, open its loans, and step it with an exploit at ``shocked``.

    The exploit (:func:`sim.contagion.exploit_shock`, applied before step
    ``shock_step``) takes ``insurance_fund + shock_fraction x supply`` out of
    protocol ``shocked``, so its token is marked down to ``1 - shock_fraction``.
    ``shocked=None``: the unshocked run of the same seed.

    Raises:
        ValueError: A bad protocol, fraction or step (one line).
    """
    from sim.model import MarketModel
    from sim.scenarios.confined import SHOCKS

    if not isinstance(world, TopologyWorld):
        raise ValueError(f"world must be a TopologyWorld (topology_world), got "
                         f"{type(world).__name__}")
    cfg = world.cfg
    shock_fraction = _float("shock_fraction", shock_fraction, 0.0, 1.0, lo_open=True)
    shock_step = _int("shock_step", shock_step, 0)
    n = len(cfg.protocols)
    if shocked is not None and not 0 <= int(shocked) < n:
        raise ValueError(f"shocked must be a protocol index in [0, {n - 1}], got {shocked!r}")
    if shock_step >= int(cfg.steps):
        raise ValueError(f"shock_step must be < steps={int(cfg.steps)}, got {shock_step}")
    model = MarketModel(cfg)
    open_borrowers(model, world)
    if shocked is not None:
        p = cfg.protocols[int(shocked)]
        size = float(p.insurance_fund) + shock_fraction * float(p.issues.supply) * p.issues.par
    for t in range(int(cfg.steps)):
        if shocked is not None and t == shock_step:
            SHOCKS["exploit"](model, int(shocked), size)
        model.step()
    return model


def hop_distances(A: Any, source: int) -> np.ndarray:
    """Hops from ``source`` along holder links (``j -> i`` when ``A[i, j] > 0``); -1: unreached."""
    a = _exposures(A)
    n = a.shape[0]
    dist = np.full(n, -1, dtype=np.int64)
    dist[source] = 0
    frontier = [source]
    while frontier:
        nxt = []
        for j in frontier:
            for i in np.nonzero(a[:, j] > 0)[0]:
                if dist[i] < 0:
                    dist[i] = dist[j] + 1
                    nxt.append(int(i))
        frontier = nxt
    return dist


def topology_outcome(shocked_model: Any, base_model: Any, shocked: int,
                     A: Any, tol: float = 1e-6) -> dict[str, Any]:
    """Cascade measures of a shocked run against the unshocked run of the same seed.

    A protocol ``j != shocked`` is *hit* when it records more liquidations or
    more bad debt (beyond ``tol`` quote) than in the unshocked run — the
    Gai–Kapadia "contagion event" framing (2010) with the agent model's
    distress in place of a default.

    Returns:
        ``reach`` (protocols hit), ``reach_bad_debt`` (hit with extra bad debt:
        their own tokens are impaired, the condition for a further hop),
        ``max_hops`` (largest holder-graph distance from the shocked protocol
        among those hit; 0 if none), ``exposed`` (protocols holding the shocked
        token directly), ``reachable`` (protocols with any holder path from it),
        ``bad_debt_beyond`` (extra bad debt outside the shocked protocol),
        ``liquidations_beyond``, ``equity_loss`` (fall of all traders' equity
        outside the shocked protocol, shock and loan accounts excluded, vs
        the unshocked run) and ``time_to_contagion`` (first liquidation or bad
        debt step of a hit protocol minus the shocked protocol's first
        bad-debt step; NaN if none).
    """
    from sim.contagion.tracker import trader_equity

    n = len(shocked_model.protocols)
    dist = hop_distances(A, shocked)
    ls, lb = shocked_model.liquidation, base_model.liquidation
    extra_bd = np.array([ls.bad_debt[k] - lb.bad_debt[k] for k in range(n)])
    extra_liq = np.array([ls.totals[k]["liquidations"] - lb.totals[k]["liquidations"]
                          for k in range(n)])
    others = np.arange(n) != shocked
    hit = others & ((extra_bd > tol) | (extra_liq > 0))
    first = shocked_model.contagion_tracker.first
    src = first[shocked]["first_bad_debt"]
    steps = [s for k in np.nonzero(hit)[0]
             for s in (first[k]["first_liquidation"], first[k]["first_bad_debt"]) if s >= 0]
    eq = (trader_equity(shocked_model, exclude=(BORROWER_OWNER,))
          - trader_equity(base_model, exclude=(BORROWER_OWNER,)))
    return {"reach": int(hit.sum()),
            "reach_bad_debt": int((others & (extra_bd > tol)).sum()),
            "max_hops": int(dist[hit].max()) if hit.any() else 0,
            "exposed": int((dist == 1).sum()),
            "reachable": int((dist > 0).sum()),
            "shocked_bad_debt": float(ls.bad_debt[shocked]),
            "bad_debt_beyond": float(extra_bd[others].sum()),
            "liquidations_beyond": float(extra_liq[others].sum()),
            "equity_loss": float(-eq[others].sum()),
            "time_to_contagion": (float(min(steps) - src) if steps and src >= 0
                                  else float("nan"))}

