"""Loss landscapes at the end of a run: a line and a plane through weight space.

- The line (Goodfellow, Vinyals and Saxe, ICLR 2015): theta(a) = theta_0 +
  a (theta_T - theta_0), from the initial weights (a = 0) to the final ones
  (a = 1) and past both, -0.5 to 1.5; the train and the eval loss along it.
- The plane (Li et al., NeurIPS 2018, "Visualizing the Loss Landscape of
  Neural Nets"): theta_T + a d1 + b d2 for two random Gaussian directions,
  each FILTER-NORMALISED: for every output unit of every kernel, the
  direction is scaled to the norm of that unit's weights in theta_T
  (biases get 0), so a = 1 moves each unit by its own size and pictures of
  different nets compare. The grid is one compiled call.
- The path on the plane: the weights at every log step, projected onto it
  (least squares onto d1 and d2). Only a few numbers are kept per log step,
  in the checkpoint too: for each direction and unit, the dot product of
  the unit's weights with the raw direction. The projection onto the
  normalised directions follows from them at the end.

Random directions are nearly orthogonal to everything in many dimensions,
so on a big net the path's projection stays near the centre (Li et al.'s
own caveat); on the Playground's nets it shows the descent.

- The path's own plane (Li et al.'s figure 9; probes.landscape_directions
  = "path"): the run keeps every log step's whole weights, and at the end
  d1 and d2 are the top two principal directions of the moves from the
  final weights (`path_directions`), so the plane holds as much of the
  path as any plane through theta_T can; each direction's share of the
  path's variance says how much. Both are scaled by one common length
  (`path_unit`), so the picture is isotropic and the path fills it.
"""

import jax
import jax.numpy as jnp
import numpy as np

# probes.landscape_directions: the plane's two directions.
DIRECTIONS = ("random", "path")
# The path's plane: its farthest point is this far to the plane's edge.
FILL = 0.8


def _leaves(params) -> list[np.ndarray]:
    return [np.asarray(leaf, np.float64) for leaf in jax.tree.leaves(params)]


def raw_directions(params, seed: int = 0) -> list[list[np.ndarray]]:
    """Two Gaussian directions shaped like `params` (leaf lists), from `seed`."""
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(leaf.shape) for leaf in _leaves(params)] for _ in range(2)]


