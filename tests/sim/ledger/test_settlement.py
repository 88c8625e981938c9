"""Hand-computed fills, fees, funding and position transfers."""

from __future__ import annotations

import numpy as np
import pytest

from sim.ledger import HolderKind, InstrumentKind, Ledger, check_conservation

SPOT, PERP = 0, 1


class World:
    """USD/BTC spot (0) and BTC/USD perp (1); clearing, treasury, insurance, 3 traders."""

    def __init__(self):
        kinds = [InstrumentKind.SPOT, InstrumentKind.PERP]
        self.led = Ledger(["USD", "BTC"], kinds, [1, 1], [0, 0])
        self.clr = self.led.open_account(HolderKind.CLEARING, protocol=0)
        self.tre = self.led.open_account(HolderKind.TREASURY, protocol=0)
        self.ins = self.led.open_account(HolderKind.INSURANCE, protocol=0)
        self.led.set_clearing(PERP, self.clr)
        self.a, self.b, self.c = (self.led.open_account(owner=i, protocol=0) for i in range(3))
        for r in (self.a, self.b, self.c):
            self.led.deposit(r, "USD", 1000.0)

    def fill(self, maker, taker, side, price, qty, instrument=PERP, maker_fee=0.0, taker_fee=0.0):
        self.led.settle_fills(
            instrument, [maker], [taker], [side], [price], [qty], maker_fee, taker_fee, self.tre
        )
        check_conservation(self.led, marks=[np.nan, price])

    def state(self, row):
        return float(self.led.position[row, PERP]), float(self.led.entry_price[row, PERP])


def test_open_increase_reduce_flip_close():
    w = World()
    led, a, b, c = w.led, w.a, w.b, w.c
    w.fill(maker=b, taker=a, side=+1, price=100.0, qty=2.0)  # open
    assert w.state(a) == (2.0, 100.0) and w.state(b) == (-2.0, 100.0)
    w.fill(maker=c, taker=a, side=+1, price=110.0, qty=2.0)  # increase -> average 105
    assert w.state(a) == (4.0, 105.0) and w.state(c) == (-2.0, 110.0)
    w.fill(maker=b, taker=a, side=-1, price=120.0, qty=1.0)  # a reduces (+15), b reduces (-20)
    assert w.state(a) == (3.0, 105.0) and w.state(b) == (-1.0, 100.0)
    assert led.realised_pnl[[a, b], PERP].tolist() == [15.0, -20.0]
    assert led.collateral[w.clr, 0] == 5.0
    w.fill(maker=c, taker=a, side=-1, price=90.0, qty=5.0)  # both flip
    assert w.state(a) == (-2.0, 90.0) and w.state(c) == (3.0, 90.0)
    assert led.realised_pnl[[a, c], PERP].tolist() == [15.0 - 45.0, 40.0]
    assert led.collateral[w.clr, 0] == 10.0
    w.fill(maker=b, taker=a, side=+1, price=80.0, qty=2.0)  # a closes (+20), b adds at 80
    assert w.state(a) == (0.0, 0.0)
    pos_b, entry_b = w.state(b)
    assert pos_b == -3.0 and entry_b == pytest.approx(260.0 / 3.0)
    assert led.realised_pnl[[a, b, c, w.clr], PERP].tolist() == [-10.0, -20.0, 40.0, -10.0]
    assert led.collateral[[a, b, c, w.clr], 0].tolist() == [990.0, 980.0, 1040.0, -10.0]
    # the clearing balance is the traders' aggregate unrealised P&L at any mark
    for mark in (50.0, 95.0, 300.0):
        upnl = led.unrealised_pnl([np.nan, mark])
        assert upnl[b] == pytest.approx(-3.0 * (mark - 260.0 / 3.0))
        assert upnl[c] == pytest.approx(3.0 * (mark - 90.0))
        assert upnl.sum() == pytest.approx(led.collateral[w.clr, 0])
        check_conservation(led, marks=[np.nan, mark])
    assert led.notional([np.nan, 95.0])[[a, b, c]].tolist() == [0.0, 285.0, 285.0]


def test_batch_settlement_is_sequential():
    w = World()
    led = w.led
    led.settle_fills(PERP, [w.b, w.c, w.b], [w.a, w.a, w.a], [1, 1, -1], [100.0, 110.0, 120.0],
                     [2.0, 2.0, 1.0], 0.0, 0.0, w.tre)
    assert w.state(w.a) == (3.0, 105.0)
    assert led.realised_pnl[w.a, PERP] == 15.0
    check_conservation(led, marks=[np.nan, 120.0])


