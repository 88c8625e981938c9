"""Accounts, collateral moves, growth and argument errors of the ledger."""

from __future__ import annotations

import numpy as np
import pytest

from sim.ledger import HolderKind, InstrumentKind, Ledger, check_conservation


def make_ledger(**kwargs):
    kinds = [InstrumentKind.SPOT, InstrumentKind.PERP]
    return Ledger(["USD", "BTC"], kinds, [1, 1], [0, 0], **kwargs)


def test_world_row_is_created_first():
    led = make_ledger()
    assert led.n_accounts == 1
    assert led.world_row == 0
    assert led.kind[0] == HolderKind.WORLD
    assert led.collateral.shape == (1, 2)
    assert led.position.shape == (1, 2)
    check_conservation(led)


def test_open_account_records_kind_owner_protocol():
    led = make_ledger()
    t = led.open_account(HolderKind.TREASURY, owner=-1, protocol=3)
    a = led.open_account(owner=7, protocol=3)
    b = led.open_account(owner=7)
    assert (t, a, b) == (1, 2, 3)
    expected = [HolderKind.WORLD, HolderKind.TREASURY, HolderKind.TRADER, HolderKind.TRADER]
    assert led.kind.tolist() == expected
    assert led.owner.tolist() == [-1, -1, 7, 7]
    assert led.protocol.tolist() == [-1, 3, 3, -1]


def test_growth_keeps_earlier_data():
    led = make_ledger(initial_capacity=2)
    rows = [led.open_account(owner=i, protocol=i % 3) for i in range(1000)]
    for i, r in enumerate(rows):
        led.deposit(r, "USD", float(i))
        led.deposit(r, "BTC", 0.5 * i)
    more = [led.open_account(HolderKind.INSURANCE, owner=5000 + i) for i in range(300)]
    assert led.n_accounts == 1301
    assert led.collateral.shape == (1301, 2)
    assert led.position.shape == (1301, 2)
    np.testing.assert_array_equal(led.collateral[rows, 0], np.arange(1000.0))
    np.testing.assert_array_equal(led.collateral[rows, 1], 0.5 * np.arange(1000.0))
    np.testing.assert_array_equal(led.owner[rows], np.arange(1000))
    np.testing.assert_array_equal(led.protocol[rows], np.arange(1000) % 3)
    assert (led.kind[more] == HolderKind.INSURANCE).all()
    assert led.collateral[0, 0] == -np.arange(1000.0).sum()
    check_conservation(led)


def test_views_are_live_and_read_only():
    led = make_ledger()
    a = led.open_account()
    led.deposit(a, "USD", 5.0)
    assert led.collateral[a, 0] == 5.0
    with pytest.raises(ValueError):
        led.collateral[a, 0] = 1.0
    with pytest.raises(ValueError):
        led.minted[0] = 1.0


def test_deposit_withdraw_mirror_world():
    led = make_ledger()
    a = led.open_account()
    led.deposit(a, "USD", 100.0)
    led.deposit(a, 1, 2.0)
    led.withdraw(a, "USD", 30.0)
    assert led.collateral[a].tolist() == [70.0, 2.0]
    assert led.collateral[0].tolist() == [-70.0, -2.0]
    led.withdraw(a, "BTC", 2.0)  # exactly the balance
    assert led.collateral[a, 1] == 0.0
    check_conservation(led)


def test_transfer_and_allow_negative():
    led = make_ledger()
    a, b = led.open_account(), led.open_account()
    ins = led.open_account(HolderKind.INSURANCE)
    led.deposit(a, "USD", 10.0)
    led.transfer(a, b, "USD", 4.0)
    assert led.collateral[[a, b], 0].tolist() == [6.0, 4.0]
    with pytest.raises(ValueError, match="exceeds the balance"):
        led.transfer(a, b, "USD", 7.0)
    led.transfer(a, ins, "USD", 7.0, allow_negative=True)
    assert led.collateral[a, 0] == -1.0
    led.transfer(led.world_row, b, "USD", 1.0)  # from WORLD is a deposit
    assert led.collateral[0, 0] == -11.0
    check_conservation(led)


def test_mint_and_burn_are_recorded():
    led = make_ledger()
    a = led.open_account()
    led.mint(a, "BTC", 3.0)
    led.burn(a, "BTC", 1.0)
    assert led.collateral[a, 1] == 2.0
    assert led.minted.tolist() == [0.0, 3.0]
    assert led.burned.tolist() == [0.0, 1.0]
    check_conservation(led)
    with pytest.raises(ValueError, match="burn"):
        led.burn(a, "BTC", 2.5)


