"""``python -m sim``: run the default job (see :mod:`sim.output.cli`)."""

from sim.output.cli import main

if __name__ == "__main__":
    main()
