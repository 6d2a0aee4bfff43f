"""The loss's curvature: sharpness, the Hessian's top eigenvalues, its
trace and its spectral density, all from Hessian-vector products.

    sharpness = make_sharpness(train_step.loss, iterations=20)
    top = sharpness(params, (x, y))   # one network; vmap it for many
    spectrum = make_spectrum(train_step.loss, iterations=30, top_k=5)
    s = spectrum(params, (x, y))      # s.top, s.trace, s.trace_error, s.nodes, s.weights

Gradient descent with learning rate eta on a quadratic diverges along any
direction whose curvature exceeds 2/eta. Cohen et al. (ICLR 2021, "Gradient
Descent on Neural Networks Typically Occurs at the Edge of Stability")
found that on neural nets the sharpness rises during training until it
reaches 2/eta, then hovers there while the loss keeps falling, not
monotonically (configs/edge_of_stability.py shows it).

The Hessian (P x P for P parameters) is never formed. Lanczos needs only
Hessian-vector products, each a forward-over-reverse pass (`jax.jvp` of
`jax.grad`, about the cost of two training steps), and after k of them
the largest eigenvalue of the k x k tridiagonal matrix it builds is the
estimate, exact once k reaches P. The Lanczos vectors are kept and every
new one is orthogonalised against all of them (k x P numbers of memory),
which keeps float32 arithmetic from finding the same eigenvalue twice.

The sharpness is one number of the Hessian's spectrum; `make_spectrum`
measures more of it (Ghorbani, Krishnan, Xiao, ICML 2019, "An Investigation
into Neural Net Optimization via Hessian Eigenvalue Density"):

- the top k eigenvalues, the k steepest directions of the loss: a few
  large outliers (about one per class) standing apart from the rest are
  what that paper found, and what gradient descent's step size must fit;
- the trace, the sum of all P curvatures (tr(H)/P is the mean one), by
  Hutchinson's estimator, with its standard error;
- the spectral density, the distribution of all P eigenvalues, by
  stochastic Lanczos quadrature: a bulk near 0 (most directions are flat),
  the outliers, and negative eigenvalues where the weights are not at a
  minimum. `smoothed_density` turns it into a curve to plot.

Random start vectors and probes come from fixed keys: a resumed run
measures the same numbers.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree


def hessian_vector_product(loss, params, vector):
    """H(params) @ vector for the Hessian of scalar `loss`, without H."""
    return jax.jvp(jax.grad(loss), (params,), (vector,))[1]


def flat_hessian(objective, params, batch):
    """(matvec, flat params): the Hessian of `objective`'s loss at `params`
    on `batch` as a map of flat vectors of P numbers, and the params flat."""

    def loss(params):
        return objective(params, batch)[0]

    flat, unravel = ravel_pytree(params)

    def matvec(v):
        return ravel_pytree(hessian_vector_product(loss, params, unravel(v)))[0]

    return matvec, flat


def start_vector(index, dim: int, dtype) -> jax.Array:
    """Lanczos's start number `index` (a Gaussian vector from key `index`):
    start 0 is the sharpness's, so the top eigenvalue from it is the
    sharpness."""
    return jax.random.normal(jax.random.key(index), (dim,), dtype)


def lanczos(matvec, start: jax.Array, iterations: int) -> tuple[jax.Array, jax.Array]:
    """(alphas, betas): the tridiagonal matrix T of `iterations` Lanczos steps
    on the symmetric map `matvec` from `start` (a vector of its dimension),
    its diagonal (m,) and off-diagonal (m - 1,), m = min(iterations, dim).

    T is the map seen from the Krylov space of `start` (start, A start,
    A^2 start, ...): its eigenvalues, the Ritz values, approximate the
    map's, its extreme ones first, and are all of them once m = dim.
    After a breakdown (the Krylov space exhausted, as from a start inside
    an eigenspace) there is nothing left to find: the later steps add zero
    rows, with beta 0 before them, which can only show as eigenvalues 0.
    A breakdown is a new direction shorter than 1e-6 of the longest
    `matvec(v)` so far: relative, so that a map of tiny curvatures (a net
    fitted to a loss of 1e-6) is explored as fully as a large one.
    """
    dim = start.shape[0]
    iterations = min(iterations, dim)
    basis = jnp.zeros((iterations, dim), start.dtype)
    alphas = jnp.zeros(iterations, start.dtype)
    betas = jnp.zeros(iterations, start.dtype)

    def step(i, carry):
        basis, alphas, betas, v, scale = carry
        basis = basis.at[i].set(v)
        w = matvec(v)
        scale = jnp.maximum(scale, jnp.linalg.norm(w))  # the map's size, as seen so far
        alpha = jnp.vdot(w, v)
        w = w - basis.T @ (basis @ w)  # against every vector so far (v included)
        w = w - basis.T @ (basis @ w)  # twice is enough (Parlett's "twice is enough")
        beta = jnp.linalg.norm(w)
        going = beta > 1e-6 * scale
        v = jnp.where(going, w / jnp.where(going, beta, 1), jnp.zeros_like(w))
        betas = betas.at[i].set(jnp.where(going, beta, 0))
        return basis, alphas.at[i].set(alpha), betas, v, scale

    v = start / jnp.linalg.norm(start)
    carry = (basis, alphas, betas, v, jnp.zeros((), start.dtype))
    _, alphas, betas, _, _ = jax.lax.fori_loop(0, iterations, step, carry)
    return alphas, betas[:-1]  # the last beta leads out of the space kept


def ritz(alphas: jax.Array, betas: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(values, firsts): the eigenvalues of the tridiagonal matrix with
    diagonal `alphas` and off-diagonal `betas`, ascending, and the first
    component of each one's unit eigenvector."""
    tridiagonal = jnp.diag(alphas) + jnp.diag(betas, 1) + jnp.diag(betas, -1)
    values, vectors = jnp.linalg.eigh(tridiagonal)
    return values, vectors[0]


