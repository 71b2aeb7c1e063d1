"""The decision's logistic regression and AUC (leakscan.calibrate) against scikit-learn's."""

import numpy as np
import pytest

from leakscan.calibrate import logistic_fit, roc_auc

sklearn = pytest.importorskip("sklearn")


@pytest.mark.parametrize("seed, n, share", [(0, 400, 0.5), (1, 3000, 0.1), (2, 60, 0.8)])
def test_logistic_fit_matches_scikit_learn(seed, n, share):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    x[:, 5] = x[:, 4] * 0.9 + rng.normal(scale=0.1, size=n)  # correlated columns, as evidence has
    y = (rng.random(n) < share) & (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=1.0, size=n) > -1)
    y = y.astype(int)
    coef, intercept = logistic_fit(x, y)
    ref = LogisticRegression(C=1.0, class_weight="balanced", max_iter=5000, tol=1e-10).fit(x, y)
    np.testing.assert_allclose(coef, ref.coef_[0], atol=2e-4)
    assert abs(intercept - ref.intercept_[0]) < 2e-4


def test_roc_auc_matches_scikit_learn_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    y = rng.random(500) < 0.3
    score = np.round(rng.random(500) + 0.3 * y, 1)  # many ties
    assert roc_auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)


def test_sign_bounds_hold_a_weight_at_zero_and_leave_the_rest_as_without_it():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(4)
    n = 2000
    x = rng.normal(size=(n, 4))
    # column 2 speaks against y in this sample; bounded to speak only for it, it must get 0
    y = (x[:, 0] + 0.7 * x[:, 1] - 0.8 * x[:, 2] + rng.normal(scale=1.0, size=n) > 0.3).astype(int)
    free, free_intercept = logistic_fit(x, y)
    assert free[2] < -0.3
    coef, intercept = logistic_fit(x, y, signs=np.array([1, 1, 1, 0]))
    assert coef[2] == 0.0 and coef[0] > 0 and coef[1] > 0
    # the bound is active, so the other weights are the fit without that column
    ref = LogisticRegression(C=1.0, class_weight="balanced", max_iter=5000, tol=1e-10).fit(x[:, [0, 1, 3]], y)
    np.testing.assert_allclose(coef[[0, 1, 3]], ref.coef_[0], atol=1e-3)
    assert abs(intercept - ref.intercept_[0]) < 1e-3
    # bounds that the free fit already keeps change nothing
    same, same_intercept = logistic_fit(x, y, signs=np.sign(free).astype(int))
    np.testing.assert_allclose(same, free, atol=1e-3)
    assert abs(same_intercept - free_intercept) < 1e-3


def test_sign_bounded_fit_matches_scipy_bounded_minimiser():
    from scipy.optimize import minimize

    rng = np.random.default_rng(5)
    n, d = 1500, 8
    x = rng.normal(size=(n, d))
    x[:, 7] = x[:, 6] * 0.95 + rng.normal(scale=0.1, size=n)  # collinear, as evidence is
    y = (x @ np.array([1.0, -0.6, 0.4, -0.3, 0.0, 0.5, 0.8, -0.5]) + rng.normal(size=n) > 0.4).astype(int)
    signs = np.array([1, 1, 1, 1, -1, 0, 1, 1])
    coef, intercept = logistic_fit(x, y, signs=signs)
    w = np.where(y > 0, n / (2 * y.sum()), n / (2 * (n - y.sum())))
    xa = np.c_[x, np.ones(n)]

    def loss(b):
        t = xa @ b
        return np.sum(w * (np.logaddexp(0, t) - y * t)) + 0.5 * np.sum(b[:d] ** 2)

    bounds = [(0, None) if s > 0 else (None, 0) if s < 0 else (None, None) for s in signs] + [(None, None)]
    ref = minimize(loss, np.zeros(d + 1), method="L-BFGS-B", bounds=bounds, options={"gtol": 1e-10, "ftol": 1e-14})
    assert (signs * coef >= 0).all() and (coef[[1, 3]] == 0).all()  # the two columns that speak the other way
    np.testing.assert_allclose(np.r_[coef, intercept], ref.x, atol=2e-3)


