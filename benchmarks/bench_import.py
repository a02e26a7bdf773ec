"""Import time: `import msam_hf` against `import transformers`, each in fresh interpreters.

`import msam_hf` is lazy (msam_hf/__init__.py): it imports neither torch nor transformers until a public name is
used, and registers its classes with transformers' Auto classes and pipeline registry only when those are imported
(msam_hf/_registration.py). The goals are `import msam_hf` in at most 1.5 s on an idle 2-core machine, and
`msam --help` and `msam index --help` in at most 2 s (a command's arguments are added when it is used); as this machine
is shared and noisy, it is measured as a ratio against `import transformers` (which itself imports no torch), taking
turns between the commands and the median of `--repeats` fresh processes each. A second, untimed run of each command
says whether it imported torch.

    .venv/bin/python benchmarks/bench_import.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

GOAL_SECONDS = 1.5  # `import msam_hf`, idle 2-core machine
HELP_GOAL_SECONDS = 2.0  # `msam --help`, `msam index --help`
BASELINE = "import transformers"
# label -> Python source run with `python -c`
IMPORTS = {
    "python (empty)": "pass",
    BASELINE: "import transformers",
    "import msam_hf": "import msam_hf",
    "from msam_hf import MsamModel": "from msam_hf import MsamModel",
}
# label -> arguments of `python -m msam_hf.cli`
HELP_COMMANDS = {"msam --help": ["--help"], "msam index --help": ["index", "--help"]}
COMMANDS = [*IMPORTS, *HELP_COMMANDS]
TORCH_CHECK = "import sys; print('torch' in sys.modules)"


def argv(label: str) -> list[str]:
    if label in HELP_COMMANDS:
        return [sys.executable, "-m", "msam_hf.cli", *HELP_COMMANDS[label]]
    return [sys.executable, "-c", IMPORTS[label]]


def run_once(label: str) -> float:
    started = time.perf_counter()
    subprocess.run(argv(label), check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def imports_torch(label: str) -> bool:
    if label in HELP_COMMANDS:
        source = (
            f"import runpy, sys\nsys.argv = ['msam', *{HELP_COMMANDS[label]!r}]\n"
            "try:\n    runpy.run_module('msam_hf.cli', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        )
    else:
        source = IMPORTS[label] + "\n"
    result = subprocess.run([sys.executable, "-c", source + TORCH_CHECK], check=True, capture_output=True, text=True)
    return result.stdout.strip().splitlines()[-1] == "True"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per command (default 5)")
    args = parser.parse_args()

    for label in COMMANDS:  # warm the file system cache and byte-code files; not timed
        run_once(label)
    times: dict[str, list[float]] = {label: [] for label in COMMANDS}
    for _ in range(args.repeats):
        for label in COMMANDS:  # take turns, so that load from elsewhere spreads over all commands
            times[label].append(run_once(label))
    medians = {label: statistics.median(values) for label, values in times.items()}

    print(f"Fresh-process times, median of {args.repeats} (Python {sys.version.split()[0]})\n")
    print(f"| command | median (s) | min (s) | × `{BASELINE}` | imports torch |")
    print("|---|---|---|---|---|")
    for label in COMMANDS:
        ratio = medians[label] / medians[BASELINE]
        torch = "yes" if imports_torch(label) else "no"
        print(f"| `{label}` | {medians[label]:.2f} | {min(times[label]):.2f} | {ratio:.2f} | {torch} |")
    msam = medians["import msam_hf"]
    print(
        f"\n`import msam_hf`: {msam:.2f} s here, {msam / medians[BASELINE]:.2f} × `{BASELINE}` "
        f"(goal: ≤ {GOAL_SECONDS} s on an idle 2-core machine); "
        + ", ".join(f"`{label}`: {medians[label]:.2f} s" for label in HELP_COMMANDS)
        + f" (goal: ≤ {HELP_GOAL_SECONDS} s)"
    )


if __name__ == "__main__":
    main()
