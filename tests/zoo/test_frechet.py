from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from xai.errors import DataError
from xai.zoo._frechet import confident_share, frechet_distance, gaussian_frechet_distance


def test_one_dimensional_gaussians_match_the_closed_form():
    # (mu1 - mu2)^2 + s1 + s2 - 2 sqrt(s1 s2), with s the variances
    mu1, s1, mu2, s2 = 1.5, 4.0, -0.5, 9.0
    expected = (mu1 - mu2) ** 2 + s1 + s2 - 2 * math.sqrt(s1 * s2)  # 4 + 13 - 12 = 5
    assert gaussian_frechet_distance(np.array([mu1]), np.array([[s1]]), np.array([mu2]),
                                     np.array([[s2]])) == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(5.0)


def test_feature_sets_use_their_means_and_unbiased_variances():
    rng = np.random.default_rng(0)
    a, b = rng.normal(2.0, 1.0, 300), rng.normal(-1.0, 3.0, 200)
    s1, s2 = a.var(ddof=1), b.var(ddof=1)
    expected = (a.mean() - b.mean()) ** 2 + s1 + s2 - 2 * math.sqrt(s1 * s2)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-10)


def test_identical_sets_give_zero_even_with_dead_dimensions():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 6))
    x[:, 3] = 0.0  # a dead ReLU unit: singular covariance
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)
    # a shift moves only the mean term: |shift|^2
    assert frechet_distance(x, x + 0.5) == pytest.approx(6 * 0.25, abs=1e-8)


def test_general_covariances_match_the_symmetric_square_root_form():
    # Tr((S_a S_b)^1/2) = Tr((S_a^1/2 S_b S_a^1/2)^1/2), computed here with eigh only
    rng = np.random.default_rng(2)
    m1, m2 = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    cov_a, cov_b = m1 @ m1.T + 0.1 * np.eye(4), m2 @ m2.T + 0.1 * np.eye(4)
    mu_a, mu_b = rng.normal(size=4), rng.normal(size=4)

    def psd_sqrt(m):
        w, v = np.linalg.eigh(m)
        return (v * np.sqrt(np.clip(w, 0, None))) @ v.T

    root_a = psd_sqrt(cov_a)
    expected = (np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b)
                - 2 * np.trace(psd_sqrt(root_a @ cov_b @ root_a)))
    assert gaussian_frechet_distance(mu_a, cov_a, mu_b, cov_b) == pytest.approx(expected, rel=1e-9)


def test_mismatched_feature_sets_are_a_clear_error():
    with pytest.raises(DataError, match="feature sets"):
        frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))


def test_confident_share_counts_top_probabilities_at_the_threshold():
    probs = torch.tensor([[0.95, 0.05], [0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    assert confident_share(probs, 0.9) == 0.5
