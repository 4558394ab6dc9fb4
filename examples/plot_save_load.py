"""
Saving and loading a fitted VidSage pipeline
============================================

A fitted skvidsage pipeline is a plain scikit-learn object: ``joblib.dump`` /
``pickle`` save it with everything it needs to embed new videos (the
reference videos of the graph, the trained network, the classifier), and
``joblib.load`` brings back a model that predicts exactly the same numbers.
This example saves a LiteVidSage pipeline fitted on YouTube-8M video-level
features, reloads it in this process and in a fresh one, compares the
predictions, looks at what takes the space in the file, and shows how the
estimators handle the device (GPU or CPU) they were fitted on.

Set ``SKVIDSAGE_YT8M=DIR`` to use real YouTube-8M video-level files; without
it, a small generated set in the same TFRecord format is used.
"""

# %%
# Fit a pipeline
# --------------
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import joblib
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import normalize

from skvidsage import (
    VideoGraphBuilder,
    VidSageEmbedder,
    dump_youtube8m,
    load_youtube8m,
)

FAST = os.environ.get("SKVIDSAGE_EXAMPLES_FAST", "") not in ("", "0")
OUTPUT = Path(os.environ.get("SKVIDSAGE_OUTPUT", "skvidsage_output"))
OUTPUT.mkdir(parents=True, exist_ok=True)
YT8M = os.environ.get("SKVIDSAGE_YT8M")


def write_generated_yt8m(directory, *, n_files, per_file, n_features=256,
                         n_topics=60, n_classes=20, noise=3.0, random_state=0):
    """Write a generated multi-label set as YouTube-8M video-level TFRecords.

    Each video's ``mean_rgb`` is its hidden topic's centre plus noise; its
    labels are the topic's one to three classes.
    """
    rng = np.random.RandomState(random_state)
    centres = rng.randn(n_topics, n_features)
    topic_labels = [rng.choice(n_classes, rng.randint(1, 4), replace=False)
                    for _ in range(n_topics)]
    paths = []
    for f in range(n_files):
        topics = rng.randint(n_topics, size=per_file)
        X = normalize(centres[topics] + noise * rng.randn(per_file, n_features))
        path = Path(directory) / f"generated{f:04d}.tfrecord"
        labels = [topic_labels[t] for t in topics]
        ids = [f"gen{f:02d}{i:04d}" for i in range(per_file)]
        dump_youtube8m(X, labels, path, ids=ids)
        paths.append(path)
    return paths


tmp = tempfile.TemporaryDirectory(prefix="skvidsage_save_load_")
if YT8M:
    files = sorted(Path(YT8M).glob("*.tfrecord"))[: 2 if FAST else 5]
    print(f"data: {len(files)} YouTube-8M files from {YT8M}")
else:
    files = write_generated_yt8m(tmp.name, n_files=2 if FAST else 5,
                                 per_file=200 if FAST else 400)
    print(f"data: {len(files)} generated YouTube-8M-format files")
train, test = load_youtube8m(files[:-1]), load_youtube8m(files[-1:])
classes = np.flatnonzero(np.asarray(train.target.sum(axis=0)).ravel() >= 10)
Y_train = train.target[:, classes].toarray()
X_train, Y_train = train.data[Y_train.any(axis=1)], Y_train[Y_train.any(axis=1)]
X_test = test.data

pipe = Pipeline([
    ("graph", VideoGraphBuilder(tau=-0.3)),
    ("embed", VidSageEmbedder(hidden_dims=(128, 64),
                              max_epochs=3 if FAST else 20, random_state=0)),
    ("clf", OneVsRestClassifier(LogisticRegression(max_iter=1000))),
])
t0 = time.perf_counter()
pipe.fit(X_train, Y_train)
print(f"fitted on {len(X_train)} videos, {len(classes)} classes, in "
      f"{time.perf_counter() - t0:.1f} s")
scores = pipe.predict_proba(X_test)

# %%
# Save, load, predict
# -------------------
# ``joblib.dump`` is ``pickle`` with efficient storage of large NumPy arrays
# (and optional compression). Only load files you trust: unpickling runs code.
path = OUTPUT / "litevidsage_pipeline.joblib"
joblib.dump(pipe, path)
print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
compressed = Path(tmp.name) / "pipeline.joblib.z"
joblib.dump(pipe, compressed, compress=3)
print(f"with compress=3: {compressed.stat().st_size / 1e6:.2f} MB")

loaded = joblib.load(path)
same = np.array_equal(loaded.predict_proba(X_test), scores)
print(f"loaded pipeline: identical predict_proba on {len(X_test)} unseen "
      f"videos? {same}")
assert same

# %%
# The same with the standard library's ``pickle``, and in a fresh Python
# process that has never seen the model (as a serving process would). The
# child process also hides every GPU, the situation of a model fitted on a
# GPU machine and served on a CPU one.
blob = pickle.dumps(pipe, protocol=pickle.HIGHEST_PROTOCOL)
print(f"pickle.dumps: {len(blob) / 1e6:.2f} MB")
assert np.array_equal(pickle.loads(blob).predict_proba(X_test), scores)

np.save(Path(tmp.name) / "X_test.npy", X_test)
child = f"""
import joblib, numpy as np, torch
pipe = joblib.load({str(path)!r})
scores = pipe.predict_proba(np.load({str(Path(tmp.name) / "X_test.npy")!r}))
np.save({str(Path(tmp.name) / "child.npy")!r}, scores)
print("child process: CUDA available:", torch.cuda.is_available(),
      "| embedder device_:", pipe.named_steps["embed"].device_)
"""
result = subprocess.run([sys.executable, "-c", child], capture_output=True,
                        text=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
                        check=False)
