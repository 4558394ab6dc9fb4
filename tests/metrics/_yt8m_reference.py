"""An independent, literal re-implementation of the YouTube-8M starter code metrics.

The tests compare :mod:`skvidsage.metrics` against this module. It follows the
algorithm of the starter code's ``eval_util.py``,
``average_precision_calculator.py`` and ``mean_average_precision_calculator.py``
step by step (per-video ``argpartition`` top-k, a heap of (score, label) pairs,
a ``random.seed(0)`` shuffle, a stable descending sort, the running-precision
sum with ``delta_recall = 1 / num_positives``), with deliberately plain Python
loops so that it shares no code with the vectorised implementation. It is test
scaffolding, not part of the package.
"""

import heapq
import random

import numpy as np


def hit_at_one(predictions, actuals):
    top = np.argmax(predictions, 1)
    return float(np.average(actuals[np.arange(actuals.shape[0]), top]))


def perr(predictions, actuals):
    total = 0.0
    for row in range(actuals.shape[0]):
        n_labels = int(np.sum(actuals[row]))
        top = np.argpartition(predictions[row], -n_labels)[-n_labels:]
        precision = 0.0
        for idx in top:
            if predictions[row][idx] > 0:
                precision += actuals[row][idx]
        total += precision / top.size
    return total / actuals.shape[0]


class _APCalculator:
    """Accumulates (score, label) pairs in a heap; AP over them on request."""

    def __init__(self):
        self.total_positives = 0
        self.heap = []

    def accumulate(self, predictions, actuals, num_positives):
        self.total_positives += num_positives
        for p, a in zip(predictions, actuals, strict=False):
            heapq.heappush(self.heap, (p, a))

    def ap(self):
        if not self.heap:
            return 0.0
        preds, acts = (np.array(v) for v in zip(*self.heap, strict=False))
        random.seed(0)
        perm = random.sample(range(len(preds)), len(preds))
        preds, acts = preds[perm], acts[perm]
        order = sorted(range(len(preds)), key=lambda i: preds[i], reverse=True)
        if self.total_positives == 0:
            return 0.0
        delta_recall = 1.0 / self.total_positives
        ap, seen = 0.0, 0.0
        for i, idx in enumerate(order):
            if acts[idx] > 0:
                seen += 1
                ap += seen / (i + 1) * delta_recall
        return ap


def _top_k_by_class(predictions, actuals, k):
    n_classes = predictions.shape[1]
    k = min(k, n_classes)
    per_class_preds = [[] for _ in range(n_classes)]
    per_class_acts = [[] for _ in range(n_classes)]
    for video in range(predictions.shape[0]):
        top = np.argpartition(predictions[video], -k)[-k:]
        for c in top:
            per_class_preds[c].append(predictions[video][c])
            per_class_acts[c].append(actuals[video][c])
    positives = [np.sum(actuals[:, c]) for c in range(n_classes)]
    return per_class_preds, per_class_acts, positives


def gap(predictions, actuals, top_k=20):
    preds, acts, positives = _top_k_by_class(predictions, actuals, top_k)
    calc = _APCalculator()
    calc.accumulate(
        [p for lst in preds for p in lst],
        [a for lst in acts for a in lst],
        sum(positives),
    )
    return calc.ap()


def mean_ap(predictions, actuals, top_k=20):
    preds, acts, positives = _top_k_by_class(predictions, actuals, top_k)
    aps = []
    for c in range(predictions.shape[1]):
        calc = _APCalculator()
        calc.accumulate(preds[c], acts[c], positives[c])
        if calc.total_positives == 0:  # filter_empty_classes
            continue
        aps.append(calc.ap())
    return float(np.mean(aps))
