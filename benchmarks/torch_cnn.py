"""PyTorch comparison: the Fashion-MNIST CNN's training speed, or one epoch and its accuracy.

    /tmp/torch-venv/bin/python benchmarks/torch_cnn.py --mode throughput    # about half a minute
    /tmp/torch-venv/bin/python benchmarks/torch_cnn.py --mode throughput --rounds 2 --chunk 10
    /tmp/torch-venv/bin/python benchmarks/torch_cnn.py --mode epoch         # about 20 s
    python3 benchmarks/torch_cnn.py --device=cuda --data=random             # a GPU: 3 variants

Needs requirements-torch.txt (its own venv) and Fashion-MNIST's IDX files
(Debian package dataset-fashion-mnist, in /usr/share/datasets/fashion-mnist;
elsewhere set FMNIST_DIR), or `--data=random`: random images of its shape,
as benchmarks/cnn.py times, which is enough for speed. The net is the Flax
examples' CNN (conv 32 3x3, relu, avgpool 2, conv 64 3x3, relu, avgpool 2,
dense 256, relu, dense 10; SAME padding), fp32 (PyTorch's defaults: on a
GPU its convolutions may use TF32); SGD with momentum 0.9, lr 0.1, batch
128, cross entropy; the training set lives in the device's memory as one
tensor, each step gathers its batch from a shuffled order; `--threads` 2
(CPU). Memory formats (`--formats`): `default` asks for none (the
one-channel images have channels-last strides, so the convolutions'
activations are channels-last all the same; the weights stay NCHW);
`channels_last` converts the model and each batch explicitly.

`--device`: cpu (the default), cuda, or auto (cuda when PyTorch sees one).
`--variants`, what a PyTorch user would pick (on CPU `eager` alone unless
asked; on CUDA all three):
- `eager`: the module as it is;
- `compile`: `torch.compile(model)` (TorchInductor's kernels; the
  optimizer stays eager, as in PyTorch's tutorials);
- `reduce-overhead`: `torch.compile(model, mode="reduce-overhead")`: the
  compiled forward and backward replayed as CUDA graphs, each step begun
  with `torch.compiler.cudagraph_mark_step_begin()` (on CPU there are no
  CUDA graphs: it is `compile` again).

--mode throughput: after one first step (timed on its own: for a compiled
variant, its compilation) and `--warmup` steps, `--rounds` rounds of
`--chunk` steps each (the variants and memory formats alternate round by
round; on CUDA each round's timing starts and ends with
torch.cuda.synchronize()). Prints images/s (median and every round),
ms/step, the cores kept busy (process CPU time / wall time) and GFLOP/s by
a fixed count: 3 x the forward pass's 2 x multiply-adds per image (about
27.9 MFLOP per image).
--mode epoch: trains from scratch for one epoch (468 steps) with the first
variant and format, prints its seconds (compiling included) and images/s,
then the test accuracy.
"""

import argparse
import gzip
import json
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

DATA_DIR = os.environ.get("FMNIST_DIR", "/usr/share/datasets/fashion-mnist")
VARIANTS = ("eager", "compile", "reduce-overhead")

# Multiply-adds of one image's forward pass: two convolutions (SAME padding), two dense layers.
FORWARD_MACS = 28 * 28 * 32 * (3 * 3 * 1) + 14 * 14 * 64 * (3 * 3 * 32) + 3136 * 256 + 256 * 10
TRAIN_FLOP_PER_IMAGE = 3 * 2 * FORWARD_MACS  # backward ~ 2x forward


def read_idx(name, magic, header_bytes):
    with gzip.open(os.path.join(DATA_DIR, name)) as f:
        raw = f.read()
    assert int.from_bytes(raw[:4], "big") == magic, name
    return np.frombuffer(raw, np.uint8, offset=header_bytes)


def as_tensors(images, labels):
    """[N, 28, 28, 1] uint8 pixels and labels as (images [N, 1, 28, 28] in [0, 1], labels).

    The images are NHWC viewed as NCHW: with one channel that view has channels-last strides,
    and PyTorch's convolutions follow their input's layout.
    """
    images = torch.from_numpy(images.astype(np.float32) / 255.0).permute(0, 3, 1, 2)
    return images, torch.from_numpy(labels.astype(np.int64))


def load_split(prefix):
    """(images [N, 1, 28, 28] float32 in [0, 1], labels [N] int64) as tensors."""
    images = read_idx(f"{prefix}-images-idx3-ubyte.gz", 2051, 16).reshape(-1, 28, 28, 1)
    labels = read_idx(f"{prefix}-labels-idx1-ubyte.gz", 2049, 8)
    return as_tensors(images, labels)


def random_split(n=60_000):
    """Random images and labels of Fashion-MNIST's shape (as benchmarks/cnn.py times)."""
    rng = np.random.default_rng(0)
    return as_tensors(rng.integers(0, 256, (n, 28, 28, 1), np.uint8), rng.integers(0, 10, n))


def make_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(7 * 7 * 64, 256),
        nn.ReLU(),
        nn.Linear(256, 10),
    )


