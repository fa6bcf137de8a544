"""Run benchmark modules: ``python -m benchmarks [NAME ...]`` (default: all ``bench_*`` modules).

Each module runs in its own interpreter with its default parameters, so one failing or slow
benchmark does not hide the others' figures.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = argv or sorted(p.stem for p in here.glob("bench_*.py"))
    status = 0
    for name in names:
        module = name if name.startswith("bench_") else f"bench_{name}"
        print(f"== benchmarks.{module}", flush=True)
        status |= subprocess.call([sys.executable, "-m", f"benchmarks.{module}"])
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
