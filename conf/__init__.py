"""Hydra configuration groups, shipped as a package so `pkg://conf` resolves in any install."""
