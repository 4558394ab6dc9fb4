"""Every gallery example runs, in its fast mode, as a user would run it.

Each ``examples/plot_*.py`` runs in a fresh interpreter (as ``python
examples/<name>.py``) from a temporary working directory, with
``SKVIDSAGE_EXAMPLES_FAST=1``; its figures must land in ``SKVIDSAGE_OUTPUT``.
The demo (``make demo``) has its own tests in ``tests/test_demo.py``.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
GALLERY = sorted(EXAMPLES.glob("plot_*.py"))


@pytest.fixture(scope="module")
def data_home(tmp_path_factory):
    """One cache of generated videos for all the examples."""
    return tmp_path_factory.mktemp("skvidsage_data")


def test_every_example_has_a_gallery_title():
    assert GALLERY, "no examples found"
    for path in GALLERY:
        doc = path.read_text().split('"""')[1].strip().splitlines()
        assert len(doc) >= 2 and set(doc[1]) == {"="}, f"{path.name}: no RST title"
        assert len(doc[1]) >= len(doc[0]), f"{path.name}: title underline too short"


@pytest.mark.parametrize("path", GALLERY, ids=lambda p: p.stem)
def test_example_runs_in_fast_mode(path, tmp_path, data_home):
    out = tmp_path / "output"
    env = {
        **os.environ,
        "SKVIDSAGE_EXAMPLES_FAST": "1",
        "SKVIDSAGE_OUTPUT": str(out),
        "SKVIDSAGE_DATA": str(data_home),
        "MPLBACKEND": "Agg",
    }
    env.pop("SKVIDSAGE_YT8M", None)  # generated YouTube-8M-format data
    run = subprocess.run(
        [sys.executable, str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, f"{path.name} failed:\n{run.stdout}\n{run.stderr}"
    pictures = sorted(out.glob("*.png"))
    assert pictures, f"{path.name} saved no figure in SKVIDSAGE_OUTPUT"
    for picture in pictures:
        assert picture.stat().st_size > 1000
        assert str(picture) in run.stdout, f"{path.name} did not print {picture}"
