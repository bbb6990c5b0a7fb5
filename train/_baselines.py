"""Sanity baselines on the bundle's own splits, and the chance-level gate.

* ``majority``: always the most frequent training class
  (scikit-learn ``DummyClassifier(strategy="most_frequent")``).
* ``linear``: scikit-learn logistic regression, its ``C`` chosen by 3-fold
  cross-validation, on the standardised flattened model inputs (images,
  vectors), or on TF-IDF word 1-2-grams of the raw strings (text). Fitted on
  train + validation (what the network learns from), scored on the test split.
  With fewer samples than input values the standardised inputs are first
  rotated onto all their principal axes (PCA without truncation or
  whitening): an L2-regularised linear model's weights lie in the span of its
  training inputs, so the model is the same and the fit is 10x faster.

The chance gate asks whether an accuracy on ``n`` test samples is
significantly above the majority baseline ``p0``: a one-sided exact binomial
test, ``P(X >= k | n, p0) < alpha`` (alpha 0.01 by default). A fixed margin
would be too strict on 1,000 samples and too lenient on 40; the test gives the
smallest accuracy that chance explains less than 1% of the time (on 40
balanced 2-class samples: 0.70; on 360 10-class digits: 0.14).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeship.core.bundle import Baselines
from edgeship.core.bundle import ChanceCheck as ChanceRecord

from ._stream import chunks, is_lazy

#: The linear baseline fits on at most this many samples (a seeded subsample), to bound its cost.
MAX_LINEAR_SAMPLES = 5000
#: For a folder streamed from disk, at most this many (decoded, flattened) samples: memory stays bounded.
MAX_STREAMED_LINEAR_SAMPLES = 1000


def baselines(ds: Any, *, seed: int = 0) -> Baselines:
    """The majority-class and linear baselines (:class:`~edgeship.core.bundle.Baselines`) on ``ds``'s test split."""
    from sklearn.dummy import DummyClassifier

    majority = DummyClassifier(strategy="most_frequent").fit(np.zeros((len(ds.y_train), 1)), ds.y_train)
    majority_accuracy = float(majority.score(np.zeros((len(ds.y_test), 1)), ds.y_test))
    majority_class = int(majority.predict(np.zeros((1, 1)))[0])
    linear, linear_model = _linear_baseline(ds, seed)
    return Baselines(majority=majority_accuracy, majority_class=majority_class, linear_model=linear_model,
                     linear=linear)


