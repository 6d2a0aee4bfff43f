"""Sharpness: the largest eigenvalue of the training loss's Hessian.

    sharpness = make_sharpness(train_step.loss, iterations=20)
    top = sharpness(params, (x, y))   # one network; vmap it for many

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
"""

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree


def hessian_vector_product(loss, params, vector):
    """H(params) @ vector for the Hessian of scalar `loss`, without H."""
    return jax.jvp(jax.grad(loss), (params,), (vector,))[1]


def lanczos_top_eigenvalue(matvec, start: jax.Array, iterations: int) -> jax.Array:
    """The largest eigenvalue of the symmetric map `matvec`, from `iterations`
    Lanczos steps started at `start` (a vector of its dimension).

    Past the map's dimension there is nothing left to find: steps after a
    breakdown (an exhausted Krylov space) add zero rows, which can only
    show as an eigenvalue 0.
    """
    dim = start.shape[0]
    iterations = min(iterations, dim)
    basis = jnp.zeros((iterations, dim), start.dtype)
    alphas = jnp.zeros(iterations, start.dtype)
    betas = jnp.zeros(iterations, start.dtype)

    def step(i, carry):
        basis, alphas, betas, v = carry
        basis = basis.at[i].set(v)
        w = matvec(v)
        alpha = jnp.vdot(w, v)
        w = w - basis.T @ (basis @ w)  # against every vector so far (v included)
        w = w - basis.T @ (basis @ w)  # twice is enough (Parlett's "twice is enough")
        beta = jnp.linalg.norm(w)
        v = jnp.where(beta > 1e-6 * (jnp.abs(alpha) + 1), w / beta, jnp.zeros_like(w))
        return basis, alphas.at[i].set(alpha), betas.at[i].set(beta), v

    v = start / jnp.linalg.norm(start)
    _, alphas, betas, _ = jax.lax.fori_loop(0, iterations, step, (basis, alphas, betas, v))
    off = betas[:-1]
    tridiagonal = jnp.diag(alphas) + jnp.diag(off, 1) + jnp.diag(off, -1)
    return jnp.linalg.eigvalsh(tridiagonal)[-1]


def make_sharpness(objective, iterations: int = 20):
    """`(params, (x, y)) -> sharpness` of one network on the examples given.

    `objective(params, batch) -> (loss, aux)` is what the optimizer
    minimises: `steps.TrainStep.loss`, the data loss plus the regularization
    (dropout off). The start vector is the same every time (key 0): a
    resumed run measures the same numbers.
    """

    def sharpness(params, batch):
        def loss(params):
            return objective(params, batch)[0]

        flat, unravel = ravel_pytree(params)
        start = jax.random.normal(jax.random.key(0), flat.shape, flat.dtype)

        def matvec(v):
            return ravel_pytree(hessian_vector_product(loss, params, unravel(v)))[0]

        return lanczos_top_eigenvalue(matvec, start, iterations)

    return sharpness


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
