"""benchmarks/gpu_check.sh and gpu_check.py (issue 12.6) work without a GPU.

No GPU was lent to any session so far, so the script has never run on one;
this runs its figures on the CPU at small sizes (the ``--device cpu`` mode
its docstring gives), so it is known to work when a CUDA machine comes.
"""

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def test_the_gpu_script_is_valid_shell_and_its_figures_run_on_cpu():
    subprocess.run(["bash", "-n", str(BENCH / "gpu_check.sh")], check=True)
    args = ["--device", "cpu", "--n", "1200", "--n-cpu", "600", "--dim", "16"]
    out = subprocess.run(
        [sys.executable, str(BENCH / "gpu_check.py"), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("figure"))
    figures = [line for line in lines[header + 1 :] if line.strip()]
    names = " ".join(figures)
    for name in ("brute", "faiss", "embedder epoch", "featurize one 5-s clip",
                 "unseen videos"):
        assert name in names, out.stdout
    assert len(figures) == 7, out.stdout