def sync(device):
    """Waits for the device's queued work (CUDA runs asynchronously; the CPU does not)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Trainer:
    def __init__(self, images, labels, memory_format="default", seed=0, variant="eager"):
        torch.manual_seed(seed)
        self.images, self.labels = images, labels
        self.format = torch.channels_last if memory_format == "channels_last" else None
        self.net = make_cnn().to(images.device)  # evaluated eagerly (another batch size)
        if self.format is not None:
            self.net = self.net.to(memory_format=self.format)
        self.variant = variant
        if variant == "eager":
            self.model = self.net
        else:
            mode = "reduce-overhead" if variant == "reduce-overhead" else None
            self.model = torch.compile(self.net, mode=mode)
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=0.1, momentum=0.9)

    def step(self, index):
        x, y = self.images[index], self.labels[index]
        if self.format is not None:
            x = x.contiguous(memory_format=self.format)
        if self.variant == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()
        self.optimizer.zero_grad()
        loss = F.cross_entropy(self.model(x), y)
        loss.backward()
        self.optimizer.step()
        return loss


def epoch_batches(n, batch_size, seed, device="cpu"):
    """The index tensors of one epoch's full batches, in a shuffled order fixed by seed."""
    order = torch.from_numpy(np.random.default_rng(seed).permutation(n)).to(device)
    return [order[i * batch_size : (i + 1) * batch_size] for i in range(n // batch_size)]


def result_name(args, variant, fmt):
    """A result's key: the format alone when only eager runs (as before variants existed)."""
    if args.variants == ["eager"]:
        return fmt
    return variant if len(args.formats) == 1 else f"{variant}/{fmt}"


def throughput(args, images, labels):
    device = images.device
    warm = iter(epoch_batches(len(images), args.batch_size, 0, device))
    trainers, first_step_s = {}, {}
    for variant in args.variants:
        for fmt in args.formats:
            name = result_name(args, variant, fmt)
            trainer = Trainer(images, labels, fmt, variant=variant)
            sync(device)
            start = time.perf_counter()
            trainer.step(next(warm))
            sync(device)
            first_step_s[name] = time.perf_counter() - start
            for _ in range(args.warmup):
                trainer.step(next(warm))
            sync(device)
            trainers[name] = trainer

    rates = {name: [] for name in trainers}
    busy = {name: [] for name in trainers}
    for rnd in range(args.rounds):
        chunk = epoch_batches(len(images), args.batch_size, rnd, device)[: args.chunk]
        for name, trainer in trainers.items():
            sync(device)
            wall, cpu = time.perf_counter(), time.process_time()
            for index in chunk:
                trainer.step(index)
            sync(device)
            wall = time.perf_counter() - wall
            rates[name].append(args.chunk * args.batch_size / wall)
            busy[name].append((time.process_time() - cpu) / wall)

    results = {}
    for name in trainers:
        median = statistics.median(rates[name])
        results[name] = {
            "images_per_s_median": round(median, 1),
            "images_per_s_all": [round(r) for r in rates[name]],
            "ms_per_step": round(1000 * args.batch_size / median, 2),
            "first_step_s": round(first_step_s[name], 2),
            "achieved_GFLOPs": round(median * TRAIN_FLOP_PER_IMAGE / 1e9, 1),
            "cpu_cores_busy": round(statistics.median(busy[name]), 2),
        }
    return {"results": results}


def one_epoch(args, images, labels):
    device = images.device
    test_images, test_labels = (t.to(device) for t in load_split("t10k"))
    trainer = Trainer(images, labels, args.formats[0], variant=args.variants[0])
    batches = epoch_batches(len(images), args.batch_size, 0, device)
    sync(device)
    start = time.perf_counter()
    for index in batches:
        trainer.step(index)
    sync(device)
    train_s = time.perf_counter() - start

    trainer.net.eval()
    with torch.no_grad():
        correct = sum(
            int((trainer.net(x).argmax(1) == y).sum())
            for x, y in zip(test_images.split(1000), test_labels.split(1000), strict=True)
        )
    return {
        "format": args.formats[0],
        "variant": args.variants[0],
        "epoch_steps": len(batches),
        "epoch_train_s": round(train_s, 1),
        "images_per_s_epoch_avg": round(len(batches) * args.batch_size / train_s, 1),
        "test_acc_after_1_epoch": correct / len(test_images),
    }


def pick_device(name):
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", default="throughput", choices=["throughput", "epoch"])
    parser.add_argument(
        "--formats",
        default="default",
        help="comma-separated: default, channels_last (epoch: the first)",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument(
        "--variants",
        help=f"comma-separated, of {', '.join(VARIANTS)} (default: eager on CPU, all on CUDA)",
    )
    parser.add_argument("--data", default="fashion-mnist", choices=["fashion-mnist", "random"])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--chunk", type=int, default=50, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    args.formats = args.formats.split(",")
    device = pick_device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device={args.device}: this PyTorch ({torch.__version__}) sees no GPU")
    default_variants = "eager" if device.type == "cpu" else ",".join(VARIANTS)
    args.variants = (args.variants or default_variants).split(",")
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown --variants {unknown}: choose from {', '.join(VARIANTS)}")
    if args.mode == "epoch" and args.data == "random":
        parser.error("--mode epoch measures test accuracy: it needs --data fashion-mnist")
    torch.set_num_threads(args.threads)

    images, labels = load_split("train") if args.data == "fashion-mnist" else random_split()
    images, labels = images.to(device), labels.to(device)
    info = {
        "torch": torch.__version__,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "mode": args.mode,
        "data": args.data,
        "bs": args.batch_size,
    }
    run = throughput if args.mode == "throughput" else one_epoch
    print(json.dumps({**info, **run(args, images, labels)}, indent=1))


if __name__ == "__main__":
    main()