def lanczos_top_eigenvalue(matvec, start: jax.Array, iterations: int) -> jax.Array:
    """The largest eigenvalue of the symmetric map `matvec`, from `iterations`
    Lanczos steps started at `start` (a vector of its dimension; `lanczos`)."""
    return ritz(*lanczos(matvec, start, iterations))[0][-1]


def make_sharpness(objective, iterations: int = 20):
    """`(params, (x, y)) -> sharpness` of one network on the examples given.

    `objective(params, batch) -> (loss, aux)` is what the optimizer
    minimises: `steps.TrainStep.loss`, the data loss plus the regularization
    (dropout off). The start vector is the same every time (key 0): a
    resumed run measures the same numbers.
    """

    def sharpness(params, batch):
        matvec, flat = flat_hessian(objective, params, batch)
        return lanczos_top_eigenvalue(matvec, start_vector(0, flat.size, flat.dtype), iterations)

    return sharpness


def top_ritz_values(values: jax.Array, k: int) -> jax.Array:
    """The largest `k` of ascending Ritz `values`, largest first."""
    if k > values.shape[0]:
        raise ValueError(
            f"top_k={k} needs {k} Ritz values, but min(iterations, parameters) = {values.shape[0]}"
        )
    return values[::-1][:k]


def make_top_eigenvalues(objective, k: int, iterations: int = 20):
    """`(params, batch) -> (k,)`: the Hessian's k largest eigenvalues,
    largest first (the first is the sharpness), from one Lanczos run of
    `iterations` steps (at most P) from start 0.

    These are the loss's k steepest curvatures. Lanczos finds the extreme
    eigenvalues first: the top few, when they stand apart from the rest (as
    outliers do), within a few dozen steps however large P is; all are
    exact once `iterations` reaches P. A repeated
    eigenvalue shows once (a single start sees one direction of its
    eigenspace), and when the Krylov space runs out before k the rest are 0.
    `objective` as for `make_sharpness`.
    """

    def top_eigenvalues(params, batch):
        matvec, flat = flat_hessian(objective, params, batch)
        start = start_vector(0, flat.size, flat.dtype)
        return top_ritz_values(ritz(*lanczos(matvec, start, iterations))[0], k)

    return top_eigenvalues


def make_trace(objective, samples: int = 10):
    """`(params, batch) -> (trace, standard_error)`: Hutchinson's estimate
    of the Hessian's trace from `samples` Rademacher probes z (each entry
    +1 or -1, from key 0), the mean of z^T H z, and that mean's standard
    error, the probes' sample standard deviation / sqrt(samples).

    The trace is the sum of the P curvatures, tr(H)/P the mean one: a
    measure of how flat the minimum is on average, where the sharpness is
    its worst direction. Each z^T H z has mean tr(H) and variance
    2 sum_{i != j} H_ij^2: exact for a diagonal Hessian, noisy where the
    curvature is spread across parameters. One probe costs one
    Hessian-vector product.
    """
    if samples < 2:
        raise ValueError(f"a standard error needs at least 2 trace samples, got {samples}")

    def trace(params, batch):
        matvec, flat = flat_hessian(objective, params, batch)

        def estimate(key):
            z = jax.random.rademacher(key, flat.shape, flat.dtype)
            return jnp.vdot(z, matvec(z))

        estimates = jax.lax.map(estimate, jax.random.split(jax.random.key(0), samples))
        return estimates.mean(), estimates.std(ddof=1) / np.sqrt(samples)

    return trace