def test_snapshot_is_a_copy():
    led = make_ledger()
    a = led.open_account(owner=4)
    led.deposit(a, "USD", 1.0)
    snap = led.snapshot()
    led.deposit(a, "USD", 1.0)
    assert snap["collateral"][a, 0] == 1.0
    assert snap["owner"].tolist() == [-1, 4]
    assert {"position", "entry_price", "realised_pnl", "fees_paid", "funding_paid", "minted",
            "burned", "clearing_row", "kind", "protocol"} <= set(snap)


def _one_line_error(func, *args, match, **kwargs):
    with pytest.raises(ValueError, match=match) as info:
        func(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_errors_are_one_line_and_name_the_argument():
    led = make_ledger()
    a, b = led.open_account(), led.open_account()
    clr = led.open_account(HolderKind.CLEARING)
    led.deposit(a, "USD", 10.0)
    before = led.snapshot()
    msg = _one_line_error(led.withdraw, a, "USD", 10.5, match="amount 10.5 of withdrawal exceeds")
    assert "USD" in msg and f"row {a}" in msg
    _one_line_error(led.deposit, a, "EUR", 1.0, match="asset 'EUR' is unknown")
    _one_line_error(led.deposit, a, 5, 1.0, match="asset 5 is out of range")
    _one_line_error(led.deposit, a, "USD", -1.0, match="amount must be >= 0")
    _one_line_error(led.deposit, a, "USD", float("nan"), match="amount must be finite")
    _one_line_error(led.deposit, a, "USD", "ten", match="amount must be a number")
    _one_line_error(led.deposit, 99, "USD", 1.0, match="row 99 is not an open account")
    _one_line_error(led.deposit, 1.5, "USD", 1.0, match="row must be an integer")
    _one_line_error(led.deposit, True, "USD", 1.0, match="row must be an integer")
    _one_line_error(led.deposit, 0, "USD", 1.0, match="row 0 is the WORLD row")
    _one_line_error(led.deposit, clr, "USD", 1.0, match="CLEARING row")
    _one_line_error(led.transfer, a, a, "USD", 1.0, match="same row")
    _one_line_error(led.transfer, a, clr, "USD", 1.0, match="dst .* CLEARING")
    _one_line_error(led.mint, clr, "USD", 1.0, match="CLEARING")
    _one_line_error(led.open_account, HolderKind.WORLD, match="kind must be")
    _one_line_error(led.open_account, 9, match="kind must be")
    _one_line_error(led.open_account, owner=-2, match="owner and protocol")
    after = led.snapshot()
    for key, value in before.items():  # nothing was altered by the failed calls
        np.testing.assert_array_equal(after[key][: len(value)], value)
    assert b == 2


def test_constructor_validation():
    with pytest.raises(ValueError, match="distinct"):
        Ledger(["USD", "USD"], [], [], [])
    with pytest.raises(ValueError, match="equal length"):
        Ledger(["USD", "BTC"], [1], [1, 1], [0])
    with pytest.raises(ValueError, match="instrument_kind must be"):
        Ledger(["USD", "BTC"], [3], [1], [0])
    with pytest.raises(ValueError, match="instrument_quote must be asset indices"):
        Ledger(["USD", "BTC"], [1], [1], [2])
    with pytest.raises(ValueError, match="base == quote"):
        Ledger(["USD", "BTC"], [1], [0], [0])
    with pytest.raises(ValueError, match="initial_capacity"):
        Ledger(["USD"], [], [], [], initial_capacity=0)
    led = Ledger(["USD"], [], [], [])  # a ledger of balances only
    a = led.open_account()
    led.deposit(a, "USD", 1.0)
    check_conservation(led)


def test_valuation_of_chosen_rows_checks_them():
    led = make_ledger()
    a = led.open_account()
    led.deposit(a, "USD", 10.0)
    prices, marks = np.array([1.0, 100.0]), np.array([np.nan, 100.0])
    world = led.account_value(prices, marks)[0]  # the mirror of the deposit
    assert led.account_value(prices, marks, rows=[a, 0, a]).tolist() == [10.0, world, 10.0]
    assert led.notional(marks, rows=np.zeros(0, np.int64)).shape == (0,)
    assert led.unrealised_pnl_by_instrument(marks, rows=(a,)).shape == (1, 2)
    _one_line_error(led.account_value, prices, marks, rows=[a, 5],
                    match=r"rows must be open accounts in \[0, 2\)")
    _one_line_error(led.notional, marks, rows=[-1], match="rows must be open accounts")
    _one_line_error(led.notional, marks, rows=[0.5], match="rows must be a 1-D array of integers")
    _one_line_error(led.unrealised_pnl_by_instrument, marks, rows=[[a]],
                    match="rows must be a 1-D array of integers")
