"""The fuzz harness (benchmarks/fuzz_inputs.py) on a bounded sample of inputs.

Damaged copies of the shared real clips and YouTube-8M TFRecords go through
the public API (``VideoFeaturizer(n_frames=3, on_error="warn")`` and
``load_youtube8m(on_error="skip")``) in worker processes the harness kills
when late. The sample: N_VIDEO inputs per mutation kind for videos (5 kinds,
plus 9 special inputs) and N_TFRECORD per kind for TFRecords (5 kinds, plus 7
special inputs): 20-70 s on 2 cores, depending on their load. The full run is
``python benchmarks/fuzz_inputs.py`` (1000 per kind).
"""

import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests._data import VIDEOS, YT8M

HARNESS = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz_inputs.py"
N_VIDEO = 15
N_TFRECORD = 100
SEED = 0


def _import_harness():
    name = "_skvidsage_fuzz_inputs"  # benchmarks/ is not a package
    spec = importlib.util.spec_from_file_location(name, HARNESS)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


fuzz = _import_harness()

needs_data = pytest.mark.skipif(
    not (VIDEOS.is_dir() and YT8M.is_dir()), reason="shared data not found"
)


# ---------------------------------------------------------------- mutations


@pytest.mark.parametrize("mutation", fuzz.MUTATIONS)
def test_mutations_are_deterministic_and_spans_cover_the_damage(mutation):
    data = np.random.default_rng(1).bytes(5000)
    for index in range(20):
        out, params, touched = fuzz.mutate(
            data, mutation, fuzz.case_rng(SEED, "video", mutation, index)
        )
        again = fuzz.mutate(
            data, mutation, fuzz.case_rng(SEED, "video", mutation, index)
        )
        assert again == (out, params, touched)
        if mutation == "truncate":
            assert len(out) < len(data) and data.startswith(out)
            assert touched == [(len(out), len(data))]
            continue
        assert len(out) == len(data)
        changed = np.flatnonzero(
            np.frombuffer(out, np.uint8) != np.frombuffer(data, np.uint8)
        )
        inside = np.zeros(len(data), bool)
        for a, b in touched:
            inside[a:b] = True
        assert inside[changed].all(), (mutation, params)


def test_intact_records_follow_the_framing(tmp_path):
    from skvidsage import dump_youtube8m

    path = tmp_path / "a.tfrecord"
    dump_youtube8m(np.ones((3, 4)), [[1], [2], [3]], path)
    spans = fuzz.record_spans(path.read_bytes())
    assert spans[0][0] == 0 and spans[-1][1] == path.stat().st_size
    assert all(a[1] == b[0] for a, b in zip(spans[:-1], spans[1:], strict=True))
    (a0, b0), (a1, b1), (a2, b2) = spans
    assert fuzz.intact_records(spans, [], b2) == [0, 1, 2]
    assert fuzz.intact_records(spans, [(a1 + 3, a1 + 4)], b2) == [0, 2]
    assert fuzz.intact_records(spans, [(b1 - 1, a2 + 1)], b2) == [0]
    assert fuzz.intact_records(spans, [(b1, b2)], b1) == [0, 1]  # truncated


# ---------------------------------------------------------- the isolation


def test_a_late_or_dying_worker_cannot_stall_the_harness(tmp_path):
    worker = fuzz.Worker(tmp_path / "worker.log")
    try:
        assert worker.call("selftest", 0, timeout=60) == 0
        start = time.monotonic()
        with pytest.raises(fuzz.WorkerLate):
            worker.call("selftest", 600, timeout=1)
        assert time.monotonic() - start < 10
        assert worker.proc is None  # killed; the next call starts another
        with pytest.raises(fuzz.WorkerDied, match="exit code 3"):
            worker.call("selftest", "exit", timeout=60)
        assert worker.call("selftest", 0, timeout=60) == 0
        assert worker.starts == 3
    finally:
        worker.close()


# ---------------------------------------------------------- the sample run


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    report = fuzz.run_fuzz(
        VIDEOS,
        YT8M,
        n_per_kind={"video": N_VIDEO, "tfrecord": N_TFRECORD},
        seed=SEED,
        timeout=60,
        workdir=tmp_path_factory.mktemp("fuzz"),
        log=lambda message: None,
    )
    print(fuzz.format_table(report))
    return report


def _cases(report, predicate):
    return "\n".join(
        f"{c['kind']}/{c['mutation']} {os.path.basename(c['path'])} {c['params']}: "
        f"{c['outcome']} cos={c['cosine']} lost={c['n_lost']}: {c['detail'][:200]}"
        for c in report["cases"]
        if predicate(c)
    )


@needs_data
def test_every_input_has_one_outcome(report):
    n_video = len(fuzz.MUTATIONS) * N_VIDEO + len(fuzz.SPECIALS["video"])
    n_tfrecord = len(fuzz.MUTATIONS) * N_TFRECORD + len(fuzz.SPECIALS["tfrecord"])
    assert fuzz.totals(report, "video")["n"] == n_video
    assert fuzz.totals(report, "tfrecord")["n"] == n_tfrecord
    assert all(c["outcome"] in fuzz.OUTCOMES for c in report["cases"])


@needs_data
def test_no_crash_and_no_hang(report):
    total = fuzz.totals(report)
    bad = _cases(report, lambda c: c["outcome"] in ("crash", "hang"))
    assert total["crash"] == 0 and total["hang"] == 0, bad


@needs_data
def test_failures_and_damage_name_the_file(report):
    assert fuzz.totals(report)["unnamed"] == 0, _cases(
        report, lambda c: c["outcome"] == "unnamed"
    )


@needs_data
def test_special_inputs(report):
    outcome = {(c["kind"], c["mutation"]): c["outcome"] for c in report["cases"]}
    for kind in ("video", "tfrecord"):
        for name in fuzz.COMMON_SPECIALS[1:]:  # not a readable file
            assert outcome[kind, name] == "error", (kind, name)
    assert outcome["video", "empty"] == "error"
    assert outcome["video", "audio_only"] == "error"
    assert outcome["tfrecord", "huge_length"] == "warned"
    assert outcome["tfrecord", "video_as_tfrecord"] == "warned"


@needs_data
def test_skipped_tfrecord_damage_never_returns_foreign_records(report):
    assert fuzz.totals(report, "tfrecord")["foreign"] == 0


@needs_data
def test_clean_rows_match_the_intact_clip(report):
    assert fuzz.totals(report, "video")["clean_below_target"] == 0, _cases(
        report,
        lambda c: (
            c["outcome"] == "clean"
            and c["cosine"] is not None
            and c["cosine"] < fuzz.COSINE_TARGET
        ),
    )


@needs_data
def test_skip_keeps_every_intact_record(report):
    assert fuzz.totals(report, "tfrecord")["lost"] == 0, _cases(
        report, lambda c: bool(c["n_lost"])
    )


@needs_data
def test_an_mpeg_ts_copy_is_fuzzed_too(report):
    # the shared clips are AVI and MP4: a cut TS, which states no length, was
    # never among the inputs
    assert report["config"]["videos"][-1].endswith(f"{Path(fuzz.TS_FROM).stem}.ts")
    ts = [c for c in report["cases"] if (c["source"] or "").endswith(".ts")]
    assert {c["mutation"] for c in ts} == set(fuzz.MUTATIONS)
