"""ImageNetTagger: object sets from the backbone's own ImageNet classifier.

Where no detector is available, the classes that the feature backbone's
classifier head ranks high on a frame stand in for detected objects (our
reading of VidSage's Section 3.3; see :doc:`/reading_the_paper`).
"""

import numpy as np
import torch

__all__ = ["IMAGENET", "TAGGER_THRESHOLD", "TAGGER_TOP_K", "ImageNetTagger"]

IMAGENET = "imagenet"  # the tagger's name in load_detector / VideoFeaturizer

# The tagger's defaults, measured on the seven real clips of the shared data
# (docs/results.rst, "VidSage object sets"): a class counts on a frame when it
# is among the frame's 2 most probable and its softmax probability is >= 0.1.
TAGGER_THRESHOLD = 0.1
TAGGER_TOP_K = 2


class ImageNetTagger:
    r"""Object sets from the backbone's own ImageNet classifier: no detector.

    VidSage needs the objects seen on each video's sampled frames (paper
    3.3). Where no detector is available, the classifier head of the
    backbone that gives the features stands in: on each frame, the ImageNet
    classes with a softmax probability of at least ``score_threshold`` among
    the frame's ``top_k`` most probable classes are its labels, and the video's
    object set is the union over its frames, as for a detector. Inside
    :class:`~skvidsage.VideoFeaturizer` (``detector="imagenet"``) the logits
    come from the very forward pass that gives the features: no second
    network and no second decode, so VidSage costs what LiteVidSage costs.

    Inside the featurizer, configure it there (``detector="imagenet"`` with
    ``score_threshold`` and ``top_k``): that tagger reads the featurizer's
    own pass. This class is the type of the featurizer's ``detector_``, and
    tags frames at hand (:meth:`detect`, :meth:`video_objects`) or logits
    computed elsewhere (:meth:`tag`). An instance given as
    ``VideoFeaturizer(detector=tagger)`` works too, but runs its own
    backbone on the frames: a second forward pass.

    Parameters
    ----------
    backbone : skvidsage.video._backbones.Backbone or None, default=None
        A backbone with a classification ``head`` and its ``categories``
        (every named backbone of :func:`~skvidsage.video._backbones.load_backbone`
        with trained weights: the default EfficientNet-Lite0 has ImageNet's
        1,000 classes). None loads the default EfficientNet-Lite0 (shipped
        with its ImageNet head: no download).
    score_threshold : float, default=0.1
        Minimum softmax probability of a class on a frame.
    top_k : int or None, default=2
        At most this many classes per frame, the most probable (ties: the
        lower class index); None: every class above the threshold.
    name : str, default="imagenet"

    Attributes
    ----------
    backbone, score_threshold, top_k, name
        As above.
    categories : tuple of str
        The class names (``backbone.categories``).

    Notes
    -----
    The defaults were measured on the seven real clips of the project's data
    (1 frame per second): they give each clip 2-6 labels, none empty, and
    make the two pairs of clips that show the same footage (an original and
    a damaged or compressed copy) share the most labels (Jaccard 0.62 on
    average) while different clips share almost none (0.01). ImageNet's
    classes are fine-grained (120 dog breeds) and miss common things
    ("person", "tree"), so its labels are a stand-in for detected objects,
    not the same thing: see :ref:`reading_the_paper`.

    Examples
    --------
    >>> import numpy as np
    >>> from skvidsage import ImageNetTagger
    >>> tagger = ImageNetTagger(top_k=1, score_threshold=0.0)
    >>> tagger
    ImageNetTagger(backbone='efficientnet_lite0', score_threshold=0.0, top_k=1)
    >>> [len(s) for s in tagger.detect(np.zeros((2, 64, 64, 3), np.uint8))]
    [1, 1]
    """

    def __init__(
        self,
        backbone=None,
        *,
        score_threshold=TAGGER_THRESHOLD,
        top_k=TAGGER_TOP_K,
        name=IMAGENET,
    ):
        if backbone is None:
            from skvidsage.video._backbones import load_backbone

            backbone = load_backbone()
        if getattr(backbone, "head", None) is None or backbone.categories is None:
            raise ValueError(
                f"The {IMAGENET!r} tagger reads the backbone's classification "
                f"head, but the backbone {getattr(backbone, 'name', backbone)!r} "
                "has none (a user module, SqueezeNet, backbone=None or a weights "
                "file without the head): use a named backbone with trained "
                "weights, e.g. the default 'efficientnet_lite0', or a detector."
            )
        if top_k is not None and int(top_k) < 1:
            raise ValueError(f"top_k must be None or at least 1; got {top_k}.")
        self.backbone = backbone
        self.score_threshold = float(score_threshold)
        self.top_k = None if top_k is None else int(top_k)
        self.name = name

    @property
    def categories(self):
        """Tuple of str: the names of the classifier's classes."""
        return self.backbone.categories

    def tag(self, logits):
        """Return the label set of each frame from its class logits.

        Parameters
        ----------
        logits : array-like of shape (n_frames, n_classes)
            The classifier's logits (e.g. ``Backbone.features(...,
            logits=True)[1]``).

        Returns
        -------
        list of frozenset
            One set of class names per frame.
        """
        logits = torch.as_tensor(np.asarray(logits, dtype=np.float32))
        if logits.ndim != 2 or logits.shape[1] != len(self.categories):
            raise ValueError(
                f"logits must have shape (n_frames, {len(self.categories)}); got "
                f"{tuple(logits.shape)}."
            )
        if len(logits) == 0:
            return []
        probs = torch.softmax(logits.double(), dim=1)
        k = probs.shape[1] if self.top_k is None else min(self.top_k, probs.shape[1])
        order = torch.argsort(probs, dim=1, descending=True, stable=True)[:, :k]
        keep = torch.gather(probs, 1, order) >= self.score_threshold
        return [
            frozenset(self.categories[j] for j in row[mask].tolist())
            for row, mask in zip(order, keep, strict=True)
        ]

    def video_objects_from_logits(self, logits):
        """Union of the label sets of the frames whose logits are given."""
        return frozenset().union(*self.tag(logits))

    def detect(self, frames, device=None, batch_size=32):
        """Return the label set of each frame (runs the backbone on them).

        Inside :class:`~skvidsage.VideoFeaturizer` the logits of the feature
        pass are used instead (:meth:`tag`); this is for frames at hand.

        Parameters
        ----------
        frames : ndarray of shape (T, H, W, 3), dtype uint8
            RGB frames.
        device : torch.device or str, optional
            Where the backbone runs; default CPU.
        batch_size : int, default=32
            Frames per forward pass.

        Returns
        -------
        list of frozenset
            One set per frame.
        """
        _, logits = self.backbone.features(frames, device, batch_size, logits=True)
        return self.tag(logits)

    def __call__(self, frames):
        """Per-frame label sets of uint8 frames ``(B, H, W, 3)`` (on the CPU)."""
        return self.detect(frames)

    def video_objects(self, frames, device=None, batch_size=32):
        """Union of the label sets of all frames (the video's object set)."""
        return frozenset().union(*self.detect(frames, device, batch_size))

    def __repr__(self):
        return (
            f"ImageNetTagger(backbone={self.backbone.name!r}, "
            f"score_threshold={self.score_threshold}, top_k={self.top_k})"
        )
