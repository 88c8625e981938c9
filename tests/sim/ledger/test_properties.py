"""Property tests: random operation sequences keep every invariant.

A hypothesis state machine drives deposits, withdrawals, transfers, mint/burn,
spot and perp fills (with fees and rebates), exact closes, funding, mark moves,
position transfers and new accounts over three assets and five instruments (two
quote assets, two clearing rows). After every step it checks
:func:`check_conservation`, value conservation at current prices, and an
independent shadow book kept with plain arithmetic: cash flows per row and
asset, net perp quantity and the cash-flow identity
``realised - position * entry == -sum(dq * price)`` of average-cost accounting.
A separate test compares average-cost results with an exact rational
reference.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from sim.ledger import (
    HolderKind,
    InstrumentKind,
    Ledger,
    LedgerInvariantError,
    check_conservation,
    conservation_residuals,
)

ASSETS = ["USD", "BTC", "ETH"]
S, P = InstrumentKind.SPOT, InstrumentKind.PERP
KIND = [S, P, P, P, S]
BASE = [1, 1, 2, 2, 2]
QUOTE = [0, 0, 0, 1, 1]  # perp 3 (ETH/BTC) settles in BTC
PERPS = [1, 2, 3]
REF = np.array([100.0, 100.0, 10.0, 0.1, 0.1])

pick = st.integers(0, 1_000)
factor = st.floats(0.5, 2.0)
amount = st.floats(0.0, 1e6)
fill = st.tuples(pick, pick, st.booleans(), factor, st.floats(1e-3, 50.0))


class LedgerMachine(RuleBasedStateMachine):
    """Random operations against a ledger and a shadow book."""

    @initialize()
    def setup(self):
        led = Ledger(ASSETS, KIND, BASE, QUOTE, initial_capacity=2)
        self.clr = [led.open_account(HolderKind.CLEARING, protocol=p) for p in (0, 1)]
        for j, c in zip(PERPS, (0, 0, 1), strict=True):
            led.set_clearing(j, self.clr[c])
        self.fee_rows = [
            led.open_account(HolderKind.TREASURY, protocol=0),
            led.open_account(HolderKind.TREASURY, protocol=1),
            led.open_account(HolderKind.INSURANCE, protocol=0),
        ]
        self.traders = [led.open_account(owner=i) for i in range(4)]
        self.led = led
        self.marks = np.where(np.isin(np.arange(5), PERPS), REF, np.nan)
        self.cash = defaultdict(float)  # (row, asset) -> net flows other than realised P&L
        self.dq = defaultdict(float)  # (row, perp) -> net quantity bought
        self.flow = defaultdict(float)  # (row, perp) -> sum(dq * price)
        self.gross = 1.0  # sum of |amounts|, scales the shadow comparison

    # ------------------------------------------------------------ helpers
    def trader(self, i):
        return self.traders[i % len(self.traders)]

    def holder(self, i):
        rows = self.traders + self.fee_rows
        return rows[i % len(rows)]

    def book_cash(self, row, asset, x):
        self.cash[row, asset] += x
        self.gross += abs(x)

    def book_trade(self, row, j, dq, price):
        if KIND[j] == S:
            self.book_cash(row, BASE[j], dq)
            self.book_cash(row, QUOTE[j], -dq * price)
        else:
            self.dq[row, j] += dq
            self.flow[row, j] += dq * price
            self.gross += abs(dq * price)

    # -------------------------------------------------------------- rules
    @rule(i=pick, a=st.integers(0, 2), x=amount)
    def deposit(self, i, a, x):
        row = self.holder(i)
        self.led.deposit(row, ASSETS[a], x)
        self.book_cash(row, a, x)

    @rule(i=pick, a=st.integers(0, 2), frac=st.floats(0.0, 1.0))
    def withdraw(self, i, a, frac):
        row = self.holder(i)
        balance = float(self.led.collateral[row, a])
        if balance <= 0.0:
            with pytest.raises(ValueError, match="exceeds the balance"):
                self.led.withdraw(row, a, 1.0)
            return
        self.led.withdraw(row, a, balance * frac)
        self.book_cash(row, a, -balance * frac)

    @rule(i=pick, k=pick, a=st.integers(0, 2), x=amount, allow_negative=st.booleans())
    def transfer(self, i, k, a, x, allow_negative):
        src, dst = self.holder(i), self.holder(k)
        if src == dst:
            with pytest.raises(ValueError, match="same row"):
                self.led.transfer(src, dst, a, x, allow_negative)
            return
        if not allow_negative and x > 0.0 and self.led.collateral[src, a] - x < 0.0:
            with pytest.raises(ValueError, match="exceeds the balance"):
                self.led.transfer(src, dst, a, x)
            return
        self.led.transfer(src, dst, a, x, allow_negative=allow_negative)
        self.book_cash(src, a, -x)
        self.book_cash(dst, a, x)

    @rule(i=pick, a=st.integers(0, 2), x=amount, frac=st.floats(0.0, 1.0))
    def mint_then_burn(self, i, a, x, frac):
        row = self.holder(i)
        self.led.mint(row, a, x)
        self.book_cash(row, a, x)
        burn = max(0.0, float(self.led.collateral[row, a])) * frac
        self.led.burn(row, a, burn)
        self.book_cash(row, a, -burn)

    @rule(
        j=st.integers(0, 4),
        fills=st.lists(fill, min_size=1, max_size=6),
        maker_rate=st.sampled_from([0.0, 1e-4, -5e-5]),
        taker_rate=st.sampled_from([0.0, 5e-4]),
        f=st.integers(0, 2),
    )
    def settle(self, j, fills, maker_rate, taker_rate, f):
        makers = [self.trader(m) for m, *_ in fills]
        takers = [self.trader(t) for _, t, *_ in fills]
        side = [1 if buy else -1 for *_, buy, _, _ in fills]
        price = [REF[j] * fac for *_, fac, _ in fills]
        qty = [x for *_, x in fills]
        fee_row = self.fee_rows[f]
        self.led.settle_fills(j, makers, takers, side, price, qty, maker_rate, taker_rate, fee_row)
        for m, t, s, p, x in zip(makers, takers, side, price, qty, strict=True):
            buyer, seller = (t, m) if s > 0 else (m, t)
            self.book_trade(buyer, j, x, p)
            self.book_trade(seller, j, -x, p)
            for payer, rate in ((m, maker_rate), (t, taker_rate)):
                fee = p * x * rate
                self.book_cash(payer, QUOTE[j], -fee)
                self.book_cash(fee_row, QUOTE[j], fee)

    @rule(j=st.sampled_from(PERPS), i=pick, k=pick, fac=factor)
    def close_exactly(self, j, i, k, fac):
        row, other = self.trader(i), self.trader(k)
        q = float(self.led.position[row, j])
        if q == 0.0 or row == other:
            return
        p = REF[j] * fac
        side = -1 if q > 0 else 1
        self.led.settle_fills(j, [other], [row], [side], [p], [abs(q)], 0.0, 0.0, self.fee_rows[0])
        self.book_trade(row, j, -q, p)
        self.book_trade(other, j, q, p)
        assert self.led.position[row, j] == 0.0
        assert self.led.entry_price[row, j] == 0.0

    @rule(j=st.sampled_from(PERPS), rate=st.floats(-0.01, 0.01), fac=factor)
    def funding(self, j, rate, fac):
        mark = REF[j] * fac
        q = np.array(self.led.position[:, j])
        paid = self.led.apply_funding(j, rate, mark)
        assert paid == pytest.approx(float((q[q > 0] * mark * rate).sum()), rel=1e-9, abs=1e-12)
        for row in np.flatnonzero(q):
            self.book_cash(int(row), QUOTE[j], -q[row] * mark * rate)
        self.marks[j] = mark

    @rule(j=st.sampled_from(PERPS), fac=factor)
    def move_mark(self, j, fac):
        self.marks[j] = REF[j] * fac

    @rule(j=st.sampled_from(PERPS), i=pick, k=pick, frac=st.floats(0.01, 1.0), fac=factor)
    def move_position(self, j, i, k, frac, fac):
        src, dst = self.trader(i), self.holder(k)
        q = float(self.led.position[src, j])
        qty = q * frac
        if qty == 0.0 or src == dst:
            return
        p = REF[j] * fac
        self.led.transfer_position(j, src, dst, qty, p)
        self.book_trade(src, j, -qty, p)
        self.book_trade(dst, j, qty, p)

    @precondition(lambda self: len(self.traders) < 10)
    @rule(owner=pick)
    def open_trader(self, owner):
        self.traders.append(self.led.open_account(owner=owner))

    @rule(
        name=st.sampled_from(
            ["collateral", "position", "entry_price", "realised_pnl", "fees_paid", "funding_paid"]
        ),
        i=pick,
        col=st.integers(0, 4),
        sign=st.sampled_from([-1.0, 1.0]),
    )
    def corrupted_copy_is_caught(self, name, i, col, sign):
        led = copy.deepcopy(self.led)
        arr = led._rows[name]
        row = i % led.n_accounts
        col = col % arr.shape[1]
        tol = max(r.tolerance for r in conservation_residuals(led, marks=self.marks))
        delta = 2.0 * tol + 1e-9
        if name == "entry_price":
            q = abs(float(led.position[row, col]))
            delta = delta / q if q > 0.0 else 1.0
        arr[row, col] += sign * delta
        with pytest.raises(LedgerInvariantError):
            check_conservation(led, marks=self.marks)

    # --------------------------------------------------------- invariants
    @invariant()
    def conserved(self):
        check_conservation(self.led, marks=self.marks)

    @invariant()
    def value_is_conserved(self):
        led = self.led
        prices = np.array([1.0, self.marks[1], self.marks[2]])
        value = led.account_value(prices, self.marks)
        supply = float((led.minted - led.burned) @ prices)
        scale = float(
            (np.abs(led.collateral) @ prices).sum() + led.notional(self.marks).sum() * prices.max()
        )
        held = float(value[led.kind != HolderKind.CLEARING].sum())
        assert held == pytest.approx(supply, rel=1e-9, abs=1e-9 * (1.0 + scale))

    @invariant()
    def row_subsets_match_the_whole(self):
        """Valuations of chosen rows are the whole ledger's rows, bit for bit."""
        led = self.led
        prices = np.array([1.0, self.marks[1], self.marks[2]])
        n = led.n_accounts
        rows = np.array([(7 * k + 3) % n for k in range(n + 2)][::-1], np.int64)  # repeats
        for sub in (rows, rows[:1], rows[:0]):
            value = led.account_value(prices, self.marks, rows=sub)
            assert np.array_equal(value, led.account_value(prices, self.marks)[sub])
            gross = led.notional(self.marks, rows=sub)
            assert np.array_equal(gross, led.notional(self.marks)[sub])
            upnl = led.unrealised_pnl_by_instrument(self.marks, rows=sub)
            assert np.array_equal(upnl, led.unrealised_pnl_by_instrument(self.marks)[sub])

    @invariant()
    def unmarked_rows_did_not_move(self):
        """A row whose change flag is clear holds what it held when the flags were last taken."""
        led = self.led
        n = led.n_accounts
        state = np.hstack([led.collateral, led.position, led.entry_price])
        seen = getattr(self, "_seen", None)
        if seen is not None:
            rows = np.arange(min(n, len(seen)), dtype=np.int64)
            moved = led.take_dirty(rows)
            same = (state[rows] == seen[rows]) | (np.isnan(state[rows]) & np.isnan(seen[rows]))
            assert same[~moved].all(), f"rows {rows[~moved & ~same.all(axis=1)]} moved unmarked"
        led.clear_dirty()
        self._seen = state.copy()

    @invariant()
    def matches_shadow_book(self):
        led = self.led
        atol = 1e-9 * self.gross
        for row in self.traders + self.fee_rows:
            for j in PERPS:
                q = float(led.position[row, j])
                assert q == pytest.approx(self.dq[row, j], abs=atol)
                basis = q * float(led.entry_price[row, j])
                # average-cost identity: realised - q * entry == -(cash paid for the position)
                realised = float(led.realised_pnl[row, j])
                assert realised - basis == pytest.approx(-self.flow[row, j], abs=atol)
            for a in range(len(ASSETS)):
                realised = sum(float(led.realised_pnl[row, j]) for j in PERPS if QUOTE[j] == a)
                expected = self.cash[row, a] + realised
                assert float(led.collateral[row, a]) == pytest.approx(expected, abs=atol)


LedgerMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLedgerMachine = LedgerMachine.TestCase


def reference_average_cost(trades):
    """Exact average-cost accounting with rationals, written in terms of cost basis K."""
    q, cost, realised = Fraction(0), Fraction(0), Fraction(0)
    for dq_f, p_f in trades:
        dq, p = Fraction(dq_f), Fraction(p_f)
        if q == 0 or (q > 0) == (dq > 0):
            q, cost = q + dq, cost + dq * p
        elif abs(dq) <= abs(q):
            avg = cost / q
            realised += -dq * (p - avg)
            q, cost = q + dq, cost + dq * avg
        else:
            realised += q * p - cost
            q = q + dq
            cost = q * p
    entry = cost / q if q != 0 else Fraction(0)
    return float(q), float(entry), float(realised)


trade = st.tuples(
    st.one_of(st.floats(1e-3, 20.0), st.floats(-20.0, -1e-3)),
    st.floats(1.0, 1_000.0),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(trade, min_size=1, max_size=25), st.booleans())
def test_average_cost_matches_exact_reference(trades, close_at_end):
    """One trader against a counterparty: position, entry and realised P&L."""
    led = Ledger(["USD", "BTC"], [InstrumentKind.PERP], [1], [0])
    clr = led.open_account(HolderKind.CLEARING)
    led.set_clearing(0, clr)
    fee = led.open_account(HolderKind.TREASURY)
    a, b = led.open_account(), led.open_account()
    for dq, p in trades:
        led.settle_fills(0, [b], [a], [1 if dq > 0 else -1], [p], [abs(dq)], 0.0, 0.0, fee)
    if close_at_end and led.position[a, 0] != 0.0:
        q = float(led.position[a, 0])
        trades = [*trades, (-q, 500.0)]
        led.settle_fills(0, [b], [a], [-1 if q > 0 else 1], [500.0], [abs(q)], 0.0, 0.0, fee)
        assert led.position[a, 0] == 0.0 and led.position[b, 0] == 0.0
    q, entry, realised = reference_average_cost(trades)
    scale = sum(abs(dq * p) for dq, p in trades)
    volume = sum(abs(x) for x, _ in trades)
    assert float(led.position[a, 0]) == pytest.approx(q, abs=1e-12 * (1 + volume))
    basis = float(led.position[a, 0] * led.entry_price[a, 0])
    assert basis == pytest.approx(q * entry, abs=1e-9 * scale)
    assert float(led.realised_pnl[a, 0]) == pytest.approx(realised, abs=1e-9 * scale)
    if q != 0.0 and abs(q) > 1e-6:
        assert float(led.entry_price[a, 0]) == pytest.approx(entry, rel=1e-6)
    # the counterparty b mirrors a, so the clearing row nets to zero
    assert float(led.collateral[clr, 0]) == pytest.approx(0.0, abs=1e-9 * scale)
    check_conservation(led, marks=[123.0])
