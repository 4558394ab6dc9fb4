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
