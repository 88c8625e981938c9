"""The gamma-squeeze world: dealers short gamma to protective-put buyers, then a sell-off.

Customers buy one-day at-the-money puts against their spot holdings (the
protective-put book, :mod:`agents.option_books`); a dealer per underlying sells
them (no two-sided option market maker, whose bids could take the dealer's
offers and hold the opposite gamma), so the dealers are short gamma. A sell-off of the index then
raises the delta of the dealers' short puts, and the dealers' delta hedges sell
the perpetual into the fall: the channel of Barbon & Buraschi (2021, "Gamma
fragility") and Ni, Pearson, Poteshman & White (2021, "Does option trading
have mechanical effects on underlying stock prices?", RFS 34(4)). With
``hedging=False`` the same world (same seed: common random numbers) has the
dealers' hedge band set out of reach, so the difference between the two is
what the hedging did to the perpetual book.
"""

from __future__ import annotations

__all__ = ["NO_HEDGE_BAND", "gamma_squeeze"]

NO_HEDGE_BAND = 1e9
"""A hedge band no net delta reaches (base units): the dealers never hedge."""

_BOOKS = ("directional", "basis", "covered_call", "cash_secured_put", "calendar_spread",
          "strike_spread")


def gamma_squeeze(hedging: bool = True, seed: int | None = None, steps: int = 330,
                  start_step: int = 240, fall: float = 0.08, fall_steps: int = 30,
                  buyers: int = 60, notional: float = 100_000.0) -> list[str]:
    """Overrides of the gamma-squeeze world (module docstring).

    Args:
        hedging: Dealers and option market makers delta-hedge (False: never).
        seed: Run seed (None: the config's).
        steps: One-minute steps.
        start_step: First step of the sell-off.
        fall: Size of the sell-off (fraction of the index, both assets).
        fall_steps: Steps the sell-off lasts (equal log returns).
        buyers: Protective-put buyers per underlying.
        notional: Underlying notional of each buyer's book (USD).

    Returns:
        The overrides.
    """
    ov = ["market=btc_eth_options", "scenario=jump_crash", f"steps={int(steps)}",
          f"scenario.params.start_step={int(start_step)}", f"scenario.params.crash={fall}",
          f"scenario.params.duration_steps={int(fall_steps)}",
          *[f"agents.option_books.counts.{b}=0" for b in _BOOKS],
          f"agents.option_books.counts.protective_put={int(buyers)}",
          f"agents.option_books.notional={notional}", "agents.option_books.tenor_days=1",
          "agents.option_maker.per_underlying=0", "agents.option_dealer.per_underlying=1",
          "agents.option_dealer.otm_only=false",
          "agents.option_books.moneyness=0.0", "agents.option_books.underlying_leg=spot"]
    if not hedging:
        ov += [f"agents.{who}.hedge_band.{a}={NO_HEDGE_BAND:g}"
               for who in ("option_maker", "option_dealer") for a in ("BTC", "ETH")]
    return ov if seed is None else [*ov, f"seed={int(seed)}"]
