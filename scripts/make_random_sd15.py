"""Write a full-size SD1.5 checkpoint with deterministic random weights (what `make models` runs).

    python -m scripts.make_random_sd15                  # the cached copy the tests and workflows use; prints its path
    python -m scripts.make_random_sd15 OUT [--seed 0]   # another copy

Shapes, key names and loading are those of a real SD1.5 checkpoint; the pictures are noise. The one
implementation is tests/support/fixtures.py (``write_random_sd15``, ``random_sd15_checkpoint``).
"""
import argparse

from tests.support.fixtures import random_sd15_checkpoint, write_random_sd15

if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python -m scripts.make_random_sd15", description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", help="where to write (default: the cache, once)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(write_random_sd15(a.out, seed=a.seed) if a.out else random_sd15_checkpoint())