def make_density(objective, starts: int = 4, iterations: int = 30):
    """`(params, batch) -> (nodes, weights)`, each (starts, m) with
    m = min(iterations, P): the Hessian's spectral density by stochastic
    Lanczos quadrature (Ghorbani et al. 2019, section 2.2).

    The spectral density puts mass 1/P on each of the P eigenvalues. From a
    random unit start v (starts 0, 1, ...; `start_vector`), Lanczos's
    tridiagonal T has Ritz values (the nodes) and unit eigenvectors whose
    squared first components (the weights, summing to 1) make a discrete
    measure with sum(weights * nodes^j) = e1^T T^j e1 = v^T H^j v for every
    power j < 2m: Gauss quadrature. Over random v, v^T H^j v averages to
    tr(H^j)/P, the density's j-th moment, so the measure averaged over the
    starts (each weighted 1/starts) estimates the density: which
    eigenvalues there are, and how many near each. Memory as for one
    sharpness: the starts run one after another.
    """

    def density(params, batch):
        matvec, flat = flat_hessian(objective, params, batch)

        def quadrature(index):
            start = start_vector(index, flat.size, flat.dtype)
            nodes, firsts = ritz(*lanczos(matvec, start, iterations))
            return nodes, firsts**2

        return jax.lax.map(quadrature, jnp.arange(starts))

    return density


class Spectrum(NamedTuple):
    """One network's Hessian spectrum (`make_spectrum`)."""

    top: jax.Array  # (k,) the largest eigenvalues, largest first
    trace: jax.Array  # () Hutchinson's estimate of tr(H)
    trace_error: jax.Array  # () its standard error
    nodes: jax.Array  # (starts, m) the density's Ritz values, ascending per start
    weights: jax.Array  # (starts, m) their weights, summing to 1 per start


def make_spectrum(
    objective,
    iterations: int = 30,
    top_k: int = 5,
    trace_samples: int = 10,
    density_starts: int = 4,
):
    """`(params, batch) -> Spectrum`: the top `top_k` eigenvalues, the trace
    and the density of one network's Hessian (`make_top_eigenvalues`,
    `make_trace`, `make_density`). The top eigenvalues are the density's
    first start's (start 0, as `make_top_eigenvalues`), not a run of their
    own: `iterations` * `density_starts` + `trace_samples` Hessian-vector
    products in all."""
    density = make_density(objective, density_starts, iterations)
    trace = make_trace(objective, trace_samples)

    def spectrum(params, batch):
        nodes, weights = density(params, batch)
        estimate, error = trace(params, batch)
        return Spectrum(top_ritz_values(nodes[0], top_k), estimate, error, nodes, weights)

    return spectrum


def smoothed_density(
    nodes, weights, sigma: float | None = None, max_points: int = 100_001
) -> tuple[np.ndarray, np.ndarray]:
    """(grid, density): the spectral density of `make_density`'s `nodes` and
    `weights` (starts, m), each node a Gaussian of standard deviation `sigma`
    carrying its weight / starts, on evenly spaced eigenvalues.

    The default sigma is google/spectral-density's (the paper's code):
    variance 1e-5 x max(1, range of the nodes), widened only where the grid
    would need more than `max_points` (a range above about 25,000). The
    grid reaches 5 sigma past the extreme nodes, so the density integrates
    to 1 on it (and its mean is the measure's, tr(H)/P); it has at least
    10,001 points, and 2 per sigma where `max_points` allows (always, for
    the default sigma). Its values span many powers
    of ten (a few outliers against a bulk of P): plot it on a log axis.
    NumPy, float64.
    """
    nodes, weights = np.asarray(nodes, np.float64), np.asarray(weights, np.float64)
    lo, hi = float(nodes.min()), float(nodes.max())
    if sigma is None:
        sigma = max(np.sqrt(1e-5 * max(1.0, hi - lo)), 2 * (hi - lo) / (max_points - 41))
    span = hi - lo + 10 * sigma
    points = int(min(max_points, max(10_001, np.ceil(2 * span / sigma) + 1)))
    grid = np.linspace(lo - 5 * sigma, hi + 5 * sigma, points)
    density = np.zeros(points)
    for start_nodes, start_weights in zip(nodes, weights, strict=True):  # (m, points) each
        gaussians = np.exp(-0.5 * ((grid - start_nodes[:, None]) / sigma) ** 2)
        density += start_weights @ gaussians
    return grid, density / (len(nodes) * sigma * np.sqrt(2 * np.pi))


def stability_limit(optimizer: str, learning_rate, momentum):
    """The sharpness above which gradient descent on a quadratic diverges:
    2/eta for sgd, (2 + 2 beta)/eta with heavy-ball momentum beta, and
    (2 + 2 beta)/(eta (1 + 2 beta)) for Nesterov's (Cohen et al. 2021,
    appendix). None for adaptive optimizers, whose limit concerns the
    preconditioned Hessian instead."""
    if optimizer == "sgd":
        return 2.0 / learning_rate
    if optimizer == "momentum":
        return (2.0 + 2.0 * momentum) / learning_rate
    if optimizer == "nesterov":
        return (2.0 + 2.0 * momentum) / (learning_rate * (1.0 + 2.0 * momentum))
    return None
