"""Write a full-size SD1.5 checkpoint with deterministic random weights.

    python bench/make_random_sd15.py OUT.safetensors [--seed 0]

Shapes, key names and loading are those of a real SD1.5 checkpoint; the pictures are noise.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tools.fixtures import write_random_sd15  # noqa: E402

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(write_random_sd15(a.out, seed=a.seed))
