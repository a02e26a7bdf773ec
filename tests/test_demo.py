"""`make demo` end to end at its real (tiny) size: save, fresh-process AutoModel load, scores table."""

import subprocess
import sys


def test_demo_saves_reloads_in_a_fresh_process_and_prints_the_scores(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "msam_hf.demo", "--output_dir", str(tmp_path)],
        check=True, capture_output=True, text=True,
    )
    assert "msam_hf imported: False" in result.stdout
    table = [line for line in result.stdout.splitlines() if line.startswith("| ") and "video 0" not in line]
    assert len(table) == 4
    for row in table:
        scores = [float(cell) for cell in row.strip("|").split("|")[1:]]
        assert len(scores) == 4
    assert (tmp_path / "msam-tiny" / "model.safetensors").exists()
    assert (tmp_path / "msam-tiny" / "modeling_msam.py").exists()