def test_fees_go_to_treasury_and_rebates_come_from_it():
    w = World()
    led = w.led
    w.fill(maker=w.b, taker=w.a, side=+1, price=100.0, qty=2.0, maker_fee=0.0002, taker_fee=0.0005)
    assert led.collateral[w.a, 0] == pytest.approx(1000.0 - 0.1)
    assert led.collateral[w.b, 0] == pytest.approx(1000.0 - 0.04)
    assert led.collateral[w.tre, 0] == pytest.approx(0.14)
    assert led.fees_paid[[w.a, w.b, w.tre], PERP] == pytest.approx([0.1, 0.04, -0.14])
    w.fill(maker=w.c, taker=w.a, side=-1, price=100.0, qty=2.0, maker_fee=-0.0001, taker_fee=0.0005)
    assert led.collateral[w.c, 0] == pytest.approx(1000.0 + 0.02)
    assert led.collateral[w.tre, 0] == pytest.approx(0.14 + 0.1 - 0.02)
    assert led.fees_paid[w.tre, PERP] == pytest.approx(-0.22)


def test_spot_swap_with_borrow_and_fees():
    w = World()
    led, a, b = w.led, w.a, w.b
    led.deposit(b, "BTC", 1.0)
    w.fill(maker=b, taker=a, side=+1, price=20_000.0, qty=0.5, instrument=SPOT, taker_fee=0.001)
    assert led.collateral[a].tolist() == [1000.0 - 10_000.0 - 10.0, 0.5]  # negative USD: a borrow
    assert led.collateral[b].tolist() == [11_000.0, 0.5]
    assert led.collateral[w.tre, 0] == 10.0
    assert led.fees_paid[a, SPOT] == 10.0
    assert (led.position == 0.0).all() and (led.realised_pnl == 0.0).all()
    w.fill(maker=a, taker=b, side=+1, price=21_000.0, qty=0.5, instrument=SPOT)  # b buys back
    assert led.collateral[a].tolist() == [1000.0 - 10.0 + 500.0, 0.0]
    check_conservation(led)


def test_funding_both_signs():
    w = World()
    led, a, b = w.led, w.a, w.b
    w.fill(maker=b, taker=a, side=+1, price=100.0, qty=2.0)
    assert led.apply_funding(PERP, 0.001, 100.0) == pytest.approx(0.2)  # longs pay
    assert led.collateral[[a, b], 0] == pytest.approx([999.8, 1000.2])
    assert led.collateral[w.clr, 0] == 0.0
    assert led.funding_paid[[a, b, w.clr], PERP] == pytest.approx([0.2, -0.2, 0.0])
    assert led.apply_funding(PERP, -0.0005, 120.0) == pytest.approx(-0.12)  # longs receive
    assert led.collateral[[a, b], 0] == pytest.approx([999.92, 1000.08])
    assert led.funding_paid[[a, b], PERP] == pytest.approx([0.08, -0.08])
    check_conservation(led, marks=[np.nan, 120.0])
    assert led.apply_funding(PERP, 0.0, 120.0) == 0.0


def test_transfer_position_backstop_and_adl():
    w = World()
    led, a, b = w.led, w.a, w.b
    w.fill(maker=b, taker=a, side=+1, price=100.0, qty=3.0)
    # backstop: the insurance fund takes 1 of a's long at 90
    assert led.transfer_position(PERP, a, w.ins, 1.0, 90.0) == (-10.0, 0.0)
    assert w.state(a) == (2.0, 100.0) and w.state(w.ins) == (1.0, 90.0)
    assert led.collateral[w.clr, 0] == 10.0
    check_conservation(led, marks=[np.nan, 90.0])
    # ADL: a's remaining long is closed against b's short at 95
    assert led.transfer_position(PERP, a, b, 2.0, 95.0) == (-10.0, 10.0)
    assert w.state(a) == (0.0, 0.0) and w.state(b) == (-1.0, 100.0)
    assert led.collateral[[a, b, w.clr], 0].tolist() == [980.0, 1010.0, 10.0]
    check_conservation(led, marks=[np.nan, 95.0])
    # a short moves with a negative qty
    assert led.transfer_position(PERP, b, a, -1.0, 100.0) == (0.0, 0.0)
    assert w.state(a) == (-1.0, 100.0)
    for qty, match in ((1.0, "sign"), (-2.0, "no larger"), (0.0, "non-zero")):
        with pytest.raises(ValueError, match=match):
            led.transfer_position(PERP, a, b, qty, 100.0)
    with pytest.raises(ValueError, match="same row"):
        led.transfer_position(PERP, a, a, -1.0, 100.0)
    with pytest.raises(ValueError, match="WORLD"):
        led.transfer_position(PERP, a, 0, -1.0, 100.0)
    with pytest.raises(ValueError, match="price must be > 0"):
        led.transfer_position(PERP, a, b, -1.0, 0.0)


