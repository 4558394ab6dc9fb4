"""YouTube-8M evaluation metrics and scikit-learn scorers.

The four metrics of the YouTube-8M challenge (Abu-El-Haija et al., 2016), as
computed by its starter code (``eval_util.py``,
``average_precision_calculator.py``, ``mean_average_precision_calculator.py``):

- :func:`hit_at_k_score` (Hit@1 with ``k=1``),
- :func:`precision_at_equal_recall_rate_score` (PERR, also :func:`perr_score`),
- :func:`global_average_precision_score` (GAP@20),
- :func:`mean_average_precision_score` (mAP over the top-20 of each video),

plus :func:`top_k_accuracy_score` for multi-class problems, and scorer objects
(:data:`map_scorer`, :data:`gap_scorer`, :data:`hit_at_one_scorer`,
:data:`perr_scorer`, :func:`top_k_scorer`) for ``cross_val_score`` and
``GridSearchCV``.

Tie order
---------
The reference code breaks exact score ties arbitrarily (``argpartition`` and a
seeded shuffle before a stable sort). Here every tie is broken
deterministically: within a video, a lower class index ranks first; in a pooled
ranking (GAP, and each class's list in mAP), an earlier video ranks first, then
a lower class index. On inputs without exact ties the values equal the
reference's to floating-point rounding.

Inputs without positive labels
------------------------------
A ``y_true`` with no positive label at all (an all-zero indicator matrix)
makes every metric raise a ``ValueError`` that says so: GAP (no positive to
recall) and mAP (no class to average) are undefined, and Hit@k and PERR would
be 0 whatever ``y_score`` is, so a number would only hide that nothing was
measured. (The starter code returns 0 for GAP, Hit@1 and PERR there, and
``nan``, the mean of no class, for mAP.) In ``cross_val_score`` and
``GridSearchCV`` such a test fold gets ``error_score``: ``nan`` by default,
with scikit-learn's "Scoring failed" warning, or the error itself with
``error_score="raise"``; never a 0 that would silently pull a mean down.

Videos without labels *among labelled ones* are valid input and keep the
starter code's meaning: a miss for Hit@k, a 0 that still counts in the mean
for PERR, pairs that can only be negatives in the GAP pool and the per-class
lists of mAP; a class without positives is dropped from mAP. 1-D multi-class
labels (also in :func:`top_k_accuracy_score`) give each sample a positive,
so the rule never applies to them.
"""

from skvidsage.metrics._scorer import (
    gap_scorer,
    hit_at_one_scorer,
    make_youtube8m_scorer,
    map_scorer,
    perr_scorer,
    top_k_scorer,
)
from skvidsage.metrics._scores import (
    global_average_precision_score,
    hit_at_k_score,
    mean_average_precision_score,
    perr_score,
    precision_at_equal_recall_rate_score,
    top_k_accuracy_score,
)

__all__ = [
    "gap_scorer",
    "global_average_precision_score",
    "hit_at_k_score",
    "hit_at_one_scorer",
    "make_youtube8m_scorer",
    "map_scorer",
    "mean_average_precision_score",
    "perr_score",
    "perr_scorer",
    "precision_at_equal_recall_rate_score",
    "top_k_accuracy_score",
    "top_k_scorer",
]