print(result.stdout.strip() or result.stderr[-2000:])
child_scores = np.load(Path(tmp.name) / "child.npy")
print(f"fresh process: identical predict_proba? "
      f"{np.array_equal(child_scores, scores)}")

# %%
# What takes the space
# --------------------
# The graph builder keeps the reference (training) videos' features, since
# new videos are linked to them; the embedder keeps them too, with their
# hidden states after each layer and the network weights; the classifier has
# one weight vector per class. Pickle stores an array shared by two steps only
# once, which is why the parts can add up to more than the whole.
sizes = {name: len(pickle.dumps(step, protocol=pickle.HIGHEST_PROTOCOL))
         for name, step in pipe.named_steps.items()}
embed = pipe.named_steps["embed"]
n_weights = sum(p.numel() for p in embed.module_.parameters())
print(f"{'step':<8}{'pickled MB':>12}")
for name, size in sizes.items():
    print(f"{name:<8}{size / 1e6:>12.2f}")
print(f"{'whole':<8}{len(blob) / 1e6:>12.2f}")
print(f"reference videos: {embed.reference_features_.shape}, network weights: "
      f"{n_weights:,} ({n_weights * 4 / 1e6:.2f} MB as float32)")

fig, (ax_size, ax_pred) = plt.subplots(1, 2, figsize=(10, 4))
ax_size.bar([*sizes, "whole"], [*(s / 1e6 for s in sizes.values()),
                                len(blob) / 1e6], color=["C0", "C1", "C2", "C7"])
ax_size.set_ylabel("pickled size (MB)")
ax_size.set_title("What a saved pipeline holds")
ax_pred.scatter(scores.ravel(), child_scores.ravel(), s=4, alpha=0.5)
ax_pred.plot([0, 1], [0, 1], color="black", linewidth=0.8)
ax_pred.set_xlabel("predict_proba before saving")
ax_pred.set_ylabel("predict_proba after loading (fresh process)")
ax_pred.set_title("Identical predictions")
fig.tight_layout()
figure = OUTPUT / "save_load.png"
fig.savefig(figure, dpi=100)
print(f"wrote {figure}")

# %%
# Devices: fitted on a GPU, loaded on a CPU
# -----------------------------------------
# ``device="auto"`` (the default of the graph builder and the embedder)
# resolves to CUDA when it is available; the resolved device is the fitted
# attribute ``device_``. After training, the embedder moves its network and
# its reference states back to the CPU (``module_`` and
# ``reference_states_`` are CPU tensors / NumPy arrays), so a pickle never
# holds CUDA tensors and needs no ``torch.load(..., map_location="cpu")``.
# Unpickled on a machine without CUDA, a ``device_`` of ``cuda`` falls back
# to the CPU.
print(f"\nCUDA available here: {torch.cuda.is_available()}")
print(f"graph.device_ = {pipe.named_steps['graph'].device_}, "
      f"embed.device_ = {embed.device_}")
print(f"devices of the embedder's weights: "
      f"{sorted({str(p.device) for p in embed.module_.parameters()})}")
if torch.cuda.is_available():
    gpu_pipe = pipe.set_params(graph__device="cuda", embed__device="cuda")
    gpu_pipe.fit(X_train, Y_train)
    gpu_path = Path(tmp.name) / "gpu.joblib"
    joblib.dump(gpu_pipe, gpu_path)
    child = child.replace(repr(str(path)), repr(str(gpu_path)))
    result = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""}, check=False)
    print("GPU-fitted pipeline loaded where CUDA is hidden:",
          result.stdout.strip() or result.stderr[-2000:])
    gpu_scores = np.load(Path(tmp.name) / "child.npy")
    print("largest difference to the CPU-fitted model's predictions: "
          f"{np.abs(gpu_scores - scores).max():.2e} (GPU kernels round "
          "differently, so GPU training is not bit-identical to CPU training)")
else:
    print("No CUDA device here, so this run fitted on the CPU. On a GPU machine "
          "this section fits the same pipeline with device='cuda', saves it and "
          "loads it in a process where CUDA is hidden: it loads without "
          "map_location and predicts on the CPU.")

# %%
# ``set_params`` changes the device for the next fit
# ---------------------------------------------------
# ``device`` is an ordinary hyperparameter: ``set_params(embed__device="cpu")``
# on a loaded pipeline does not move anything by itself (the fitted
# ``device_`` stays what ``fit`` resolved) but the next ``fit`` runs there.
# On the CPU the embedder is deterministic for a fixed ``random_state``, so
# refitting on the CPU reproduces the saved model's predictions exactly.
loaded.set_params(graph__device="cpu", embed__device="cpu")
print(f"\nafter set_params: embed.device = "
      f"{loaded.named_steps['embed'].device!r}, fitted device_ still "
      f"{loaded.named_steps['embed'].device_}")
t0 = time.perf_counter()
loaded.fit(X_train, Y_train)
refit_scores = loaded.predict_proba(X_test)
print(f"refitted on the CPU in {time.perf_counter() - t0:.1f} s: "
      f"device_ = {loaded.named_steps['embed'].device_}; max difference to the "
      f"saved model: {np.abs(refit_scores - scores).max():.2e}")

tmp.cleanup()
