"""scikit-learn conventions, estimator by estimator (issue 15).

One table lists every public transformer and meta-estimator; each test
below runs one convention over it: ``get_params`` / ``clone``, the HTML
repr, ``feature_names_in_`` from a DataFrame, and for the transformers
``set_output`` and ``get_feature_names_out``. The Pipeline tests after it
are the calls the scikit-learn documentation teaches.
"""

from dataclasses import dataclass, field

import numpy as np
import pytest
import sklearn
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.utils.validation import check_is_fitted

from skvidsage import (
    GraphSmoothingClassifier,
    VideoFeatures,
    VideoFeaturizer,
    VideoGraph,
    VideoGraphBuilder,
    VidSageEmbedder,
)

try:
    import pandas as pd
except ImportError:  # the DataFrame tests skip, the others run on arrays
    pd = None

needs_pandas = pytest.mark.skipif(pd is None, reason="needs pandas")

_COLUMNS = ["red", "green", "blue", "motion"]


def _features(n=40, seed=0):
    """Two clusters of 4-d video features, with their labels."""
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 2
    X = (3 * y[:, None] + rng.randn(n, len(_COLUMNS))).astype(np.float32)
    return X, y


def _frame_features(n=6, seed=0):
    """Precomputed (T, 5) frame features of ``n`` videos."""
    rng = np.random.RandomState(seed)
    return [rng.randn(t, 5).astype(np.float32) for t in rng.randint(2, 6, n)]


@dataclass
class Case:
    """One estimator of the table and what it takes."""

    make: object
    transformer: bool = True
    # input features as named columns; False: the input is videos
    takes_dataframe: bool = True
    kwargs: dict = field(default_factory=dict)

    def data(self):
        if not self.takes_dataframe:
            return _frame_features(), None
        X, y = _features()
        return (X if pd is None else pd.DataFrame(X, columns=_COLUMNS)), y

    def fitted(self):
        X, y = self.data()
        return self.make().fit(X, y), X


CASES = {
    "VideoFeaturizer": Case(
        lambda: VideoFeaturizer(backbone=None, n_frames=3), takes_dataframe=False
    ),
    "VideoGraphBuilder": Case(lambda: VideoGraphBuilder(n_neighbors=3)),
    "VidSageEmbedder": Case(
        lambda: VidSageEmbedder(hidden_dims=(3,), max_epochs=2, random_state=0)
    ),
    "GraphSmoothingClassifier": Case(
        lambda: GraphSmoothingClassifier(smoothing=0.5), transformer=False
    ),
}
TRANSFORMERS = [name for name, case in CASES.items() if case.transformer]


def _output_width(out):
    return out.features.shape[1] if isinstance(out, VideoGraph) else out.shape[1]


# --------------------------------------------------------------------------
# every estimator
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name", CASES)
def test_get_params_and_clone(name):
    est = CASES[name].make()
    params = est.get_params()
    twin = clone(est)
    assert twin is not est and type(twin) is type(est)
    assert repr(twin.get_params()) == repr(params)
    assert twin.set_params(**params) is twin
    fitted, _ = CASES[name].fitted()
    unfitted = clone(fitted)
    with pytest.raises(NotFittedError):
        check_is_fitted(unfitted)
    assert repr(unfitted.get_params()) == repr(params)


@pytest.mark.parametrize("name", CASES)
def test_html_repr(name):
    est = CASES[name].make()
    html = est._repr_html_()
    assert name in html and "Fitted attributes" not in html
    fitted, _ = CASES[name].fitted()
    html = fitted._repr_html_()
    assert name in html and "Fitted attributes" in html
    if CASES[name].transformer:  # scikit-learn lists the output names
        assert fitted.get_feature_names_out()[-1] in html
    pipe_html = make_pipeline(clone(est))._repr_html_()
    assert "Pipeline" in pipe_html and name in pipe_html


@needs_pandas
@pytest.mark.parametrize("name", CASES)
def test_feature_names_in_from_a_dataframe(name):
    case = CASES[name]
    est, X = case.fitted()
    if not case.takes_dataframe:  # videos in, no named columns to keep
        assert not hasattr(est, "feature_names_in_")
        return
    np.testing.assert_array_equal(est.feature_names_in_, _COLUMNS)
    assert est.feature_names_in_.dtype == object
    renamed = X.rename(columns={"motion": "audio"})
    method = est.transform if case.transformer else est.predict
    with pytest.raises(ValueError, match="feature names should match"):
        method(renamed)


# --------------------------------------------------------------------------
# transformers
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name", TRANSFORMERS)
def test_get_feature_names_out(name):
    est, X = CASES[name].fitted()
    names = est.get_feature_names_out()
    assert isinstance(names, np.ndarray) and names.dtype == object
    assert all(isinstance(n, str) for n in names)
    assert len(set(names)) == len(names) == _output_width(est.transform(X))
    with pytest.raises(NotFittedError):
        CASES[name].make().get_feature_names_out()


def test_a_classifier_has_no_output_names_or_set_output():
    clf, _ = CASES["GraphSmoothingClassifier"].fitted()
    assert not hasattr(clf, "get_feature_names_out")
    assert not hasattr(clf, "set_output")