def _per_unit(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sum of a * b over every axis but the last (the units); empty for a bias."""
    if a.ndim < 2:
        return np.zeros(0)
    return np.sum((a * b).reshape(-1, a.shape[-1]), axis=0)


def unit_dots(params, directions) -> np.ndarray:
    """(2, units): each unit's weights dotted with each raw direction."""
    leaves = _leaves(params)
    return np.array(
        [np.concatenate([_per_unit(w, r) for w, r in zip(leaves, d, strict=True)])
         for d in directions]
    )  # fmt: skip


def scales(final, directions) -> np.ndarray:
    """(2, units): what filter normalisation multiplies each raw unit by."""
    leaves = _leaves(final)
    out = []
    for d in directions:
        norms = np.concatenate([np.sqrt(_per_unit(w, w)) for w in leaves])
        raw = np.concatenate([np.sqrt(_per_unit(r, r)) for r in d])
        out.append(norms / np.maximum(raw, 1e-30))
    return np.array(out)


def normalised(final, directions, scale: np.ndarray) -> list:
    """The filter-normalised directions, as pytrees like `final` (float32)."""
    treedef = jax.tree.structure(final)
    trees = []
    for d, s in zip(directions, scale, strict=True):
        leaves, start = [], 0
        for r in d:
            if r.ndim < 2:
                leaves.append(np.zeros(r.shape, np.float32))
                continue
            units = r.shape[-1]
            leaves.append((r * s[start : start + units]).astype(np.float32))
            start += units
        trees.append(jax.tree.unflatten(treedef, leaves))
    return trees


def project(history: list, final, directions) -> np.ndarray:
    """(log steps, 2): each logged step's weights minus the final ones, on the
    plane (least squares onto the normalised directions).

    `history`: each log step's `unit_dots` (2, units) of one member.
    """
    scale = scales(final, directions)
    end = unit_dots(final, directions)
    cross = np.array(
        [
            [
                np.concatenate([_per_unit(a, b) for a, b in zip(di, dj, strict=True)])
                for dj in directions
            ]
            for di in directions
        ]
    )  # fmt: skip  (2, 2, units): the raw directions' unit dot products
    gram = np.einsum("iu,ju,iju->ij", scale, scale, cross)
    moves = np.array([np.sum(scale * (np.asarray(h) - end), axis=1) for h in history])
    return np.linalg.solve(gram, moves.T).T


def flatten(params) -> np.ndarray:
    """Every weight of `params` in one float32 vector (jax.tree.leaves order)."""
    return np.concatenate(
        [np.ravel(np.asarray(leaf, np.float32)) for leaf in jax.tree.leaves(params)]
    )


def unflatten(vector: np.ndarray, like):
    """`flatten`'s inverse: `vector` as a pytree shaped like `like` (float32)."""
    leaves, start = [], 0
    for leaf in jax.tree.leaves(like):
        size = np.size(leaf)
        leaves.append(np.asarray(vector[start : start + size], np.float32).reshape(np.shape(leaf)))
        start += size
    return jax.tree.unflatten(jax.tree.structure(like), leaves)


def path_directions(snapshots: np.ndarray, final: np.ndarray) -> tuple:
    """The two directions that show most of a path: PCA of its moves from the end.

    `snapshots` (n, P): the flattened weights at each log step; `final` (P,)
    the weights at the end. M = snapshots - final (float64), and its SVD
    M = U S V^T: the directions are V's top two rows, the unit vectors in
    weight space along which the path moves most about the final weights.

    Returns `(directions (2, P), variance_ratio (2,), coordinates (n, 2))`:
    orthonormal rows; each one's share s_k^2 / sum(s^2) of the path's
    squared distance from the end (Li et al.'s code, sklearn's PCA, centres
    the moves on their mean first and reports shares of the variance about
    it; here the plane passes through the end, so the shares are about the
    end, the point the picture is centred on); and
    each snapshot's coordinates on them, M @ d_k (the final point at 0).
    SVD's signs are arbitrary: each direction is turned so that the path
    starts at a coordinate >= 0.
    """
    moves = np.asarray(snapshots, np.float64) - np.asarray(final, np.float64)
    rows = len(moves)
    if rows < 2:  # two directions need two rows; a zero row changes nothing
        moves = np.concatenate([moves, np.zeros((2 - rows, moves.shape[1]))])
    _, s, vt = np.linalg.svd(moves, full_matrices=False)
    directions = vt[:2]
    total = np.sum(s**2)
    variance_ratio = s[:2] ** 2 / total if total > 0 else np.zeros(2)
    coordinates = moves[:rows] @ directions.T
    signs = np.where(coordinates[0] < 0, -1.0, 1.0)
    return directions * signs[:, None], variance_ratio, coordinates * signs


def path_unit(coordinates: np.ndarray, span: float) -> float:
    """The length in weight space that one unit of the plane's a and b
    stands for, the same along both directions: the path's farthest
    coordinate lands at FILL x `span` (1 if the weights never moved)."""
    far = float(np.max(np.abs(coordinates)))
    return far / (FILL * span) if far > 0 else 1.0


def make_losses(objective, resolution: int, span: float, one_at_a_time: bool):
    """`(initial, final, d1, d2, train, eval) -> (line (2, R), plane (R, R))`,
    jitted: the line's train and eval losses at a = linspace(-0.5, 1.5, R),
    and the train loss over a = linspace(-span, span, R) (rows) by b (columns).
    `objective`: `steps.TrainStep.loss`, `(params, batch) -> (total, LossParts)`.
    `one_at_a_time`: the plane's points one after another instead of a row
    at a time (for convolutions, whose activations would not fit R times)."""

    def loss(params, split):  # the data loss (regularization apart)
        return objective(params, split)[1].data

    def along(params, d, t):
        return jax.tree.map(lambda p, v: p + t * v, params, d)

    def losses(initial, final, d1, d2, train, evaluation):
        delta = jax.tree.map(jnp.subtract, final, initial)
        alphas = jnp.linspace(-0.5, 1.5, resolution)
        line = jnp.stack([
            jax.lax.map(lambda a, split=split: loss(along(initial, delta, a), split), alphas)
            for split in (train, evaluation)
        ])  # fmt: skip
        ticks = jnp.linspace(-span, span, resolution)
        grid = jnp.stack(jnp.meshgrid(ticks, ticks, indexing="ij"), -1).reshape(-1, 2)

        def point(ab):
            return loss(along(along(final, d1, ab[0]), d2, ab[1]), train)

        batch = 1 if one_at_a_time else resolution
        plane = jax.lax.map(point, grid, batch_size=batch).reshape(resolution, resolution)
        return line, plane

    return jax.jit(losses)
