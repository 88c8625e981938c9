"""check_conservation accepts honest ledgers and catches each kind of corruption."""

from __future__ import annotations

import numpy as np
import pytest

from sim.ledger import (
    HolderKind,
    InstrumentKind,
    Ledger,
    LedgerInvariantError,
    check_conservation,
    conservation_residuals,
)

MARKS = [np.nan, 105.0]


def busy_ledger():
    """A ledger after deposits, spot and perp fills with fees, funding and a transfer."""
    led = Ledger(["USD", "BTC"], [InstrumentKind.SPOT, InstrumentKind.PERP], [1, 1], [0, 0])
    clr = led.open_account(HolderKind.CLEARING, protocol=0)
    tre = led.open_account(HolderKind.TREASURY, protocol=0)
    led.set_clearing(1, clr)
    a, b, c = (led.open_account(owner=i) for i in range(3))
    for r in (a, b, c):
        led.deposit(r, "USD", 10_000.0)
        led.deposit(r, "BTC", 1.0)
    led.settle_fills(0, [a], [b], [1], [101.0], [0.3], 0.0001, 0.0004, tre)
    led.settle_fills(1, [a, c, a], [b, b, c], [1, 1, -1], [100.0, 103.0, 99.0], [2.0, 1.5, 0.7],
                     0.0001, 0.0004, tre)
    led.apply_funding(1, 0.0003, 100.0)
    led.transfer_position(1, b, a, 1.0, 98.0)
    led.mint(tre, "BTC", 0.25)
    return led, {"clr": clr, "tre": tre, "a": a, "b": b, "c": c}


def corrupt(led, name, index, delta):
    """Bypass the ledger's API (tests only) to break one number."""
    led._rows[name][index] += delta


def raises_on(led, match, marks=None):
    with pytest.raises(LedgerInvariantError, match=match) as info:
        check_conservation(led, marks=marks)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_honest_ledger_passes_with_and_without_marks():
    led, _ = busy_ledger()
    check_conservation(led)
    check_conservation(led, marks=MARKS)
    residuals = conservation_residuals(led, marks=MARKS)
    kinds = {"supply", "open_interest", "clearing", "clearing_marks", "flows"}
    assert {r.invariant for r in residuals} == kinds
    assert all(r.ok for r in residuals)
    # the identities hold to round-off, far inside the tolerance
    assert max(abs(r.discrepancy) for r in residuals) < 1e-9


def test_bumped_collateral_breaks_supply():
    led, rows = busy_ledger()
    corrupt(led, "collateral", (rows["a"], 1), 1e-6)
    msg = raises_on(led, "supply invariant broken for asset BTC")
    assert "discrepancy 1e-06" in msg


def test_bumped_world_row_breaks_supply():
    led, _ = busy_ledger()
    corrupt(led, "collateral", (0, 0), -0.01)
    raises_on(led, "supply invariant broken for asset USD")


def test_value_moved_into_clearing_breaks_clearing_identity():
    led, rows = busy_ledger()
    corrupt(led, "collateral", (rows["a"], 0), -1.0)
    corrupt(led, "collateral", (rows["clr"], 0), 1.0)  # supply still holds
    raises_on(led, r"clearing invariant broken for clearing row 1 \(USD\)")


def test_clearing_holding_another_asset_is_caught():
    led, rows = busy_ledger()
    corrupt(led, "collateral", (rows["a"], 1), -0.5)
    corrupt(led, "collateral", (rows["clr"], 1), 0.5)
    raises_on(led, "clearing row 1 asset BTC")


def test_bumped_position_breaks_open_interest():
    led, rows = busy_ledger()
    corrupt(led, "position", (rows["c"], 1), 1e-7)
    raises_on(led, r"open_interest invariant broken for perp 1 \(BTC/USD\)")


def test_bumped_entry_breaks_clearing_identity():
    led, rows = busy_ledger()
    assert led.position[rows["c"], 1] != 0.0
    corrupt(led, "entry_price", (rows["c"], 1), 0.01)
    raises_on(led, "clearing invariant broken")


