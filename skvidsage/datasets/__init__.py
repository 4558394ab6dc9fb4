"""Dataset loaders and generators.

- :func:`load_youtube8m` reads YouTube-8M TFRecord files (video or frame level)
  into scikit-learn style arrays, without TensorFlow; :func:`dump_youtube8m`
  writes video-level features and labels in that format.
- :func:`make_video_classification` generates a labelled video-classification
  set as real ``.mp4`` files (cached under ``data_home``), for examples and
  tests that need videos to decode.
"""

from skvidsage.datasets._synthetic import make_video_classification
from skvidsage.datasets._tfrecord import TFRecordError, TFRecordWarning
from skvidsage.datasets._youtube8m import dump_youtube8m, load_youtube8m

__all__ = [
    "TFRecordError",
    "TFRecordWarning",
    "dump_youtube8m",
    "load_youtube8m",
    "make_video_classification",
]
