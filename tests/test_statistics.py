"""dashboards/statistics.py: a sweep's aggregates, computed on the device, are NumPy's."""

import numpy as np
import pytest

from dashboards import statistics

# Values a sweep's scalars take: spread out, tied (accuracies), signed zeros and infinities.
KINDS = {
    "normal": lambda rng, n: rng.normal(size=n),
    "ties": lambda rng, n: rng.integers(-2, 3, n) / 4,
    "zeros and infinities": lambda rng, n: rng.choice([0.0, -0.0, 1.0, np.inf, -np.inf], n),
    "NaNs": lambda rng, n: rng.choice([0.5, -1.0, 2.0, np.nan], n, p=[0.3, 0.3, 0.3, 0.1]),
    "all the same": lambda rng, n: np.full(n, rng.choice([0.0, -0.0, 0.75])),
    "float32's extremes": lambda rng, n: rng.choice([3.4e38, -3.4e38, 3e38, 1.0], n),
}


@pytest.mark.parametrize("kind", KINDS)
def test_each_points_statistics_are_numpys_over_its_counted_members(kind):
    rng = np.random.default_rng(0)
    for _ in range(20):
        points, seeds = rng.integers(1, 4), rng.integers(1, 10)
        values = KINDS[kind](rng, points * seeds).astype(np.float32)
        counted = rng.random(points * seeds) < 0.7
        stats = statistics.of_points({"loss": values}, counted, points, ("loss",))["loss"]
        for p in range(points):
            seeds_of_p = slice(p * seeds, (p + 1) * seeds)
            chosen = values[seeds_of_p][counted[seeds_of_p]].astype(np.float64)
            if not len(chosen):
                assert np.isnan(stats["median"][p])
                continue
            # The median exactly (the middle value, or the mean of the middle two).
            np.testing.assert_array_equal(stats["median"][p], np.float32(np.median(chosen)))
            np.testing.assert_array_equal(stats["min"][p], np.float32(chosen.min()))
            np.testing.assert_array_equal(stats["max"][p], np.float32(chosen.max()))
            if np.all(np.abs(chosen) < 1e19):  # (finite, and so are their float32 squares)
                mean, std = chosen.mean(), chosen.std()
                np.testing.assert_allclose(stats["mean"][p], mean, rtol=1e-6, atol=1e-7)
                np.testing.assert_allclose(stats["std"][p], std, rtol=1e-5, atol=1e-6)
                np.testing.assert_allclose(stats["lower"][p], mean - std, rtol=1e-5, atol=1e-6)
                np.testing.assert_allclose(stats["upper"][p], mean + std, rtol=1e-5, atol=1e-6)


def test_the_median_of_100000_seeds_is_exact_and_only_where_asked():
    rng = np.random.default_rng(1)
    values = {"loss": rng.lognormal(size=100_000), "grad_norm": rng.normal(size=100_000)}
    values = {tag: v.astype(np.float32) for tag, v in values.items()}  # a big sweep's, 2 points
    stats = statistics.of_points(values, np.ones(100_000, bool), 2, ("loss",))
    for p, seeds in enumerate((slice(0, 50_000), slice(50_000, None))):
        expected = np.median(values["loss"][seeds].astype(np.float64))
        assert stats["loss"]["median"][p] == np.float32(expected)
        assert stats["grad_norm"]["max"][p] == values["grad_norm"][seeds].max()
    assert "median" not in stats["grad_norm"]