def _linear_baseline(ds: Any, seed: int) -> tuple[float, str]:
    """The linear baseline's test accuracy and what it is (see the module docstring)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline

    x_fit, y_fit, x_test, front, described = _linear_inputs(ds, seed)
    folds = int(min(3, np.bincount(y_fit)[np.bincount(y_fit) > 0].min()))
    clf = LogisticRegressionCV(Cs=[1e-3, 1e-2, 1e-1, 1.0, 10.0], cv=max(2, folds), max_iter=500, random_state=seed)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a baseline, not the product: 500 iterations is enough
        warnings.simplefilter("ignore", FutureWarning)  # scikit-learn 1.8 announces 1.10 defaults on every fit
        model = make_pipeline(front, clf).fit(x_fit, y_fit)
    if not len(ds.y_test):
        return float("nan"), described
    if is_lazy(x_test):
        pred = np.concatenate([model.predict(part.reshape(len(part), -1)) for part in chunks(x_test)])
        return float(np.mean(pred == ds.y_test)), described
    return float(model.score(x_test, ds.y_test)), described


def _linear_inputs(ds: Any, seed: int) -> tuple[Any, np.ndarray, Any, Any, str]:
    """``(x_fit, y_fit, x_test, front, description)``: the linear baseline's inputs and its feature step.

    Fitted on train + validation, at most ``MAX_LINEAR_SAMPLES`` of them (seeded); TF-IDF for text,
    standardised flattened inputs otherwise (a streamed folder: at most ``MAX_STREAMED_LINEAR_SAMPLES``).
    """
    from sklearn.preprocessing import StandardScaler

    y_fit = np.concatenate([ds.y_train, ds.y_val])
    texts = ds.extras.get("train_texts") if ds.extras else None
    keep = np.arange(len(y_fit))
    if len(y_fit) > MAX_LINEAR_SAMPLES:
        keep = np.sort(np.random.default_rng(seed).choice(len(y_fit), MAX_LINEAR_SAMPLES, replace=False))
        y_fit = y_fit[keep]
    if texts is not None and "test_texts" in ds.extras:
        from sklearn.feature_extraction.text import TfidfVectorizer

        return ([texts[i] for i in keep], y_fit, list(ds.extras["test_texts"]),
                TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                "TF-IDF word 1-2-grams + logistic regression (C by 3-fold CV)")
    if is_lazy(ds.x_train) or is_lazy(ds.x_test):  # a streamed folder: a bounded sample, test scored in chunks
        if len(keep) > MAX_STREAMED_LINEAR_SAMPLES:
            keep = np.sort(np.random.default_rng(seed).choice(keep, MAX_STREAMED_LINEAR_SAMPLES, replace=False))
            y_fit = np.concatenate([ds.y_train, ds.y_val])[keep]
        n = len(ds.y_train)
        parts = [np.asarray(ds.x_train[keep[keep < n]]), np.asarray(ds.x_val[keep[keep >= n] - n])]
        x_fit = np.concatenate([p.reshape(len(p), -1) for p in parts]).astype(np.float32)
        return (x_fit, y_fit, ds.x_test, _standardise(x_fit, StandardScaler()),
                "standardised flattened inputs + logistic regression (C by 3-fold CV), fitted on "
                f"{len(y_fit)} samples (streamed folder)")
    x_all = np.concatenate([ds.x_train, ds.x_val])
    x_fit = x_all.reshape(len(x_all), -1)[keep].astype(np.float32)
    x_test = ds.x_test.reshape(len(ds.x_test), -1).astype(np.float32)
    return (x_fit, y_fit, x_test, _standardise(x_fit, StandardScaler()),
            "standardised flattened inputs + logistic regression (C by 3-fold CV)")


def _standardise(x_fit: np.ndarray, scaler: Any) -> Any:
    """``scaler``, then a rotation onto all principal axes when there are fewer samples than input values."""
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline

    if x_fit.shape[1] > len(x_fit):
        return make_pipeline(scaler, PCA(n_components=min(x_fit.shape), svd_solver="full"))
    return scaler


CHANCE_RULE = "one-sided exact binomial test against the majority baseline: P(X >= correct | n, majority) < alpha"


@dataclass(frozen=True, kw_only=True)
class ChanceCheck(ChanceRecord):
    """The chance-level gate for one accuracy: the manifest's record, plus how much data would let it pass."""

    def samples_needed(self) -> int:
        """The fewest test samples on which a perfect score would pass: ``majority ** n < alpha``."""
        p0 = min(max(self.majority, 1e-12), 1.0 - 1e-12)
        return int(math.floor(math.log(self.alpha) / math.log(p0))) + 1


def chance_check(accuracy: float, samples: int, majority: float, alpha: float = 0.01) -> ChanceCheck:
    """Test ``accuracy`` on ``samples`` test samples against the majority baseline ``majority``."""
    from scipy.stats import binom

    n = int(samples)
    k = int(round(accuracy * n))
    p0 = min(max(float(majority), 1e-12), 1.0)
    p_value = float(binom.sf(k - 1, n, p0)) if n else 1.0  # P(X >= k)
    ks = np.arange(n + 1)
    ok = ks[binom.sf(ks - 1, n, p0) < alpha]
    required = float(ok[0] / n) if n and len(ok) else 1.0
    return ChanceCheck(rule=CHANCE_RULE, accuracy=float(accuracy), majority=float(majority), samples=n,
                       alpha=float(alpha), required_accuracy=required, p_value=p_value, passed=p_value < alpha)
