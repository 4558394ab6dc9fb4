"""examples/demo.py runs offline, on generated videos and on YouTube-8M files."""

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
METRICS = ("Hit@1", "PERR", "GAP@20", "mAP@20")


def _load_demo():
    spec = importlib.util.spec_from_file_location("demo", EXAMPLES / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("SKVIDSAGE_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("SKVIDSAGE_OUTPUT", str(tmp_path / "out"))
    return tmp_path


def test_demo_fast_mode_on_generated_videos(dirs, capsys, monkeypatch):
    monkeypatch.setenv("SKVIDSAGE_EXAMPLES_FAST", "1")  # --fast from the env
    table = _load_demo().main(["--n-jobs", "1"])
    out = capsys.readouterr().out
    assert "fast mode" in out
    # the first table says its head is fixed; the object table tunes C
    assert "(C=1, fixed)" in out
    assert "C chosen per system on a validation split" in out
    assert out.count("chosen on the validation clips") == 4  # raw, Lite, 2 VidSage
    assert set(table) == {
        "raw features", "LiteVidSage", "LiteVidSage + graph smoothing"
    }
    for scores in table.values():
        assert set(scores) == set(METRICS)
        for name in METRICS:
            assert name in out
            assert 0.0 <= scores[name] <= 1.0
    png = dirs / "out" / "demo_embedding.png"
    assert png.is_file() and png.stat().st_size > 1000
    assert str(png.resolve()) in out
    assert list((dirs / "data").glob("video_classification_*/clip_*.mp4"))


def test_demo_on_youtube8m_files(dirs, capsys):
    demo = _load_demo()
    yt8m = dirs / "yt8m"
    yt8m.mkdir()
    demo.write_generated_yt8m(yt8m, n_files=5, per_file=200)
    table = demo.main(["--yt8m", str(yt8m), "--n-jobs", "1", "--epochs", "3"])
    out = capsys.readouterr().out
    assert "5 YouTube-8M files" in out
    assert set(table) == {
        "raw features", "LiteVidSage", "LiteVidSage + graph smoothing"
    }
    for scores in table.values():
        for name in METRICS:
            assert name in out
            assert 0.0 < scores[name] <= 1.0
        # generated classes are learnable: far above chance (1/40 classes)
        assert scores["Hit@1"] > 0.3


def test_demo_rejects_a_single_file(tmp_path):
    demo = _load_demo()
    demo.write_generated_yt8m(tmp_path, n_files=1, per_file=20)
    with pytest.raises(SystemExit, match="at least two"):
        demo.main(["--yt8m", str(tmp_path)])
