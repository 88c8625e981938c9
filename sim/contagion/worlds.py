"""The reference world of end-to-end contagion (an isolated crash on one of two venues).

:func:`isolated_crash_overrides`: a gap crash in an asset only alpha lists gives
alpha bad debt, which impairs its receipt token and liquidates beta's accounts.
"""

from __future__ import annotations

__all__ = ["isolated_crash_overrides"]


def isolated_crash_overrides(crash: float = 0.3, start_step: int = 30, horizon: int = 20,
                             noise: int = 30, leveraged: int = 30, supply: float = 8e5,
                             asset: str = "ETH", shared: str = "BTC") -> list[str]:
    """Hydra overrides of a reference world where a shock confined to alpha reaches beta.

    ``protocols=two_venues`` with a one-step gap crash of ``crash`` in ``asset``
    at ``start_step``, an asset only alpha lists (beta lists ``shared`` only),
    run for ``horizon`` steps after it. Alpha is fragile: ``leveraged``
    traders, all long, target 15–25× (its cross-margin tiers allow it),
    its insurance fund is empty and it has no ADL (``bad_debt=write_off``, a
    lending pool: Aave v3.3 deficits, Maker's Black Thursday debt,
    contagion_and_peers.md §2.3), so the gap becomes recorded bad debt.
    Its receipt token aLP, with a pool of ``supply`` units, is repriced from
    that bad debt (:func:`sim.contagion.tokens.receipt_price`), and beta's traders — on
    portfolio margin, unleveraged beyond its ~5× scan-grid cap and untouched
    by the crash — hold 10,000 aLP each. The calibration (ASSUMPTIONS.md,
    "Several protocols and contagion") gives alpha about 0.45–0.49 M USD of
    bad debt, aLP at about 0.4 and 16–21 beta liquidations (seeds 1–3, 42),
    none with ``contagion.token_impairment=false``.

    The contagion switches are left to the caller (``contagion.*``).

    Raises:
        ValueError: A size out of range (one line naming the argument).
    """
    if not 0.0 < crash < 1.0:
        raise ValueError(f"crash must be in (0, 1), got {crash!r}")
    for key, v, lo in (("start_step", start_step, 1), ("horizon", horizon, 1),
                       ("noise", noise, 0), ("leveraged", leveraged, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"{key} must be an integer >= {lo}, got {v!r}")
    if not supply > 0:
        raise ValueError(f"supply must be > 0, got {supply!r}")
    if asset == shared:
        raise ValueError(f"asset and shared must differ, both are {asset!r}")
    return ["protocols=two_venues", "scenario=jump_crash", f"steps={start_step + horizon}",
            f"scenario.params.crash={crash}", f"scenario.params.start_step={start_step}",
            "scenario.params.duration_steps=1", f"scenario.params.assets=[{asset}]",
            f"protocols.1.assets=[{shared}]", f"agents.noise.n={noise}",
            f"agents.leveraged.n={leveraged}", "agents.leveraged.leverage_min=15",
            "agents.leveraged.leverage_max=25", "agents.leveraged.trade_prob=0.5",
            "agents.leveraged.long_share=1.0", "protocols.0.insurance_fund=0",
            "protocols.0.liquidation.bad_debt=write_off", f"protocols.0.issues.supply={supply}"]
