"""Reader for IDX files, the format of MNIST and Fashion-MNIST.

An IDX file is a big-endian header, then the raw array:
  bytes 0-1: zero; byte 2: the element type (0x08 = unsigned byte);
  byte 3: the number of dimensions d; then d 4-byte sizes; then the data.
So labels (`*-labels-idx1-ubyte`) start with the magic number 0x00000801
and images (`*-images-idx3-ubyte`) with 0x00000803, followed by n (and
rows, columns). Files may be gzipped (`.gz`).

Every way a file can be wrong (missing, bad magic number, truncated, sizes
that disagree) is a UserError naming the file.
"""

import gzip
import os

import numpy as np

from plumbing.failures import UserError

UNSIGNED_BYTE = 0x08


def find(data_dir: str, stem: str) -> str | None:
    """`data_dir/stem` or `data_dir/stem.gz`, whichever exists."""
    for name in (stem, stem + ".gz"):
        path = os.path.join(data_dir, name)
        if os.path.isfile(path):
            return path
    return None


def read(path: str, dimensions: int) -> np.ndarray:
    """The uint8 array in the IDX file at `path`, which must have `dimensions` axes."""
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            with open(path, "rb") as f:
                raw = f.read()
    except (OSError, EOFError) as e:  # gzip raises these for a damaged file
        raise UserError(f"cannot read {path}: {e}") from None
    expected_magic = (UNSIGNED_BYTE << 8) | dimensions
    if len(raw) < 4 or int.from_bytes(raw[:4], "big") != expected_magic:
        got = raw[:4].hex() if len(raw) >= 4 else f"{len(raw)} bytes"
        raise UserError(
            f"{path} is not an IDX file of {dimensions}-D unsigned bytes: magic number "
            f"{got}, expected {expected_magic:08x}"
        )
    header = 4 + 4 * dimensions
    if len(raw) < header:
        raise UserError(f"{path} is truncated: its header needs {header} bytes, it has {len(raw)}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dimensions))
    size = int(np.prod(shape))
    if len(raw) - header != size:
        problem = "truncated" if len(raw) - header < size else "longer than its header says"
        raise UserError(
            f"{path} is {problem}: its header says {'x'.join(map(str, shape))} = {size} "
            f"values, it holds {len(raw) - header}"
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def write(path: str, array: np.ndarray) -> None:
    """Writes a uint8 array as an IDX file (gzipped if `path` ends in .gz).

    For tests and for users who convert their own data to this format.
    """
    array = np.asarray(array, np.uint8)
    header = bytes([0, 0, UNSIGNED_BYTE, array.ndim])
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


def load_split(data_dir: str, split: str, how_to_get: str) -> tuple[np.ndarray, np.ndarray]:
    """(images (n, rows, cols) uint8, labels (n,) uint8) of split 'train' or 't10k'."""
    stems = [f"{split}-images-idx3-ubyte", f"{split}-labels-idx1-ubyte"]
    paths = [find(data_dir, stem) for stem in stems]
    if None in paths:
        missing = ", ".join(s + "[.gz]" for s, p in zip(stems, paths, strict=True) if p is None)
        raise UserError(f"missing {missing} in {data_dir}. {how_to_get}")
    images, labels = read(paths[0], 3), read(paths[1], 1)
    if len(images) != len(labels):
        raise UserError(
            f"{paths[0]} holds {len(images)} images but {paths[1]} holds {len(labels)} labels"
        )
    return images, labels