@needs_pandas
@pytest.mark.parametrize("context", ["set_output", "set_config"])
@pytest.mark.parametrize("name", TRANSFORMERS)
def test_set_output_pandas(name, context):
    case = CASES[name]
    X, y = case.data()
    default = case.make().fit(X, y)
    expected = default.transform(X)
    est = case.make()
    if context == "set_output":
        assert est.set_output(transform="pandas") is est
        out, refit = est.fit(X, y).transform(X), est.fit_transform(X, y)
    else:
        with sklearn.config_context(transform_output="pandas"):
            out, refit = est.fit(X, y).transform(X), est.fit_transform(X, y)
    if isinstance(expected, VideoGraph):  # no DataFrame form: unchanged
        for graph in (out, refit):
            assert isinstance(graph, VideoGraph)
            assert (graph.adjacency != expected.adjacency).nnz == 0
            np.testing.assert_array_equal(graph.features, expected.features)
        return
    for frame in (out, refit):
        assert isinstance(frame, pd.DataFrame)
        assert list(frame.columns) == list(est.get_feature_names_out())
        np.testing.assert_allclose(frame.to_numpy(), expected, rtol=1e-6)
        if case.takes_dataframe:
            assert frame.index.equals(X.index)


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_set_output_rejects_an_unknown_container(name):
    with pytest.raises(ValueError, match="numpy"):
        CASES[name].make().set_output(transform="numpy").fit_transform(
            *CASES[name].data()
        )


# --------------------------------------------------------------------------
# pipelines
# --------------------------------------------------------------------------
def _embedding_pipeline(*head):
    return make_pipeline(
        VideoGraphBuilder(n_neighbors=5),
        VidSageEmbedder(hidden_dims=(3,), max_epochs=2, random_state=0),
        *head,
    )


@needs_pandas
def test_pipeline_set_output_returns_named_blocks():
    X, _ = _features()
    pipe = _embedding_pipeline()
    assert pipe.set_output(transform="pandas") is pipe
    Z = pipe.fit_transform(pd.DataFrame(X, columns=_COLUMNS))
    assert isinstance(Z, pd.DataFrame)
    assert list(Z.columns) == [f"x_{c}" for c in _COLUMNS] + [
        f"hop{k}_{c}" for k in (1, 2) for c in _COLUMNS
    ] + ["layer1_0", "layer1_1", "layer1_2"]
    assert list(pipe.get_feature_names_out()) == list(Z.columns)
    np.testing.assert_allclose(Z.to_numpy(), _embedding_pipeline().fit_transform(X))
    # arrays in: the columns are numbered, the same through every path
    Z = pipe.fit_transform(X)
    assert list(Z.columns[:2]) == ["x_0", "x_1"]
    assert list(pipe.get_feature_names_out()) == list(Z.columns)


@needs_pandas
@pytest.mark.parametrize("context", ["set_output", "set_config"])
def test_pipeline_with_a_logistic_head_reads_the_dataframe(context):
    X, y = _features()
    df = pd.DataFrame(X, columns=_COLUMNS)
    pipe = _embedding_pipeline(LogisticRegression(max_iter=500))
    if context == "set_output":
        pipe.set_output(transform="pandas").fit(df, y)
        proba, score = pipe.predict_proba(df), pipe.score(df, y)
    else:
        with sklearn.config_context(transform_output="pandas"):
            pipe.fit(df, y)
            proba, score = pipe.predict_proba(df), pipe.score(df, y)
    head = pipe[-1]
    np.testing.assert_array_equal(
        head.feature_names_in_, pipe[:-1].get_feature_names_out()
    )
    assert head.feature_names_in_[0] == "x_red"
    assert head.coef_.shape == (1, len(head.feature_names_in_))
    plain = _embedding_pipeline(LogisticRegression(max_iter=500)).fit(X, y)
    np.testing.assert_allclose(proba, plain.predict_proba(X), rtol=1e-5)
    assert score > 0.9


def _pool(frames):
    return torch.as_tensor(frames, dtype=torch.float32).permute(0, 3, 1, 2) / 255


@needs_pandas
def test_pipeline_set_output_from_videos_with_and_without_a_detector():
    rng = np.random.RandomState(0)
    clips = [rng.randint(0, 255, (3, 8, 8, 3), dtype=np.uint8) for _ in range(12)]
    backbone = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())

    def detector(frames):
        return [{"bright"} if f.mean() > 127 else set() for f in frames]

    for det in (None, detector):
        featurizer = VideoFeaturizer(backbone=backbone, preprocess=_pool, detector=det)
        pipe = make_pipeline(
            featurizer, VideoGraphBuilder(n_neighbors=3), VidSageEmbedder(hops=1)
        )
        Z = pipe.set_output(transform="pandas").fit_transform(clips)
        assert isinstance(Z, pd.DataFrame) and Z.shape == (12, 6)
        assert list(Z.columns) == list(pipe.get_feature_names_out())
        # the featurizer's rows: a DataFrame; with objects, a VideoFeatures
        rows = pipe[0].transform(clips)
        assert isinstance(rows, VideoFeatures if det else pd.DataFrame)
