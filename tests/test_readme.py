"""The README's quickstart runs as written: its shell block, then its Python block, in a fresh folder."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def quickstart_blocks() -> tuple[str, str]:
    section = README.read_text(encoding="utf-8").split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    shell = re.search(r"```bash\n(.*?)```", section, flags=re.DOTALL).group(1)
    python = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL).group(1)
    return shell, python


def test_the_readme_quickstart_runs_as_written(tmp_path):
    shell, python = quickstart_blocks()
    for line in shell.splitlines():
        command = shlex.split(line.split("#", 1)[0])
        assert command[0] == "msam", line  # the shell block only calls the package's own command
        result = subprocess.run(
            [sys.executable, "-m", "msam_hf.cli", *command[1:]],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    result = subprocess.run([sys.executable, "-c", python], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("tensor([[") and len(lines) >= 2  # the (captions, videos) logits
    hits = [line for line in lines if ".mp4" in line]
    assert len(hits) == 3 and all("data/synth/Videos/synth_" in hit for hit in hits)
