"""Listed European options: the expiry calendar and the chain of option slots.

Deribit lists cash-settled European options on BTC and ETH with daily, weekly
and monthly expiries at 08:00 UTC, a strike grid around the index at listing,
and settles them against the index's 30-minute TWAP before expiry (Deribit
contract specifications; ``ASSUMPTIONS.md``, "Options"). The world's clock
starts on a Monday at 00:00 UTC.

An option *slot* is one instrument column of the world (a book, a ledger
column, a margin-engine instrument). Slots are grouped per protocol and
underlying into *expiry groups* of ``2 x (2 n + 1)`` slots (calls and puts on
``2 n + 1`` strikes). When an expiry passes, its group is settled and freed; a
free group is given the next expiry the calendar lists, with strikes set
around the index of that moment. So the number of instruments is bounded by the
expiries live at once, however long the run; a slot's contract (its strike,
expiry and name) changes when it is relisted, and every fill and event records
the contract it belonged to.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ExpiryCalendar", "OptionChain", "OptionSlot", "strike_grid"]

SECONDS_PER_DAY = 86_400.0


class ExpiryCalendar:
    """Expiry steps of every series: ``period_days x k + offset_days`` at ``expiry_hour``.

    Args:
        series: ``(name, period_days, offset_days, live)`` per series: a series
            keeps its next ``live`` expiries listed.
        expiry_hour: Hour of the day (UTC) at which options expire.
        step_seconds: Length of one model step.
    """

    def __init__(self, series: Sequence[tuple[str, float, float, int]], expiry_hour: float,
                 step_seconds: float) -> None:
        self.series = [(str(n), float(p), float(o), int(live)) for n, p, o, live in series]
        self.expiry_hour = float(expiry_hour)
        self.step_seconds = float(step_seconds)

    def expiry_step(self, day: float) -> int:
        """The step at which an expiry on ``day`` (days from the start) falls (rounded up)."""
        seconds = day * SECONDS_PER_DAY + self.expiry_hour * 3600.0
        return math.ceil(seconds / self.step_seconds - 1e-9)

    def live(self, step: int) -> list[tuple[int, str]]:
        """Expiries listed at ``step``: each series' next ``live`` expiries after it.

        Returns:
            Sorted ``(expiry_step, series name)``; an expiry two series share is
            listed once, under the first series that names it.
        """
        out: dict[int, str] = {}
        for name, period, offset, live in self.series:
            # first k with expiry_step(offset + k * period) > step
            k = max(0, math.floor((step * self.step_seconds / SECONDS_PER_DAY - offset
                                   - self.expiry_hour / 24.0) / period) - 1)
            found = 0
            while found < live:
                e = self.expiry_step(offset + k * period)
                if e > step:
                    out.setdefault(e, name)
                    found += 1
                k += 1
        return sorted(out.items())

    def max_live(self) -> int:
        """Largest number of expiries listed at once (the sum of every series' ``live``)."""
        return sum(live for *_, live in self.series)


def strike_grid(spot: float, n_per_side: int, spacing: float) -> np.ndarray:
    """``2 n + 1`` strikes centred on the spot, ``spacing x spot`` apart, on round numbers.

    Strikes are multiples of the power of ten just below the spacing (at
    60,000 USD and 2 % spacing: 1,000 USD), as exchanges list them; the
    centre is the multiple nearest the spot and the grid stays strictly
    increasing and positive.

    Args:
        spot: The index at listing.
        n_per_side: Strikes on each side of the centre.
        spacing: Distance between strikes as a fraction of the spot.
    """
    step = spacing * spot
    unit = 10.0 ** math.floor(math.log10(step))
    width = max(unit, round(step / unit) * unit)
    centre = round(spot / unit) * unit
    k = centre + width * np.arange(-n_per_side, n_per_side + 1)
    return k[k > 0.0] if (k <= 0.0).any() else k


@dataclass(frozen=True)
class OptionSlot:
    """One option instrument column: where it sits in the chain.

    Attributes:
        instrument: World instrument index.
        protocol: Listing protocol.
        asset: World asset index of the underlying.
        group: Expiry group (index into :attr:`OptionChain.group_expiry`).
        strike_index: Position in the group's strike grid.
        is_call: Call (True) or put.
    """

    instrument: int
    protocol: int
    asset: int
    group: int
    strike_index: int
    is_call: bool


class OptionChain:
    """The option slots of every protocol and underlying, and the contracts they hold.

    Args:
        slots: Every slot, in instrument order.
        group_key: ``(protocol, asset)`` of each expiry group.
        calendar: The expiry calendar.
        n_per_side: Strikes on each side of the centre.
        spacing: Strike spacing as a fraction of the index for a one-day
            option; it widens with the square root of the tenor in days (wider
            grids for longer expiries, as listed).
        prefix: ``{(protocol, asset): "<protocol>:<ASSET>"}`` for contract names.

    Attributes:
        strike: float64[n_slots] strike of each slot's contract.
        expiry_step: int64[n_slots] expiry step of each slot (-1 when unlisted).
        group_expiry: int64[n_groups] expiry step per group (-1 when free).
        names: Contract name per slot (``""`` when unlisted).
    """

    def __init__(self, slots: Sequence[OptionSlot], group_key: Sequence[tuple[int, int]],
                 calendar: ExpiryCalendar, n_per_side: int, spacing: float,
                 prefix: dict[tuple[int, int], str]) -> None:
        self.slots = list(slots)
        self.group_key = list(group_key)
        self.calendar = calendar
        self.n_per_side = int(n_per_side)
        self.spacing = float(spacing)
        self.prefix = prefix
        n = len(self.slots)
        self.instruments = np.array([s.instrument for s in self.slots], np.int64)
        self.strike = np.zeros(n)
        self.expiry_step = np.full(n, -1, np.int64)
        self.group_expiry = np.full(len(self.group_key), -1, np.int64)
        self.names = [""] * n
        self._by_group: list[list[int]] = [[] for _ in self.group_key]
        for k, s in enumerate(self.slots):
            self._by_group[s.group].append(k)

    def __len__(self) -> int:
        return len(self.slots)

    def group_slots(self, group: int) -> list[int]:
        """Chain positions of a group's slots."""
        return self._by_group[group]

    def due(self, step: int) -> list[int]:
        """Listed groups whose expiry is at or before ``step``."""
        return [g for g, e in enumerate(self.group_expiry.tolist()) if 0 <= e <= step]

    def free(self, group: int) -> None:
        """Mark a settled group unlisted."""
        self.group_expiry[group] = -1
        for k in self._by_group[group]:
            self.expiry_step[k] = -1
            self.names[k] = ""

    def to_list(self, step: int) -> list[tuple[int, int]]:
        """``(group, expiry_step)`` to list now: expiries the calendar lists that no group holds.

        Each expiry goes to the lowest free group of each ``(protocol, asset)``.
        """
        live = self.calendar.live(step)
        out = []
        for key in dict.fromkeys(self.group_key):
            groups = [g for g, k in enumerate(self.group_key) if k == key]
            held = {int(self.group_expiry[g]) for g in groups}
            free = [g for g in groups if self.group_expiry[g] < 0]
            for e, _name in live:
                if e not in held and free:
                    out.append((free.pop(0), e))
        return out

    def list_group(self, group: int, expiry: int, step: int, spot: float,
                   step_seconds: float) -> np.ndarray:
        """Give a group the contracts of one expiry, strikes around ``spot``; returns its slots.

        Args:
            group: The free group.
            expiry: Expiry step.
            step: Current step.
            spot: Index of the underlying now.
            step_seconds: Step length (the tenor sets the strike spacing).
        """
        tenor_days = max((expiry - step) * step_seconds / SECONDS_PER_DAY, 1.0)
        strikes = strike_grid(spot, self.n_per_side, self.spacing * math.sqrt(tenor_days))
        self.group_expiry[group] = expiry
        prefix = self.prefix[self.group_key[group]]
        ks = self._by_group[group]
        for k in ks:
            s = self.slots[k]
            i = min(s.strike_index, len(strikes) - 1)
            self.strike[k] = strikes[i]
            self.expiry_step[k] = expiry
            self.names[k] = f"{prefix}-T{expiry}-{strikes[i]:g}-{'C' if s.is_call else 'P'}"
        return np.array(ks, np.int64)
