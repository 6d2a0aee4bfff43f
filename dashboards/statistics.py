"""What a sweep's aggregate runs show of a scalar, computed where it is.

`of_points(values, over, points)` is, for each point of a sweep, the
mean, std, min, max and median of each scalar over that point's seeds
(those where `over` holds), and mean -+ std as `lower` and `upper` (the
band CUSTOM SCALARS draws). It is one compiled call on the device that
holds the values: a sweep of 100,000 members brings its points' numbers
to the host, not its members', in one transfer (docs/speed.md).

The median is exact, without sorting (a sort of 100,000 numbers costs
XLA:CPU 20 ms): `order_statistic` finds the k-th smallest value by a
binary search over the 2^32 bit patterns of a float32, ordered as the
numbers are: 32 counting passes.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

_SIGN = np.uint32(1 << 31)  # (NumPy's: a JAX array would start the backend at import)
_LAST = np.uint32(0xFFFFFFFF)  # the greatest key


def _ordered_bits(x: jax.Array) -> jax.Array:
    """uint32 keys in the order of the float32 numbers `x` (-inf first,
    -0.0 just before +0.0): a negative's bits flipped, a positive's sign set."""
    bits = jax.lax.bitcast_convert_type(x, jnp.uint32)
    return jnp.where(bits >= _SIGN, ~bits, bits | _SIGN)


def _number(key: jax.Array) -> jax.Array:
    """The float32 whose key (`_ordered_bits`) is `key`."""
    bits = jnp.where(key >= _SIGN, key & ~_SIGN, ~key)
    return jax.lax.bitcast_convert_type(bits, jnp.float32)


def order_statistic(keys: jax.Array, k: jax.Array) -> jax.Array:
    """Row by row, the smallest key with more than k[row] keys at or below
    it: the (k+1)-th smallest key (`keys` (rows, n) uint32, the uncounted
    ones _LAST, which no search reaches; `k` (rows,))."""

    def halve(_, bounds):  # the answer stays in [low, high]
        low, high = bounds
        middle = low + (high - low) // 2
        below = jnp.sum(keys <= middle[:, None], axis=1)
        return jnp.where(below > k, low, middle + 1), jnp.where(below > k, middle, high)

    low = jnp.zeros(len(keys), jnp.uint32)
    high = jnp.full(len(keys), _LAST)
    return jax.lax.fori_loop(0, 32, halve, (low, high))[0]


def median(values: jax.Array, counted: jax.Array) -> jax.Array:
    """Row by row, the median of the counted values (`values` (rows, n)
    float32, `counted` (rows, n) bool), as `np.median`: the middle one, or
    the mean of the two middle ones; NaN where none is counted or a
    counted value is NaN."""
    keys = jnp.where(counted, _ordered_bits(values), _LAST)
    n = jnp.sum(counted, axis=1)
    lower = order_statistic(keys, (n - 1) // 2)
    # The next one up: the same key if it occurs more than (n - 1) // 2 + 1
    # times, else the least key above it.
    at_or_below = jnp.sum(keys <= lower[:, None], axis=1)
    above = jnp.min(jnp.where(keys > lower[:, None], keys, _LAST), axis=1)
    upper = jnp.where((n % 2 == 1) | (at_or_below > n // 2), lower, above)
    # (Halves first: the sum of two values near float32's greatest overflows.)
    middle = jnp.where(lower == upper, _number(lower), _number(lower) / 2 + _number(upper) / 2)
    nan = (n == 0) | jnp.any(counted & jnp.isnan(values), axis=1)
    return jnp.where(nan, jnp.nan, middle)


STATISTICS = ("mean", "std", "min", "max", "median", "lower", "upper")


def of_points(values, over, points: int, median_of: tuple[str, ...] = ()) -> dict:
    """{tag: {'mean', 'std', 'min', 'max', 'median', 'lower', 'upper'}}, each
    (points,), on the host: the statistics of each `values[tag]` (members,)
    over each point's members, counting those where `over` (members,)
    holds. The members come point by point, `points` blocks of as many
    seeds (as sweeps.groups orders them); the median is of the tags in
    `median_of` only. Every tag in one compiled call (one pass over the
    members for all), its numbers brought over in one transfer."""
    tags = list(values)
    chosen = tuple(i for i, tag in enumerate(tags) if tag in median_of)
    table = _table(tuple(values.values()), over, points, chosen)
    table = np.asarray(table)  # (tags, statistics, points)
    asked = [[s for s in STATISTICS if s != "median" or i in chosen] for i in range(len(tags))]
    return {tag: {s: table[i, STATISTICS.index(s)] for s in asked[i]} for i, tag in enumerate(tags)}


@functools.partial(jax.jit, static_argnames=("points", "chosen"))
def _table(columns: tuple, over, points: int, chosen: tuple[int, ...]) -> jax.Array:
    """of_points' numbers, (tags, STATISTICS, points), of the `columns`
    (members,) in order; NaN for the medians of those not `chosen`."""
    stacked = jnp.stack([jnp.asarray(column, jnp.float32) for column in columns])
    stacked = stacked.reshape(len(columns), points, -1)  # (tags, points, seeds)
    counted = jnp.broadcast_to(jnp.asarray(over, bool).reshape(1, points, -1), stacked.shape)
    n = jnp.maximum(jnp.sum(counted, axis=-1), 1)
    mean = jnp.sum(jnp.where(counted, stacked, 0), axis=-1) / n
    spread = jnp.where(counted, stacked - mean[..., None], 0)
    std = jnp.sqrt(jnp.sum(spread * spread, axis=-1) / n)
    low = jnp.min(jnp.where(counted, stacked, jnp.inf), axis=-1)
    high = jnp.max(jnp.where(counted, stacked, -jnp.inf), axis=-1)
    middle = jnp.full_like(mean, jnp.nan)
    if chosen:  # (chosen tags x points) rows of seeds
        rows = stacked[jnp.array(chosen)].reshape(len(chosen) * points, -1)
        medians = median(rows, counted[: len(chosen)].reshape(rows.shape))
        middle = middle.at[jnp.array(chosen)].set(medians.reshape(-1, points))
    return jnp.stack([mean, std, low, high, middle, mean - std, mean + std], axis=1)
