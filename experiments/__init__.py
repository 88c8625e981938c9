"""Named studies and benchmarks built on the public API of sim, agents and margin."""
