"""EMBEDDINGS: files for TensorBoard's projector, beside a run's event file.

The projector (PCA, t-SNE, UMAP of any set of vectors) reads a run's
`projector_config.pbtxt`, which names, relative to the run's directory:
- a tensor file: one vector per line, tab-separated (`embedding.tsv`);
- a metadata file: one row per vector (`metadata.tsv`). With one column it
  has NO header row; with several, the first row names them (TensorBoard's
  rule);
- optionally a sprite: one image holding a thumbnail per vector, row by
  row, which the projector shows in place of points.

Nothing here needs TensorFlow: the config is TensorBoard's own proto.
"""

import os
from collections.abc import Mapping, Sequence

import numpy as np

from plumbing import failures

CONFIG_FILE = "projector_config.pbtxt"


def sprite(images: np.ndarray) -> np.ndarray:
    """Tiles (n, h, w[, c]) images into one square-ish grid, row by row.

    Returns uint8 (rows * h, columns * w, 3) with columns = ceil(sqrt(n)),
    as the projector expects; unused cells are white.
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = np.repeat(images[..., None], 3, axis=-1)
    elif images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    if images.dtype != np.uint8:  # floats in [0, 1]
        images = np.clip(np.round(images * 255), 0, 255).astype(np.uint8)
    n, h, w, _ = images.shape
    columns = int(np.ceil(np.sqrt(n)))
    grid = np.full((columns * columns, h, w, 3), 255, np.uint8)
    grid[:n] = images
    grid = grid.reshape(columns, columns, h, w, 3).transpose(0, 2, 1, 3, 4)
    rows_used = -(-n // columns)
    return grid.reshape(columns * h, columns * w, 3)[: rows_used * h]


def write(
    log_dir: str,
    name: str,
    vectors: np.ndarray,
    metadata: Mapping[str, Sequence],
    images: np.ndarray | None = None,
) -> None:
    """Writes one embedding for the projector into `log_dir`.

    Args:
      log_dir: the run's directory (the one holding its event file).
      name: the tensor's name in the projector's menu.
      vectors: (n, d) floats.
      metadata: column name -> n values (labels, class names, ...).
      images: optional (n, h, w[, c]) thumbnails for the sprite.
    """
    from google.protobuf import text_format
    from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

    vectors = np.asarray(vectors, np.float32)
    assert vectors.ndim == 2, f"vectors must be (n, d), got shape {vectors.shape}"
    n = len(vectors)
    assert all(len(v) == n for v in metadata.values()), "one metadata row per vector"
    config = ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = name
    embedding.tensor_path = "embedding.tsv"
    embedding.tensor_shape.extend(vectors.shape)
    with failures.reported(f"cannot write the projector's files to {log_dir}"):
        np.savetxt(os.path.join(log_dir, "embedding.tsv"), vectors, delimiter="\t", fmt="%.6g")
        if metadata:
            embedding.metadata_path = "metadata.tsv"
            columns = list(metadata)
            rows = [[str(metadata[c][i]) for c in columns] for i in range(n)]
            lines = (["\t".join(columns)] if len(columns) > 1 else []) + [
                "\t".join(r) for r in rows
            ]
            with open(os.path.join(log_dir, "metadata.tsv"), "w", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
        if images is not None:
            from PIL import Image

            assert len(images) == n, "one image per vector"
            Image.fromarray(sprite(images)).save(os.path.join(log_dir, "sprite.png"))
            embedding.sprite.image_path = "sprite.png"
            embedding.sprite.single_image_dim.extend([images.shape[2], images.shape[1]])
        with open(os.path.join(log_dir, CONFIG_FILE), "w", encoding="utf-8") as f:
            f.write(text_format.MessageToString(config))
