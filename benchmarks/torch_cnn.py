"""PyTorch comparison: the Fashion-MNIST CNN's training speed, or one epoch and its accuracy.

    /tmp/torch-venv/bin/python benchmarks/torch_cnn.py --mode throughput    # about half a minute
    /tmp/torch-venv/bin/python benchmarks/torch_cnn.py --mode throughput --rounds 2 --chunk 10
    /tmp/torch-venv/bin/python benchmarks/torch_cnn.py --mode epoch         # about 20 s

Needs requirements-torch.txt (its own venv) and Fashion-MNIST's IDX files
(Debian package dataset-fashion-mnist, in /usr/share/datasets/fashion-mnist;
elsewhere set FMNIST_DIR). The net is the Flax examples' CNN (conv 32 3x3,
relu, avgpool 2, conv 64 3x3, relu, avgpool 2, dense 256, relu, dense 10;
SAME padding), fp32; SGD with momentum 0.9, lr 0.1, batch 128, cross
entropy; the training set lives in memory as one tensor, each step gathers
its batch from a shuffled order; `--threads` 2. Memory formats
(`--formats`): `default` asks for none (the one-channel images have
channels-last strides, so the convolutions' activations are channels-last
all the same; the weights stay NCHW); `channels_last` converts the model
and each batch explicitly.

--mode throughput: after one first step (timed on its own) and `--warmup`
steps, `--rounds` rounds of `--chunk` steps each (the memory formats in
`--formats` alternate round by round). Prints images/s (median and every
round), ms/step, the cores kept busy (process CPU time / wall time) and
GFLOP/s by a fixed count: 3 x the forward pass's 2 x multiply-adds per
image (about 27.9 MFLOP per image).
--mode epoch: trains from scratch for one epoch (468 steps), prints its
seconds and images/s, then the test accuracy.
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

# Multiply-adds of one image's forward pass: two convolutions (SAME padding), two dense layers.
FORWARD_MACS = 28 * 28 * 32 * (3 * 3 * 1) + 14 * 14 * 64 * (3 * 3 * 32) + 3136 * 256 + 256 * 10
TRAIN_FLOP_PER_IMAGE = 3 * 2 * FORWARD_MACS  # backward ~ 2x forward


def read_idx(name, magic, header_bytes):
    with gzip.open(os.path.join(DATA_DIR, name)) as f:
        raw = f.read()
    assert int.from_bytes(raw[:4], "big") == magic, name
    return np.frombuffer(raw, np.uint8, offset=header_bytes)


def load_split(prefix):
    """(images [N, 1, 28, 28] float32 in [0, 1], labels [N] int64) as tensors.

    The images are the file's pixels as [N, 28, 28, 1] (NHWC) viewed as NCHW: with one channel
    that view has channels-last strides, and PyTorch's convolutions follow their input's layout.
    """
    images = read_idx(f"{prefix}-images-idx3-ubyte.gz", 2051, 16).reshape(-1, 28, 28, 1)
    labels = read_idx(f"{prefix}-labels-idx1-ubyte.gz", 2049, 8).astype(np.int64)
    images = torch.from_numpy(images.astype(np.float32) / 255.0).permute(0, 3, 1, 2)
    return images, torch.from_numpy(labels)


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


class Trainer:
    def __init__(self, images, labels, memory_format="default", seed=0):
        torch.manual_seed(seed)
        self.images, self.labels = images, labels
        self.format = torch.channels_last if memory_format == "channels_last" else None
        self.model = make_cnn()
        if self.format is not None:
            self.model = self.model.to(memory_format=self.format)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1, momentum=0.9)

    def step(self, index):
        x, y = self.images[index], self.labels[index]
        if self.format is not None:
            x = x.contiguous(memory_format=self.format)
        self.optimizer.zero_grad()
        loss = F.cross_entropy(self.model(x), y)
        loss.backward()
        self.optimizer.step()
        return loss


def epoch_batches(n, batch_size, seed):
    """The index tensors of one epoch's full batches, in a shuffled order fixed by seed."""
    order = torch.from_numpy(np.random.default_rng(seed).permutation(n))
    return [order[i * batch_size : (i + 1) * batch_size] for i in range(n // batch_size)]


def throughput(args, images, labels):
    warm = iter(epoch_batches(len(images), args.batch_size, 0))
    trainers, first_step_s = {}, {}
    for fmt in args.formats:
        trainer = Trainer(images, labels, fmt)
        start = time.perf_counter()
        trainer.step(next(warm))
        first_step_s[fmt] = time.perf_counter() - start
        for _ in range(args.warmup):
            trainer.step(next(warm))
        trainers[fmt] = trainer

    rates = {fmt: [] for fmt in args.formats}
    busy = {fmt: [] for fmt in args.formats}
    for rnd in range(args.rounds):
        for fmt, trainer in trainers.items():
            chunk = epoch_batches(len(images), args.batch_size, rnd)[: args.chunk]
            wall, cpu = time.perf_counter(), time.process_time()
            for index in chunk:
                trainer.step(index)
            wall = time.perf_counter() - wall
            rates[fmt].append(args.chunk * args.batch_size / wall)
            busy[fmt].append((time.process_time() - cpu) / wall)

    results = {}
    for fmt in args.formats:
        median = statistics.median(rates[fmt])
        results[fmt] = {
            "images_per_s_median": round(median, 1),
            "images_per_s_all": [round(r) for r in rates[fmt]],
            "ms_per_step": round(1000 * args.batch_size / median, 2),
            "first_step_s": round(first_step_s[fmt], 2),
            "achieved_GFLOPs": round(median * TRAIN_FLOP_PER_IMAGE / 1e9, 1),
            "cpu_cores_busy": round(statistics.median(busy[fmt]), 2),
        }
    return {"results": results}


def one_epoch(args, images, labels):
    test_images, test_labels = load_split("t10k")
    trainer = Trainer(images, labels, args.formats[0])
    batches = epoch_batches(len(images), args.batch_size, 0)
    start = time.perf_counter()
    for index in batches:
        trainer.step(index)
    train_s = time.perf_counter() - start

    trainer.model.eval()
    with torch.no_grad():
        correct = sum(
            int((trainer.model(x).argmax(1) == y).sum())
            for x, y in zip(test_images.split(1000), test_labels.split(1000), strict=True)
        )
    return {
        "format": args.formats[0],
        "epoch_steps": len(batches),
        "epoch_train_s": round(train_s, 1),
        "images_per_s_epoch_avg": round(len(batches) * args.batch_size / train_s, 1),
        "test_acc_after_1_epoch": correct / len(test_images),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", default="throughput", choices=["throughput", "epoch"])
    parser.add_argument(
        "--formats",
        default="default",
        help="comma-separated: default, channels_last (epoch: the first)",
    )
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--chunk", type=int, default=50, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    args.formats = args.formats.split(",")
    torch.set_num_threads(args.threads)

    images, labels = load_split("train")
    info = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "mode": args.mode,
        "bs": args.batch_size,
    }
    run = throughput if args.mode == "throughput" else one_epoch
    print(json.dumps({**info, **run(args, images, labels)}, indent=1))


if __name__ == "__main__":
    main()
