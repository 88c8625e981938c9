"""Options in the ledger: premium at the fill, positions that net to zero, cash settlement."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.ledger import HolderKind, InstrumentKind, Ledger, check_conservation


def _ledger(quote: int = 0):
    """USD, BTC; one option on BTC quoted in ``quote``; a clearing row, a treasury, 3 traders."""
    led = Ledger(["USD", "BTC"], [InstrumentKind.OPTION], [1], [quote])
    clr = led.open_account(HolderKind.CLEARING, protocol=0)
    led.set_clearing(0, clr)
    fee_row = led.open_account(HolderKind.TREASURY, protocol=0)
    rows = [led.open_account(owner=i, protocol=0) for i in range(3)]
    for r in rows:
        led.deposit(r, "USD", 100_000.0)
        led.deposit(r, "BTC", 2.0)
    return led, clr, fee_row, rows


def test_fill_moves_the_premium_and_the_positions():
    led, _clr, fee_row, (a, b, _c) = _ledger()
    # a buys 0.5 of the option from b at 1,200 per unit; fees 1 % of premium each
    led.settle_fills(0, [b], [a], [1], [1_200.0], [0.5], 0.01, 0.01, fee_row)
    assert led.position[a, 0] == 0.5 and led.position[b, 0] == -0.5
    assert led.collateral[a, 0] == pytest.approx(100_000.0 - 600.0 - 6.0)
    assert led.collateral[b, 0] == pytest.approx(100_000.0 + 600.0 - 6.0)
    assert led.entry_price[a, 0] == 1_200.0 and led.entry_price[b, 0] == 1_200.0
    assert led.collateral[fee_row, 0] == pytest.approx(12.0)
    # account value: cash plus the option at its mark (long +, short −)
    value = led.account_value([1.0, 60_000.0], [1_000.0])
    assert value[a] == pytest.approx(100_000.0 - 606.0 + 2 * 60_000.0 + 0.5 * 1_000.0)
    assert value[b] == pytest.approx(100_000.0 + 594.0 + 2 * 60_000.0 - 0.5 * 1_000.0)
    check_conservation(led, np.array([1_000.0]))


def test_settlement_pays_each_holder_q_times_payoff_and_flattens():
    led, clr, fee_row, (a, b, c) = _ledger()
    led.settle_fills(0, [b, b], [a, c], [1, 1], [900.0, 950.0], [0.3, 0.2], 0.0, 0.0, fee_row)
    before = led.collateral[:, 0].copy()
    paid = led.settle_option(0, 2_500.0)
    after = led.collateral[:, 0]
    assert paid == pytest.approx(0.5 * 2_500.0)
    assert after[a] - before[a] == pytest.approx(0.3 * 2_500.0)
    assert after[c] - before[c] == pytest.approx(0.2 * 2_500.0)
    assert after[b] - before[b] == pytest.approx(-0.5 * 2_500.0)
    assert after[clr] == pytest.approx(0.0, abs=1e-9)
    assert (led.position[:, 0] == 0.0).all() and (led.entry_price[:, 0] == 0.0).all()
    assert led.realised_pnl[a, 0] == pytest.approx(750.0)
    check_conservation(led, np.array([0.0]))


def test_inverse_option_settles_in_its_coin():
    led, clr, fee_row, (a, b, _c) = _ledger(quote=1)
    led.settle_fills(0, [b], [a], [1], [0.02], [1.0], 0.0, 0.0, fee_row)
    assert led.collateral[a, 1] == pytest.approx(2.0 - 0.02)
    led.settle_option(0, 0.05)  # (S − K) / S of a call settled in the money
    assert led.collateral[a, 1] == pytest.approx(2.0 - 0.02 + 0.05)
    assert led.collateral[b, 1] == pytest.approx(2.0 + 0.02 - 0.05)
    assert led.collateral[clr, 1] == pytest.approx(0.0, abs=1e-12)


def test_transfer_moves_a_short_with_its_liability_at_the_price():
    led, _clr, fee_row, (a, b, c) = _ledger()
    led.settle_fills(0, [b], [a], [1], [1_000.0], [1.0], 0.0, 0.0, fee_row)
    cash_b, cash_c = led.collateral[b, 0], led.collateral[c, 0]
    led.transfer_position(0, b, c, -1.0, 1_300.0)  # c takes b's short at the mark 1,300
    assert led.position[b, 0] == 0.0 and led.position[c, 0] == -1.0
    assert led.collateral[b, 0] == pytest.approx(cash_b - 1_300.0)
    assert led.collateral[c, 0] == pytest.approx(cash_c + 1_300.0)
    value = led.account_value([1.0, 60_000.0], [1_300.0])
    assert value[c] == pytest.approx(100_000.0 + 2 * 60_000.0)  # value-neutral at the mark


def test_inverse_option_may_settle_in_its_base_but_spot_may_not():
    Ledger(["USD", "BTC"], [InstrumentKind.OPTION], [1], [1])
    with pytest.raises(ValueError, match="base == quote"):
        Ledger(["USD", "BTC"], [InstrumentKind.PERP], [1], [1])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), st.sampled_from([1, -1]),
                          st.floats(1.0, 5_000.0), st.floats(0.1, 3.0)), min_size=1, max_size=25),
       st.floats(0.0, 20_000.0))
def test_any_fills_and_settlement_conserve_cash_and_net_positions(fills, payoff):
    led, clr, fee_row, rows = _ledger()
    for m, t, side, price, qty in fills:
        if m == t:
            continue
        led.settle_fills(0, [rows[m]], [rows[t]], [side], [price], [qty], 0.0002, 0.0005,
                         fee_row)
    assert abs(led.position[:, 0].sum()) < 1e-9
    led.settle_option(0, payoff)
    assert abs(led.collateral[:, 0].sum()) < 1e-9  # deposits are mirrored by the WORLD row
    assert abs(led.collateral[clr, 0]) < 1e-6 * (1.0 + payoff)
    check_conservation(led, np.array([0.0]))