def test_valuation_with_two_quote_assets():
    led = Ledger(["USD", "BTC", "ETH"], [InstrumentKind.PERP, InstrumentKind.PERP], [1, 2], [0, 1])
    c0 = led.open_account(HolderKind.CLEARING, protocol=0)
    c1 = led.open_account(HolderKind.CLEARING, protocol=1)
    fee = led.open_account(HolderKind.TREASURY)
    led.set_clearing(0, c0)
    with pytest.raises(ValueError, match="different quote"):
        led.set_clearing(1, c0)
    led.set_clearing(1, c1)
    a, b = led.open_account(), led.open_account()
    led.deposit(a, "USD", 100.0)
    led.deposit(a, "BTC", 1.0)
    led.settle_fills(0, [b], [a], [1], [100.0], [1.0], 0.0, 0.0, fee)
    led.settle_fills(1, [b], [a], [-1], [0.05], [2.0], 0.0, 0.0, fee)
    marks = np.array([110.0, 0.06])
    by_instr = led.unrealised_pnl_by_instrument(marks)
    assert by_instr[a] == pytest.approx([10.0, -0.02])
    prices = np.array([1.0, 110.0, 6.6])
    # 100 USD + 1 BTC * 110 + 10 USD + (-0.02 BTC) * 110
    assert led.account_value(prices, marks)[a] == pytest.approx(100.0 + 110.0 + 10.0 - 2.2)
    non_clearing = led.kind != HolderKind.CLEARING
    supply_value = (led.minted - led.burned) @ prices
    held = led.account_value(prices, marks)[non_clearing].sum()
    assert held == pytest.approx(supply_value, abs=1e-9)
    with pytest.raises(ValueError, match="marks must have shape"):
        led.unrealised_pnl([1.0])
    with pytest.raises(ValueError, match="asset_prices must be finite"):
        led.account_value([1.0, np.nan, 1.0], marks)


def test_set_clearing_errors():
    w = World()
    led = w.led
    with pytest.raises(ValueError, match="not a perpetual"):
        led.set_clearing(SPOT, w.clr)
    with pytest.raises(ValueError, match="not a CLEARING row"):
        led.set_clearing(PERP, w.tre)
    w.fill(maker=w.b, taker=w.a, side=+1, price=100.0, qty=1.0)
    other = led.open_account(HolderKind.CLEARING)
    with pytest.raises(ValueError, match="open positions"):
        led.set_clearing(PERP, other)


def test_settle_fills_errors_leave_ledger_unchanged():
    w = World()
    led = w.led
    before = led.snapshot()
    good = {"instrument": PERP, "maker_rows": [w.b], "taker_rows": [w.a], "taker_side": [1],
            "price": [100.0], "qty": [1.0], "maker_fee_rate": 0.0, "taker_fee_rate": 0.0,
            "fee_row": w.tre}
    bad = [
        ({"taker_side": [0]}, "taker_side must hold only"),
        ({"price": [0.0]}, "price must be > 0"),
        ({"qty": [np.nan]}, "qty must be finite"),
        ({"qty": [-1.0]}, "qty must be > 0"),
        ({"taker_rows": [w.a, w.a]}, "equal length"),
        ({"maker_rows": [0]}, "maker_rows holds a WORLD or CLEARING"),
        ({"taker_rows": [w.clr]}, "taker_rows holds a WORLD or CLEARING"),
        ({"taker_rows": [99]}, "taker_rows holds rows outside"),
        ({"maker_rows": [1.0]}, "maker_rows must be a 1-D integer array"),
        ({"fee_row": w.clr}, "fee_row .* CLEARING"),
        ({"instrument": 2}, "instrument 2 is out of range"),
        ({"maker_fee_rate": [0.0, 0.0]}, "maker_fee_rate must be a number or an array of 1"),
        ({"taker_fee_rate": np.inf}, "taker_fee_rate must be finite"),
    ]
    for override, match in bad:
        with pytest.raises(ValueError, match=match):
            led.settle_fills(**{**good, **override})
    after = led.snapshot()
    for key, value in before.items():
        np.testing.assert_array_equal(after[key], value)
    fresh = Ledger(["USD", "BTC"], [InstrumentKind.PERP], [1], [0])
    t1, t2 = fresh.open_account(), fresh.open_account()
    with pytest.raises(ValueError, match="no CLEARING row"):
        fresh.settle_fills(0, [t1], [t2], [1], [1.0], [1.0], 0.0, 0.0, t1)
    with pytest.raises(ValueError, match="no CLEARING row"):
        fresh.apply_funding(0, 0.001, 1.0)
    led.settle_fills(PERP, [], [], [], [], [], 0.0, 0.0, w.tre)  # empty batch is a no-op
    with pytest.raises(ValueError, match="mark_price must be > 0"):
        led.apply_funding(PERP, 0.001, -1.0)
    with pytest.raises(ValueError, match="not a perpetual"):
        led.apply_funding(SPOT, 0.001, 1.0)