def test_a_per_column_penalty_is_the_scaled_norm_term_and_shrinks_that_weight():
    from scipy.optimize import minimize

    rng = np.random.default_rng(6)
    n, d = 1200, 4
    x = rng.normal(size=(n, d))
    x[:, 3] = (rng.random(n) < 0.3).astype(float)  # a 0/1 column, as the readings are
    y = (x[:, 0] + 0.5 * x[:, 1] + 0.8 * x[:, 3] + rng.normal(size=n) > 0.2).astype(int)
    penalty = np.array([1.0, 1.0, 1.0, 0.1 * n])  # as the decision holds the reading columns
    coef, intercept = logistic_fit(x, y, penalty=penalty)
    free, _ = logistic_fit(x, y)
    w = np.where(y > 0, n / (2 * y.sum()), n / (2 * (n - y.sum())))
    xa = np.c_[x, np.ones(n)]

    def loss(b):
        t = xa @ b
        return np.sum(w * (np.logaddexp(0, t) - y * t)) + 0.5 * np.sum(penalty * b[:d] ** 2)

    ref = minimize(loss, np.zeros(d + 1), method="L-BFGS-B", options={"gtol": 1e-10, "ftol": 1e-14})
    np.testing.assert_allclose(np.r_[coef, intercept], ref.x, atol=2e-3)
    assert 0 < coef[3] < 0.5 * free[3]  # held towards 0, not to it
    np.testing.assert_allclose(coef[:2], free[:2], rtol=0.2)  # the other evidence still decides


def test_bagged_fit_resamples_whole_source_pictures_and_is_reproducible():
    """The decision is the mean of fits on resamples of the source pictures: every pair of a
    picture drawn goes in together, the draws are seeded, and sign bounds hold in the mean."""
    from leakscan.calibrate import BAGS, _bagged  # noqa: PLC0415

    rng = np.random.default_rng(3)
    n = 240
    signal = rng.normal(size=n)
    y = (signal + 0.8 * rng.normal(size=n) > 0).astype(int)
    x = np.c_[signal + 0.05 * rng.normal(size=n), signal + 0.05 * rng.normal(size=n), -y + 0.3 * rng.normal(size=n)]
    picture = np.arange(n) // 4  # four pairs per source picture
    digest = np.zeros((n, 16), np.uint8)
    digest[:, 0], digest[:, 1] = picture % 256, picture // 256
    signs = np.array([1, 1, 1])
    seen = []

    def fit(rows):
        seen.append(np.asarray(rows))
        return logistic_fit(x[rows], y[rows], signs=signs)

    coef, intercept = _bagged(fit, digest, y)
    assert len(seen) == BAGS
    for rows in seen:
        counts = np.bincount(rows, minlength=n).reshape(-1, 4)
        assert np.all(counts == counts[:, :1])  # a picture's pairs are drawn together, as often
        assert 0 < len(np.unique(picture[rows])) < n // 4  # a resample: some pictures twice, some not
    assert np.all(coef >= 0) and coef[2] == 0  # the third column speaks against: held at its bound
    again = _bagged(lambda rows: logistic_fit(x[rows], y[rows], signs=signs), digest, y)
    assert np.array_equal(coef, again[0]) and intercept == again[1]
    # resamples of one class are not fitted; if every one is, the whole set is
    one_class = np.zeros((n, 16), np.uint8)  # a single source picture: each resample is all of it
    assert _bagged(fit, one_class, y)[0].shape == (3,)
    only_copies = np.ones(n, int)
    fitted = []
    _bagged(lambda rows: fitted.append(rows) or (np.zeros(3), 0.0), digest, only_copies)
    assert len(fitted) == 1 and len(fitted[0]) == n


def test_the_fit_computes_on_one_blas_thread_and_gives_back_the_threads(monkeypatch):
    # its products are of a few columns: on a busy machine several BLAS threads took 10 to 30
    # times as long (the pool's workers compete for the cores)
    from threadpoolctl import threadpool_info, threadpool_limits

    import leakscan.calibrate

    def blas_threads():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    seen, newton = [], leakscan.calibrate._newton

    def spy(*args):
        seen.append(blas_threads())
        return newton(*args)

    monkeypatch.setattr(leakscan.calibrate, "_newton", spy)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(500, 4))
    y = (x[:, 0] + rng.normal(size=500) > 0).astype(int)
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        logistic_fit(x, y)
        assert blas_threads() == before == [2] * len(before)  # given back
    assert seen and seen[0] and all(n == 1 for n in seen[0])
