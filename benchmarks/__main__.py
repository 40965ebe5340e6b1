"""`python -m benchmarks [--quick] [--seed N] [--out DIR]`: see `benchmarks/README.md`."""

from benchmarks.runner import main

if __name__ == "__main__":
    raise SystemExit(main())
