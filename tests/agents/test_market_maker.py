"""Avellaneda–Stoikov quotes: the closed form, the agent in a model, liquidity withdrawal."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agents.config import LiquidityWithdrawalConfig
from agents.market_maker import avellaneda_stoikov_quotes, withdrawal_factors
from sim.config import load_config
from sim.config.agents import validate_withdrawal_config
from sim.ledger import check_conservation
from sim.market.book import MARKET
from sim.model import MarketModel


def test_zero_inventory_quotes_are_symmetric_with_the_optimal_spread():
    s, gamma, sigma, tau, k = 100.0, 0.5, 0.01, 10.0, 200.0
    bid, ask = avellaneda_stoikov_quotes(s, 0.0, gamma, sigma, tau, k)
    assert (bid + ask) / 2 == pytest.approx(s)
    # Avellaneda & Stoikov (2008): spread = gamma sigma^2 (T-t) + (2/gamma) ln(1 + gamma/k)
    expected = gamma * sigma**2 * tau + (2 / gamma) * math.log(1 + gamma / k)
    assert (ask - bid) / s == pytest.approx(expected)


def test_inventory_skews_the_reservation_price():
    s, gamma, sigma, tau, k = 100.0, 0.5, 0.01, 10.0, 200.0
    b0, a0 = avellaneda_stoikov_quotes(s, 0.0, gamma, sigma, tau, k)
    b1, a1 = avellaneda_stoikov_quotes(s, 3.0, gamma, sigma, tau, k)
    shift = 3.0 * gamma * sigma**2 * tau * s
    assert b1 == pytest.approx(b0 - shift)
    assert a1 == pytest.approx(a0 - shift)
    bl, al = avellaneda_stoikov_quotes(s, -3.0, gamma, sigma, tau, k)
    assert bl > b0 and al > a0


def _maker_world(extra=()):
    cfg = load_config(
        [
            "agents=minimal",
            "scenario=calm",
            "agents.noise.n=0",
            "output.figures=false",
            "protocols.0.spot=false",
            *extra,
        ]
    )
    return MarketModel(cfg)


def test_maker_quotes_a_ladder_each_side():
    model = _maker_world(["agents.market_maker.levels=4"])
    for book in model.books:
        bids, asks = book.depth(10)
        assert len(bids) == 4 and len(asks) == 4
        assert bids[0, 0] < asks[0, 0]
    model.step()
    for book in model.books:  # replaced, not accumulated
        bids, asks = book.depth(10)
        assert len(bids) == 4 and len(asks) == 4


def test_maker_stops_quoting_the_side_beyond_its_inventory_limit():
    model = _maker_world(["agents.market_maker.inventory_limit_notional=1000"])
    taker = model.open_trader(0, owner=-1, usd=1e6, base_notional=0.0)
    j = next(i.index for i in model.instruments if i.is_perp)
    ev = model.view.new_events(1)
    ev["kind"], ev["side"], ev["qty"], ev["owner"] = MARKET, 1, 100, taker
    model.submit(j, ev)
    maker = next(m for m in model.makers if m.instrument == j)
    assert model.ledger.position[maker.account, j] < 0  # the maker sold
    model.step()
    bids, asks = model.books[j].depth(10)
    assert len(asks) == 0 and len(bids) > 0
    assert np.all(model.books[j].live_orders()["side"] > 0)


# ----------------------------------------------------------- liquidity withdrawal
def _pin(model):
    """Pin the fundamental where the test puts ``model.scenario.prices`` (hooks kept)."""
    prices = model.scenario.prices
    model.scenario.advance = lambda rng: prices
    return prices


def _set_liquidity(model, x):
    """Market-wide liquidity as a scenario sets it (and as the model attribute)."""
    model.scenario.liquidity = lambda step: x
    model.liquidity = x


def _quotes(model, maker):
    live = model.books[maker.instrument].live_orders()
    return live[live["owner"] == maker.account]


def _btc_maker(model):
    j = next(i.index for i in model.instruments if i.is_perp and i.base == 1)
    return next(m for m in model.makers if m.instrument == j)


def test_withdrawal_factors():
    cfg = LiquidityWithdrawalConfig(vol_widen_ratio=2.0, vol_pull_ratio=5.0, usage_widen=0.5,
                                    usage_pull=0.9, max_spread_mult=4.0, min_size_frac=0.25)
    assert withdrawal_factors(1.9, 0.4, cfg) == (1.0, 1.0)
    assert withdrawal_factors(3.5, 0.0, cfg) == pytest.approx((2.5, 0.625))  # half stressed
    assert withdrawal_factors(0.5, 0.7, cfg) == pytest.approx((2.5, 0.625))
    assert withdrawal_factors(3.5, 0.8, cfg) == pytest.approx((1 + 3 * 0.75, 1 - 0.75 * 0.75))
    assert withdrawal_factors(5.0, 0.0, cfg)[1] == 0.0  # pulled
    assert withdrawal_factors(1.0, 0.9, cfg)[1] == 0.0
    assert withdrawal_factors(1.0, math.inf, cfg)[1] == 0.0  # no equity left
    off = LiquidityWithdrawalConfig(enabled=False)
    assert withdrawal_factors(50.0, 5.0, off) == (1.0, 1.0)


def test_withdrawal_leaves_a_calm_run_unchanged():
    def run(enabled):
        cfg = load_config(
            [
                "agents=minimal",
                "scenario=calm",
                "agents.noise.n=40",
                "output.figures=false",
                "steps=150",
            ]
        )
        model = MarketModel(cfg)
        for m in model.makers:
            m.withdrawal = LiquidityWithdrawalConfig(enabled=enabled)
        for _ in range(150):
            model.step()
        assert all(m.spread_mult == 1.0 and m.size_mult == 1.0 for m in model.makers)
        return model.trades_table()

    on, off = run(True), run(False)
    assert len(on["price"]) > 100
    assert np.array_equal(on["price"], off["price"]) and np.array_equal(on["qty"], off["qty"])


def test_a_price_jump_pulls_quotes():
    model = _maker_world()
    prices = _pin(model)
    for _ in range(5):
        model.step()
    maker = _btc_maker(model)
    assert len(_quotes(model, maker)) == 10
    prices[0] *= 0.95  # BTC falls 5 % in a step: EWMA vol jumps about 8x its calm level
    model.step()
    assert maker.vol_ratio > 5.0 and maker.pulled
    assert len(_quotes(model, maker)) == 0
    eth = next(m for m in model.makers if m.instrument != maker.instrument)
    assert not eth.pulled and len(_quotes(model, eth)) == 10  # ETH did not move
    # without the withdrawal rule the same maker keeps quoting
    model = _maker_world()
    prices = _pin(model)
    for m in model.makers:
        m.withdrawal = LiquidityWithdrawalConfig(enabled=False)
    for _ in range(5):
        model.step()
    prices[0] *= 0.95
    model.step()
    assert len(_quotes(model, _btc_maker(model))) == 10


def test_a_moderate_vol_rise_widens_and_thins_quotes():
    books = []
    for enabled in (True, False):
        model = _maker_world()
        prices = _pin(model)
        for m in model.makers:
            m.withdrawal = LiquidityWithdrawalConfig(enabled=enabled)
        for _ in range(5):
            model.step()
        prices[0] *= 0.985  # vol ratio about 3: a third of the way to pulling
        model.step()
        maker = _btc_maker(model)
        bids, asks = model.books[maker.instrument].depth(10)
        books.append((maker, asks[0, 0] - bids[0, 0], bids[0, 1]))
    (maker, spread_on, lots_on), (_, spread_off, lots_off) = books
    assert 2.0 < maker.vol_ratio < 5.0
    assert 1.0 < maker.spread_mult < 4.0 and 0.25 < maker.size_mult < 1.0
    assert spread_on / spread_off == pytest.approx(maker.spread_mult, rel=0.02)
    assert lots_on / lots_off == pytest.approx(maker.size_mult, rel=0.02)


@pytest.mark.parametrize(("usage", "state"), [(0.2, "normal"), (0.7, "wide"), (0.95, "pulled")])
def test_margin_usage_widens_then_pulls(usage, state):
    model = _maker_world()
    maker = _btc_maker(model)
    true_margin = model.view.margin

    def margin(rows):  # the maker's IM / equity as the test sets it
        e, im, mm = true_margin(rows)
        own = np.asarray(rows) == maker.account
        e[own], im[own] = 1e6, usage * 1e6
        return e, im, mm

    model.view.margin = margin
    model.step()
    assert maker.margin_usage == pytest.approx(usage)
    quotes = _quotes(model, maker)
    if state == "pulled":
        assert maker.pulled and len(quotes) == 0
    elif state == "wide":
        assert maker.spread_mult == pytest.approx(1 + 3 * 0.5) and len(quotes) == 10
    else:
        assert maker.spread_mult == 1.0 and maker.size_mult == 1.0


def test_market_liquidity_scales_and_removes_quotes():
    model = _maker_world()
    _pin(model)
    maker = _btc_maker(model)
    full = int(_quotes(model, maker)["remaining"][0])
    _set_liquidity(model, 0.5)
    model.step()
    assert int(_quotes(model, maker)["remaining"][0]) == pytest.approx(full / 2, abs=1)
    _set_liquidity(model, 0.0)
    model.step()
    assert all(len(_quotes(model, m)) == 0 for m in model.makers)
    assert all(len(book.live_orders()) == 0 for book in model.books)
    _set_liquidity(model, 1.0)
    model.step()
    assert int(_quotes(model, maker)["remaining"][0]) == full
    check_conservation(model.ledger, model.marks)


def test_liquidity_out_of_range_is_an_error():
    model = _maker_world()
    _set_liquidity(model, 1.5)
    with pytest.raises(ValueError, match=r"^view\.liquidity = 1\.5 is invalid"):
        model.step()


@pytest.mark.parametrize(("key", "value"), [("vol_pull_ratio", 1.5), ("usage_pull", 0.1),
                                            ("min_size_frac", 2.0), ("max_spread_mult", 0.5)])
def test_bad_withdrawal_config_names_the_key(key, value):
    with pytest.raises(ValueError, match=rf"^agents\.market_maker\.withdrawal\.{key} = "):
        validate_withdrawal_config(LiquidityWithdrawalConfig(**{key: value}))


# ------------------------------------------------------------------ own fair value
def test_default_fair_value_is_the_index():
    model = _maker_world()
    _pin(model)
    maker = _btc_maker(model)
    model.step()
    assert maker.fair_value is None  # never formed: it quotes around the index
    assert maker._last_s == model.asset_prices[1]


def test_fair_value_follows_the_index_the_book_and_the_flow():
    # w = 0.5 towards the index, kappa = 1 % per order size absorbed; the index is pinned
    model = _maker_world(["agents.market_maker.index_weight=0.5",
                          "agents.market_maker.flow_impact=0.01"])
    index = _pin(model)[0]
    maker = _btc_maker(model)
    j = maker.instrument
    model.step()
    assert maker.fair_value == pytest.approx(index, rel=1e-12)  # starts at the index
    # a seller hits the maker's bids with 3 order sizes
    size = model.cfg.agents.market_maker.order_notional / index
    taker = model.open_trader(0, owner=-1, usd=1e7, base_notional=0.0)
    lots = round(3 * size / model.instruments[j].lot_size)
    ev = model.view.new_events(1)
    ev["kind"], ev["side"], ev["qty"], ev["owner"] = MARKET, -1, lots, taker
    model.submit(j, ev)
    taken = (model.ledger.position[maker.account, j] - maker._inv_at_quote) / size
    assert taken == pytest.approx(3.0, rel=1e-3)
    prev = maker.fair_value
    model.step()
    # ln s = ln s0 + 0.5 ln(I / s0) - 0.01 x 3: 3 % down at once, half of it recovered per step
    assert maker.fair_value == pytest.approx(prev * math.exp(-0.01 * taken), rel=1e-12)
    gap = math.log(maker.fair_value / index)
    model.step()
    assert math.log(maker.fair_value / index) == pytest.approx(0.5 * gap, rel=1e-9)
    # quotes sit around the fair value, below the index
    live = _quotes(model, maker)
    best_ask = live["price"][live["side"] < 0].min() * model.instruments[j].tick_size
    assert best_ask < index


def test_fair_value_config_is_checked():
    from sim.config import ConfigError

    with pytest.raises(ConfigError, match=r"agents\.market_maker\.book_weight = "):
        _maker_world(["agents.market_maker.index_weight=0.8",
                      "agents.market_maker.book_weight=0.3"])
    with pytest.raises(ConfigError, match=r"agents\.market_maker\.index_weight = "):
        _maker_world(["agents.market_maker.index_weight=0.0"])
