"""margin.risk.backtest: reference values from margin_methods.md §6 and hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from margin.risk.backtest import (
    BASEL_PLUS_FACTORS,
    backtest,
    christoffersen_independence,
    conditional_coverage,
    exceedances,
    kupiec_pof,
    traffic_light,
    transition_counts,
)

# ----------------------------------------------------------------- Kupiec


@pytest.mark.parametrize(
    ("x", "lr", "p"),
    [
        (0, 5.0252, 0.0250),
        (2, 0.1084, 0.742),
        (4, 0.7691, 0.381),
        (5, 1.9568, 0.162),
        (7, 5.4970, 0.019),
        (10, 12.9555, 0.0003),
    ],
)
def test_kupiec_reference_table(x, lr, p):
    res = kupiec_pof(x, 250, 0.99)
    assert res.statistic == pytest.approx(lr, abs=5e-5)
    assert res.p_value == pytest.approx(p, abs=1e-3)  # table p-values are rounded
    assert res.dof == 1 and res.n_obs == 250 and res.n_exceptions == x


def test_kupiec_brief_values_and_decisions():
    four, seven = kupiec_pof(4, 250), kupiec_pof(7, 250)
    assert round(four.statistic, 2) == 0.77
    assert round(seven.statistic, 2) == 5.50
    assert not four.reject and seven.reject  # critical value 3.8415 at 5%
    assert not kupiec_pof(7, 250, level=0.01).reject
    default = kupiec_pof(2, 250).statistic
    assert default == pytest.approx(kupiec_pof(2, 250, confidence=0.99).statistic)


def test_kupiec_edge_cases_are_finite():
    zero = kupiec_pof(0, 250)
    assert zero.statistic == pytest.approx(-2 * 250 * math.log(0.99))
    allx = kupiec_pof(250, 250)
    assert allx.statistic == pytest.approx(-2 * 250 * math.log(0.01))
    assert allx.reject and allx.p_value >= 0.0
    one = kupiec_pof(1, 1)
    for r in (zero, allx, one, kupiec_pof(0, 1)):
        assert np.isfinite(r.statistic) and np.isfinite(r.p_value)
    assert kupiec_pof(1, 100).statistic == pytest.approx(0.0, abs=1e-12)  # π̂ = α exactly


@settings(max_examples=100)
@given(st.integers(1, 2000), st.data())
def test_kupiec_nonnegative_and_minimal_at_expected(n, data):
    x = data.draw(st.integers(0, n))
    res = kupiec_pof(x, n, 0.95)
    assert res.statistic >= 0.0 and 0.0 <= res.p_value <= 1.0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ((-1, 250), "n_exceptions"),
        ((251, 250), "n_exceptions"),
        ((0, 0), "n_obs"),
        ((1.5, 10), "n_exceptions"),
    ],
)
def test_kupiec_input_errors(args, needle):
    with pytest.raises(ValueError, match=needle):
        kupiec_pof(*args)
    with pytest.raises(ValueError, match="confidence"):
        kupiec_pof(1, 10, confidence=1.0)
    with pytest.raises(ValueError, match="level"):
        kupiec_pof(1, 10, level=0.0)


# ----------------------------------------------------------------- Christoffersen


def test_christoffersen_hand_computed_clustered_sequence():
    hits = [0, 0, 0, 1, 1, 1, 0, 0, 0, 0]
    # transitions: 00 00 01 11 11 10 00 00 00 -> n00=5, n01=1, n10=1, n11=2
    assert transition_counts(hits) == (5, 1, 1, 2)
    # π01 = 1/6, π11 = 2/3, π = 3/9
    ll_alt = 5 * math.log(5 / 6) + math.log(1 / 6) + math.log(1 / 3) + 2 * math.log(2 / 3)
    ll_null = 6 * math.log(2 / 3) + 3 * math.log(1 / 3)
    expected = -2 * (ll_null - ll_alt)
    assert expected == pytest.approx(2.231436, abs=1e-6)
    res = christoffersen_independence(hits)
    assert res.statistic == pytest.approx(expected, rel=1e-12)
    assert res.n_obs == 9 and res.n_exceptions == 3 and res.dof == 1
    assert res.p_value == pytest.approx(0.13523, abs=1e-5)


def test_christoffersen_zero_count_cell():
    hits = np.array([0, 1, 0, 0, 1, 0, 0, 0, 1, 0], dtype=bool)
    assert transition_counts(hits) == (3, 3, 3, 0)  # n11 = 0 -> safe log
    # π01 = 1/2, π11 = 0, π = 1/3
    ll_alt = 6 * math.log(0.5)
    ll_null = 6 * math.log(2 / 3) + 3 * math.log(1 / 3)
    expected = -2 * (ll_null - ll_alt)
    assert christoffersen_independence(hits).statistic == pytest.approx(expected, rel=1e-12)


def test_christoffersen_degenerate_sequences_are_zero_not_nan():
    for hits in ([0] * 20, [1] * 20, [0, 1], [1, 0]):
        res = christoffersen_independence(hits)
        assert res.statistic == 0.0 and res.p_value == 1.0 and not res.reject
    # independent-looking sequence: π01 = π11 = π
    flat = christoffersen_independence([0, 0, 1, 1, 0, 0, 0, 1, 0, 0])
    assert flat.statistic == pytest.approx(0.0, abs=1e-12)


def test_christoffersen_rejects_heavy_clustering():
    hits = np.zeros(500, dtype=bool)
    hits[100:105] = True  # five exceptions in a row
    assert christoffersen_independence(hits).reject


def test_christoffersen_input_errors():
    with pytest.raises(ValueError, match="at least 2"):
        christoffersen_independence([1])
    with pytest.raises(ValueError, match="0/1"):
        christoffersen_independence([0, 2, 1])
    with pytest.raises(ValueError, match="one-dimensional"):
        christoffersen_independence([[0, 1], [1, 0]])


def test_conditional_coverage_is_sum_with_two_dof():
    hits = np.zeros(250, dtype=bool)
    hits[[10, 11, 12, 100, 200]] = True
    cc = conditional_coverage(hits)
    uc = kupiec_pof(5, 250)
    ind = christoffersen_independence(hits)
    assert cc.statistic == pytest.approx(uc.statistic + ind.statistic)
    assert cc.dof == 2
    assert cc.p_value == pytest.approx(math.exp(-cc.statistic / 2))  # χ²(2) survival function
    # critical value 5.9915 at 5%
    assert conditional_coverage(np.r_[np.zeros(10, bool), True]).dof == 2


# ----------------------------------------------------------------- Basel traffic light


def test_traffic_light_250_days_99pct():
    zones = [traffic_light(x).zone for x in range(13)]
    assert zones == ["green"] * 5 + ["yellow"] * 5 + ["red"] * 3
    assert [traffic_light(x).plus_factor for x in range(5, 10)] == [0.40, 0.50, 0.65, 0.75, 0.85]
    assert traffic_light(0).plus_factor == 0.0 and traffic_light(12).plus_factor == 1.0
    assert traffic_light(7).multiplier == pytest.approx(3.65)
    cum = [0.0811, 0.2858, 0.5432, 0.7581, 0.8922, 0.9588, 0.9863, 0.9960, 0.9989, 0.9997, 0.9999]
    for x, p in enumerate(cum):
        assert traffic_light(x).cumulative_probability == pytest.approx(p, abs=6e-5)
    assert BASEL_PLUS_FACTORS[9] == 0.85


def test_traffic_light_generalises():
    zones = [traffic_light(x, 750, 0.995).zone for x in range(15)]
    assert zones.index("yellow") == 7 and zones.index("red") == 13
    assert traffic_light(8, 750, 0.995).plus_factor is None
    assert traffic_light(8, 750, 0.995).multiplier is None


# ----------------------------------------------------------------- exceedances & full report


def test_exceedances_strict_and_validated():
    pnl = np.array([-1.0, -2.0, 3.0, -2.5])
    hits = exceedances(pnl, np.array([2.0, 2.0, 2.0, 2.0]))
    assert hits.tolist() == [False, False, False, True]  # a loss equal to margin is covered
    assert exceedances(pnl, 2.0).tolist() == hits.tolist()
    with pytest.raises(ValueError, match="shape"):
        exceedances(pnl, np.ones(3))
    with pytest.raises(ValueError, match="NaN"):
        exceedances(np.array([np.nan, 1.0]), np.ones(2))
    with pytest.raises(ValueError, match="NaN"):
        exceedances(np.ones(2), np.array([1.0, np.nan]))


def test_backtest_correct_and_undersized_margin():
    rng = np.random.default_rng(2024)
    pnl = rng.standard_normal(250)
    good = backtest(pnl, np.full(250, 2.326348))  # true 99% quantile of N(0, 1)
    assert good.n_obs == 250
    assert good.n_exceptions == int(np.count_nonzero(-pnl > 2.326348))
    assert good.kupiec.statistic == pytest.approx(kupiec_pof(good.n_exceptions, 250).statistic)
    assert good.traffic_light.zone == "green" and not good.kupiec.reject
    bad = backtest(pnl, np.full(250, 1.0))  # covers only ~84%
    assert bad.n_exceptions > 20 and bad.kupiec.reject and bad.conditional.reject
    assert bad.traffic_light.zone == "red"
    assert bad.exception_rate == pytest.approx(bad.n_exceptions / 250)
