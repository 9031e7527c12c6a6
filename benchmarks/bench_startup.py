"""Start-up time of the ``deepsad`` command: ``--help`` and the data commands must not pay torch's import.

Each command runs in a fresh interpreter, ``--repeats`` times; the table gives the median
and the fastest wall time, and whether torch was imported (checked in the same process
through ``sys.modules``). ``import torch`` alone is the yardstick.

    python benchmarks/bench_startup.py [--repeats 5] [--data-root ../shared/data]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

#: label -> Python code run with ``python -c`` (the CLI through ``deepsad.cli.main``, as the
#: console script does, so that every row pays the same interpreter start)
CASES: dict[str, str] = {
    "python (nothing imported)": "pass",
    "import torch (yardstick)": "import torch",
    "import deepsad": "import deepsad",
    "deepsad --help": "from deepsad.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
    "deepsad fit --help": "from deepsad.cli import main\ntry:\n    main(['fit', '--help'])\nexcept SystemExit:\n    pass",
    "deepsad data list": "from deepsad.cli import main\nmain(['data', 'list', '--data-root', DATA_ROOT])",
    "from deepsad import DeepSAD": "from deepsad import DeepSAD",
}

PROBE = "\nimport sys\nprint('TORCH_LOADED=' + str('torch' in sys.modules), file=sys.stderr)\n"


def time_case(code: str, data_root: str) -> tuple[float, bool]:
    """Wall seconds of one fresh interpreter running ``code``, and whether it imported torch."""
    program = f"DATA_ROOT = {data_root!r}\n{code}{PROBE}"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    return seconds, "TORCH_LOADED=True" in done.stderr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-root", default=os.environ.get("DEEPSAD_DATA", "../shared/data"))
    args = parser.parse_args(argv)
    print(f"Python {sys.version.split()[0]}, {args.repeats} fresh interpreters per row, load average "
          f"{os.getloadavg()[0]:.1f}")
    print("| command | median s | fastest s | imports torch |")
    print("|---|---|---|---|")
    for label, code in CASES.items():
        runs = [time_case(code, args.data_root) for _ in range(args.repeats)]
        seconds = [s for s, _ in runs]
        torch_loaded = any(loaded for _, loaded in runs)
        print(f"| {label} | {statistics.median(seconds):.2f} | {min(seconds):.2f} | {'yes' if torch_loaded else 'no'} |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
