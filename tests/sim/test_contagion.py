"""Multi-protocol worlds: per-protocol regimes, independence, issued tokens, contagion metrics."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from sim.config import ConfigError, load_config
from sim.contagion import (
    contagion_matrix,
    contagion_summary,
    exploit_shock,
    isolated_crash_overrides,
    run_with_shock,
)
from sim.contagion.tokens import receipt_price, stablecoin_price
from sim.model import MarketModel

TWO = ["protocols=two_venues", "steps=40", "scenario=calm", "agents.noise.n=30",
       "agents.leveraged.n=10", "output.figures=false"]
OFF = ["contagion.arbitrage=false", "contagion.token_impairment=false"]


@functools.lru_cache(maxsize=4)
def _cfg(*extra: str):
    return load_config([*TWO, *extra])


def _ts(model):
    return model.datacollector.get_model_vars_dataframe()


def test_two_venues_use_their_own_regimes_and_conserve():
    cfg = _cfg("check_invariants=true")
    model = MarketModel(cfg)
    assert [p.engine.name for p in model.protocols] == ["cross", "portfolio"] or \
        type(model.protocols[0].engine) is not type(model.protocols[1].engine)
    assert "aLP" in model.asset_names
    assert model.protocol_haircuts[1][model.asset_names.index("aLP")] == pytest.approx(0.10)
    for _ in range(15):
        model.step()  # check_invariants: ledger conservation every step
    model.liquidation.check_bad_debt()


def test_shock_on_alpha_leaves_beta_unchanged_with_channels_off():
    cfg = _cfg(*OFF)
    base = _ts(run_with_shock(cfg, None, 0.0, 10))
    hit = _ts(run_with_shock(cfg, 0, 3e6, 10))
    beta = [c for c in base.columns if c.startswith("beta")]
    alpha = [c for c in base.columns if c.startswith("alpha")]
    assert beta and all(base[c].equals(hit[c]) for c in beta)
    assert any(not base[c].equals(hit[c]) for c in alpha)


@pytest.mark.parametrize("switch", [True, False])
def test_arbitrage_switch_gates_cross_venue_trading(switch):
    cfg = _cfg("agents.arbitrageur.enabled=true", f"contagion.arbitrage={str(switch).lower()}")
    model = MarketModel(cfg)
    assert model.arbitrageurs[0].cfg.cross_venue is switch


@pytest.mark.parametrize("impair", [True, False])
def test_token_impairment_formula_reaches_beta_collateral(impair):
    cfg = _cfg("contagion.arbitrage=false", f"contagion.token_impairment={str(impair).lower()}")
    model = MarketModel(cfg)
    model.step()
    a = model.asset_names.index("aLP")
    tok = cfg.protocols[0].issues
    beta = model.protocols[1]
    holder = beta.accounts[-1]
    held = float(model.ledger.collateral[holder, a])
    assert held == pytest.approx(tok.holdings["beta"] / tok.par)
    before = model.evaluate_margins()[1]
    k = list(before[0]).index(holder)
    eq0 = float(before[1].equity[k])
    bad = 2_500_000.0
    model.liquidation.bad_debt[0] = bad  # as if written off on alpha
    model.revalue_tokens()
    expected = tok.par * max(tok.floor, 1.0 - bad / (tok.supply * tok.par)) if impair else tok.par
    assert model.asset_prices[a] == expected
    assert receipt_price(tok.par, tok.supply, bad, tok.floor) == pytest.approx(0.75)
    after = model.evaluate_margins()[1]
    eq1 = float(after[1].equity[k])
    haircut = 0.10
    assert eq1 - eq0 == pytest.approx(held * (expected - tok.par) * (1 - haircut), rel=1e-9,
                                      abs=1e-6)


def test_stablecoin_rule():
    assert stablecoin_price(1.0, 100.0, 0.0, backing_ratio=1.2) == 1.0
    assert stablecoin_price(1.0, 100.0, 30.0, backing_ratio=1.2) == pytest.approx(0.9)
    assert stablecoin_price(1.0, 100.0, 30.0, 1.2, run_threshold=1.0, run_discount=0.2) == \
        pytest.approx(0.72)
    assert stablecoin_price(1.0, 100.0, 500.0, 1.2, floor=0.05) == pytest.approx(0.05)


def test_venue_oracle_prices_token_from_book():
    cfg = load_config([*TWO, "contagion.venue_oracle=true", "protocols.1.stp=cancel_resting"],
                      validate_values=False)
    from omegaconf import OmegaConf
    cfg = OmegaConf.merge(cfg, {"protocols": [{**OmegaConf.to_container(cfg.protocols[0]),
                                               "issues": {**OmegaConf.to_container(
                                                   cfg.protocols[0].issues), "venue": "beta"}},
                                              OmegaConf.to_container(cfg.protocols[1])]})
    model = MarketModel(cfg)
    j = model.tokens.books[model.asset_names.index("aLP")]
    assert model.instruments[j].name == "beta:aLP-SPOT"
    model.step()
    mid = model.view.mid(j)
    if mid is not None:
        assert model.asset_prices[model.asset_names.index("aLP")] == pytest.approx(mid)


def test_contagion_summary_and_matrix():
    cfg = _cfg(*OFF)
    calls = []

    def run_fn(i):
        calls.append(i)
        return run_with_shock(cfg, i, 3e6, 10)

    out = contagion_matrix(run_fn, ["alpha", "beta"])
    assert calls == [None, 0, 1]
    assert np.asarray(out["bad_debt"]).shape == (2, 2)
    s = contagion_summary(run_with_shock(cfg, 0, 3e6, 10), shocked=0)
    assert set(s["protocols"]) == {"alpha", "beta"} and s["shocked"] == "alpha"


EXPLOIT_WORLD = ("protocols.0.insurance_fund=100000", "protocols.0.liquidation.bad_debt=write_off",
                 "protocols.1.insurance_fund=0", "protocols.1.liquidation.bad_debt=write_off",
                 "protocols.0.issues.supply=800000", "check_invariants=true")


def test_exploit_shock_goes_through_the_waterfall_and_conserves_value():
    """4e5 taken out of alpha.

    The 1e5 fund pays first, 3e5 is recorded bad debt, aLP is repriced by the receipt formula, and
    the ledger conserves value every step.
    """
    model = MarketModel(_cfg(*EXPLOIT_WORLD))
    for _ in range(5):
        model.step()
    row = exploit_shock(model, 0, 4e5)
    assert model.ledger.collateral[row, 0] == -4e5 and row in model.protocols[0].accounts
    model.step()  # check_invariants: conservation and the bad-debt identity
    liq = model.liquidation
    assert liq.bad_debt[0] == pytest.approx(3e5) and liq.bad_debt[1] == 0.0
    kinds = [e["kind"] for e in liq.events if e["account"] == row]
    assert "bad_debt" in kinds
    alp = model.asset_names.index("aLP")
    assert model.fundamental[alp] == pytest.approx(receipt_price(1.0, 8e5, 3e5))  # 0.625
    for bad, match in (((5, 1e5), "protocol must be"), ((0, 0.0), "amount must be"),
                       ((0, float("nan")), "amount must be")):
        with pytest.raises(ValueError, match=match):
            exploit_shock(model, *bad)
    with pytest.raises(ValueError, match="shock kind must be one of"):
        run_with_shock(_cfg(), 0, 1.0, 1, kind="meteor")


@pytest.mark.parametrize("impair", [True, False])
def test_exploit_contagion_matrix_is_one_way_through_the_token(impair):
    """Alpha issues aLP held at beta, beta issues nothing.

    A shock at alpha costs beta's traders equity only through token impairment; a shock at beta
    never reaches alpha's bad debt.
    """
    cfg = _cfg(*EXPLOIT_WORLD, f"contagion.token_impairment={str(impair).lower()}")
    out = contagion_matrix(lambda i: run_with_shock(cfg, i, 4e5, 10, kind="exploit"),
                           ["alpha", "beta"])
    bd, eq = np.asarray(out["bad_debt"]), np.asarray(out["equity_loss"])
    np.testing.assert_allclose(bd, [[3e5, 0.0], [0.0, 4e5]])
    if impair:
        # beta's traders hold aLP (10,000 USD each at par, no aLP book to trade it) that
        # falls to 0.625 and counts in equity at beta's 10 % haircut; their liquidations
        # (if any) change equity by their fees only
        model = MarketModel(cfg)
        alp = model.asset_names.index("aLP")
        held = model.ledger.collateral[model.protocols[1].accounts, alp].sum()
        assert eq[0, 1] == pytest.approx(held * (1 - 0.625) * 0.9, rel=0.02)
    else:
        assert eq[0, 1] == 0.0
    assert abs(eq[1, 0]) < 1.0 and abs(eq[0, 0]) < 1.0


# ------------------------------------------------------- end-to-end contagion (alpha -> beta)
E2E_OFF = ["contagion.arbitrage=false", "contagion.fire_sales=false"]


@functools.lru_cache(maxsize=8)
def _e2e(*extra: str):
    """A stepped reference world (:func:`isolated_crash_overrides`) and its time series."""
    cfg = load_config([*isolated_crash_overrides(), "output.figures=false", *extra])
    model = run_with_shock(cfg, None, 0.0, 0)
    return model, _ts(model)


def _beta_liquidated(model):
    return {e["account"] for e in model.liquidation.events
            if e["protocol"] == 1 and e["kind"] in ("liquidator", "backstop")}


def test_e2e_shock_at_alpha_spreads_to_beta_through_the_token():
    model, ts = _e2e()
    off, ts_off = _e2e("contagion.token_impairment=false")
    crash = model.cfg.scenario.params["start_step"]
    # 1. the gap crash (an asset only alpha lists) leaves alpha with recorded bad debt
    bad = ts["alpha.bad_debt_total"].to_numpy()
    assert bad[-1] > 1e5 and int(np.argmax(bad > 0)) == crash
    assert model.liquidation.bad_debt[0] == pytest.approx(bad[-1])
    assert off.liquidation.bad_debt[0] == model.liquidation.bad_debt[0]  # alpha alone
    # 2. aLP is repriced by sim.contagion.tokens.receipt_price from that bad debt, every step
    tok = model.cfg.protocols[0].issues
    expected = [receipt_price(tok.par, tok.supply, d, tok.floor) for d in bad]
    assert ts["aLP.index"].tolist() == expected
    assert ts["aLP.index"].iloc[-1] < 0.5 * tok.par
    assert (ts_off["aLP.index"] == tok.par).all()
    # 3. beta's collateral in aLP falls by the same factor
    held = ts["beta.aLP_collateral"].to_numpy()
    assert held[crash - 1] > 0
    assert held[-1] == pytest.approx(held[crash - 1] * expected[-1] / tok.par, rel=1e-12)
    assert ts_off["beta.aLP_collateral"].iloc[-1] == ts_off["beta.aLP_collateral"].iloc[0]
    # 4. distress at beta with impairment on, none with it off; nothing at beta before alpha's loss
    beta = [c for c in ts.columns if c.startswith("beta")]
    assert ts[beta].iloc[:crash].equals(ts_off[beta].iloc[:crash])
    first = model.contagion_tracker.first[1]
    assert first["first_liquidation"] > crash and first["first_below_maintenance"] > crash
    assert model.liquidation.totals[1]["liquidations"] >= 5 and _beta_liquidated(model)
    assert off.liquidation.totals[1]["liquidations"] == 0 and not _beta_liquidated(off)
    assert off.contagion_tracker.first[1] == dict.fromkeys(off.contagion_tracker.KEYS, -1)
    s = contagion_summary(model, shocked=0, measure="first_bad_debt")
    assert s["shocked"] == "alpha" and s["protocols"]["beta"]["liquidations"] > 0


def test_e2e_every_channel_off_beta_is_identical_to_the_unshocked_world():
    off = ["contagion.token_impairment=false", *E2E_OFF]
    _, hit = _e2e(*off)
    _, calm = _e2e(*off, "scenario.params.crash=1e-12")
    beta = [c for c in hit.columns if c.startswith("beta")]
    assert beta and hit[beta].equals(calm[beta])
    assert not hit["alpha.bad_debt_total"].equals(calm["alpha.bad_debt_total"])
    # with the token channel on, the same shock does change beta
    _, on = _e2e(*E2E_OFF)
    assert not on[beta].equals(calm[beta])


def test_e2e_same_seed_same_bytes():
    a, b = _e2e()[1], _ts(run_with_shock(load_config(
        [*isolated_crash_overrides(), "output.figures=false"]), None, 0.0, 0))
    assert a.equals(b)


def test_isolated_crash_overrides_reject_bad_sizes():
    with pytest.raises(ValueError, match="crash"):
        isolated_crash_overrides(crash=1.5)
    with pytest.raises(ValueError, match="leveraged"):
        isolated_crash_overrides(leveraged=0)
    with pytest.raises(ConfigError, match=r"protocols\[1\].assets"):
        load_config(["protocols=two_venues", "protocols.1.assets=[DOGE]"])


def test_token_collateral_columns_only_where_tokens_are_held_elsewhere():
    model = MarketModel(_cfg())
    names = model._metric_names()
    assert "beta.aLP_collateral" in names and "alpha.aLP_collateral" not in names
    single = MarketModel(load_config(["steps=5", "agents=minimal", "agents.noise.n=5",
                                      "scenario=calm", "output.figures=false"]))
    assert not [n for n in single._metric_names() if n.endswith("_collateral")]
    a = model.asset_names.index("aLP")
    rows = model.protocols[1].accounts
    assert model.metrics["beta.aLP_collateral"] == pytest.approx(
        float(model.ledger.collateral[rows, a].sum()) * model.asset_prices[a])
    assert model.metrics["beta.aLP_collateral"] == pytest.approx(10_000.0 * len(rows))


def test_each_engine_sees_only_its_own_books_depth():
    model = MarketModel(_cfg())
    model.step()
    assert model.depth.min() > 0
    for p in model.protocols:
        own = np.zeros(len(model.instruments), bool)
        own[[i.index for i in p.instruments]] = True
        depth = model.protocol_inputs(p.index).depth
        assert (depth[own] == model.depth[own]).all() and (depth[~own] == 0).all()


def test_universal_and_shared_capital_switches_are_accepted():
    cfg = load_config([*TWO, "contagion.universal_margin=true",
                       "contagion.shared_liquidator_capital=true"])
    model = MarketModel(cfg)
    assert model.universal is not None
    assert all(liq.shared_capital for liq in model.liquidators)
    with pytest.raises(ConfigError, match=r"contagion\.shared_liquidator_capital"):
        load_config(["contagion.shared_liquidator_capital=maybe"])
