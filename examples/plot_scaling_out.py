"""
Featurizing a large folder of videos: processes, Dask and GPUs
==============================================================

Decoding is usually the slow part of featurizing videos on a CPU.
:class:`~skvidsage.VideoFeaturizer` decodes in joblib worker processes
(``n_jobs``), ahead of the CNN, and shows a progress bar with
``verbose=True``. Because decoding goes through joblib, the same code spreads
over a Dask cluster inside ``joblib.parallel_config(backend="dask")``. The CNN
runs in the calling process, on the GPU when there is one (``device="auto"``).

This example times ``n_jobs=1``, ``n_jobs=2`` and a two-worker Dask
``LocalCluster`` on the same folder, checks that all give the same features,
and shows how the device is chosen.
"""

# %%
# A folder of clips
# -----------------
import os
import time
import warnings
from pathlib import Path

import joblib
import matplotlib.pyplot as plt
import numpy as np
import torch

from skvidsage import VideoFeaturizer
from skvidsage.datasets import make_video_classification

FAST = os.environ.get("SKVIDSAGE_EXAMPLES_FAST", "") not in ("", "0")
OUTPUT = Path(os.environ.get("SKVIDSAGE_OUTPUT", "skvidsage_output"))
OUTPUT.mkdir(parents=True, exist_ok=True)

data = make_video_classification(
    n_videos=40 if FAST else 200,
    n_classes=4,
    duration=1.0 if FAST else 2.0,
    frame_size=(64, 96) if FAST else (96, 128),
    n_jobs=2,
    random_state=0,
)
files = data.filenames[:16] if FAST else data.filenames[:120]
print(f"{len(files)} clips in {data.directory}, {os.cpu_count()} CPUs")

# %%
# Worker processes
# ----------------
# Every setting samples two frames per second. The first call also pays for
# loading the CNN, so we fit once first and time ``transform`` alone. With
# ``n_jobs=1`` decoding still runs in one worker process, overlapped with the
# CNN (``iter_decoded(isolate=True)``: a crashing decoder costs only its
# video); ``n_jobs=2`` adds a second decoder.
featurizer = VideoFeaturizer(sample_rate=2.0, verbose=True).fit(files[:1])
timings, outputs = {}, {}
for n_jobs in (1, 2):
    featurizer.set_params(n_jobs=n_jobs)
    t0 = time.perf_counter()
    outputs[f"n_jobs={n_jobs}"] = featurizer.transform(files)
    timings[f"n_jobs={n_jobs}"] = time.perf_counter() - t0

# %%
# A Dask cluster
# --------------
# ``joblib.parallel_config(backend="dask")`` sends the decoding tasks to the
# workers of a ``distributed.Client``: here a ``LocalCluster`` of two worker
# processes, in a real deployment a scheduler address with workers on other
# machines (which must see the video files at the same paths). Nothing
# changes in the featurizer. Starting the cluster is not timed.
try:
    from distributed import Client, LocalCluster, get_task_stream
except ImportError:
    Client = None
    print("distributed is not installed: pip install distributed")

if Client is not None:
    import dask

    # Dask starts its worker processes with "spawn", which re-runs the main
    # script in each worker unless it is guarded by ``if __name__ ==
    # "__main__":``; a script written as notebook cells is not, so we fork.
    dask.config.set({"distributed.worker.multiprocessing-method": "fork"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dashboard port notices
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        featurizer.set_params(n_jobs=2)
        with joblib.parallel_config(backend="dask"), get_task_stream(client) as ts:
            t0 = time.perf_counter()
            outputs["dask, 2 workers"] = featurizer.transform(files)
            timings["dask, 2 workers"] = time.perf_counter() - t0
        workers = {task["worker"] for task in ts.data}
        print(f"Dask ran {len(ts.data)} decoding tasks on {len(workers)} workers")
    except Exception as exc:  # report exactly what fails, then go on
        print(f"featurizing under the Dask backend failed: {exc!r}")
    finally:
        client.close()
        cluster.close()

# %%
# Timings
# -------
# All settings give the same features: decoding is deterministic and the CNN
# sees the same frames in the same order.
reference = outputs["n_jobs=1"]
print(f"\n{'setting':<18}{'seconds':>9}{'clips/s':>9}  same features")
for name, seconds in timings.items():
    same = np.allclose(outputs[name], reference, atol=1e-6)
    print(f"{name:<18}{seconds:>9.1f}{len(files) / seconds:>9.1f}  {same}")

fig, ax = plt.subplots(figsize=(5.5, 3.2))
ax.barh(list(timings), [len(files) / s for s in timings.values()],
        color=["C0", "C1", "C2"][: len(timings)])
ax.set_xlabel("clips per second (higher is better)")
ax.set_title(f"Featurizing {len(files)} clips on {os.cpu_count()} CPUs")
fig.tight_layout()
path = OUTPUT / "scaling_out.png"
fig.savefig(path, dpi=100)
print(f"wrote {path}")

# %%
# GPUs
# ----
# ``device="auto"`` (the default of the featurizer, the graph builder and the
# embedder) picks CUDA when ``torch.cuda.is_available()``; the device used is
# the fitted attribute ``device_``. The CNN and the detector then run on the
# GPU, in batches of ``batch_size`` frames, while the CPU workers decode.
# Pass ``device="cpu"`` to force the CPU, or ``"cuda:1"`` for another GPU.
if torch.cuda.is_available():
    print(f"\nCUDA available: {torch.cuda.get_device_name(0)}")
    gpu = VideoFeaturizer(sample_rate=2.0, n_jobs=2, batch_size=64).fit(files[:1])
    t0 = time.perf_counter()
    Z = gpu.transform(files)
    print(f"device_={gpu.device_}: {len(files) / (time.perf_counter() - t0):.1f} "
          f"clips/s; largest difference to the CPU features "
          f"{np.abs(Z - reference).max():.1e}")
else:
    print(f"\nNo CUDA device here: device='auto' resolved to "
          f"device_={featurizer.device_}, so the CNN ran on the CPU "
          f"({torch.get_num_threads()} torch threads). On a machine with a GPU "
          "the same code runs the CNN there, with no change.")