def test_marks_identity_is_checked_when_marks_given():
    led, rows = busy_ledger()
    corrupt(led, "entry_price", (rows["c"], 1), 0.01)
    bad = {r.invariant for r in conservation_residuals(led, marks=MARKS) if not r.ok}
    assert bad == {"clearing", "clearing_marks"}


@pytest.mark.parametrize("name", ["realised_pnl", "fees_paid", "funding_paid"])
def test_bumped_report_breaks_flows(name):
    led, rows = busy_ledger()
    corrupt(led, name, (rows["b"], 1), 0.5)
    raises_on(led, f"flows invariant broken for perp 1 \\(BTC/USD\\) {name}")


@pytest.mark.parametrize(
    ("name", "index", "match"),
    [
        ("collateral", (2, 0), "non-finite"),
        ("position", (3, 0), "spot instrument holds a position"),
        ("position", (1, 1), "WORLD/CLEARING row 1 holds a position"),
    ],
)
def test_structure_errors(name, index, match):
    led, _ = busy_ledger()
    delta = np.nan if match == "non-finite" else 1.0
    corrupt(led, name, index, delta)
    raises_on(led, match)


def test_flat_position_with_entry_is_caught():
    led, rows = busy_ledger()
    led._rows["entry_price"][rows["tre"], 1] = 100.0
    raises_on(led, "flat position with non-zero entry")


def test_rtol_must_be_non_negative():
    led, _ = busy_ledger()
    with pytest.raises(ValueError, match="rtol"):
        check_conservation(led, rtol=-1.0)
    check_conservation(led, rtol=0.0)  # the round-off bound alone suffices


def test_tolerance_tracks_magnitude_of_history():
    """After a large round trip, tiny round-off passes but a visible theft does not."""
    led, rows = busy_ledger()
    for _ in range(200):
        led.deposit(rows["a"], "USD", 1e12)
        led.transfer(rows["a"], rows["b"], "USD", 1e12 / 3.0)
        led.transfer(rows["b"], rows["a"], "USD", 1e12 / 3.0)
        led.withdraw(rows["a"], "USD", 1e12)
    check_conservation(led, rtol=0.0)
    (usd,) = [r for r in conservation_residuals(led) if r.subject == "asset USD"]
    assert usd.tolerance < 5.0  # 4e15 USD moved; worst-case round-off is about 0.2
    corrupt(led, "collateral", (rows["a"], 0), 10.0)
    raises_on(led, "supply invariant broken for asset USD")


def test_monitor_keeps_the_worst_imbalance_over_checks():
    """A corruption seen at one check stays in the report after it is repaired."""
    from sim.ledger import ConservationMonitor

    led, rows = busy_ledger()
    mon = ConservationMonitor()
    mon.check(led, MARKS, step=1)
    corrupt(led, "collateral", (rows["a"], 0), 0.01)
    with pytest.raises(LedgerInvariantError, match="supply invariant broken for asset USD"):
        mon.check(led, MARKS, step=2)
    corrupt(led, "collateral", (rows["a"], 0), -0.01)
    mon.check(led, MARKS, step=3)
    rep = mon.report()
    assert rep["steps_checked"] == 3 and rep["ok"] is False
    usd = rep["assets"]["USD"]
    assert usd["ok"] is False and usd["worst_step"] == 2
    assert usd["worst_abs"] == pytest.approx(0.01) and abs(usd["final"]) < 1e-9
    assert usd["worst_ratio"] > 1.0 and usd["final_tolerance"] < 1e-6
    assert rep["assets"]["BTC"]["ok"] is True
    assert list(rep["perps"]) == ["perp 1 (BTC/USD)"]
    assert rep["clearing"]["subject"].startswith("clearing")
    with pytest.raises(ValueError, match="rtol"):
        ConservationMonitor(rtol=-1.0)
