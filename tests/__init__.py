"""The test suite, mirroring the packages (sim, agents, margin, experiments)."""
