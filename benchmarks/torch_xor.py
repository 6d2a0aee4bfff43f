"""PyTorch comparison: XOR training steps/s, one net and many nets at once, as JSON.

    /tmp/torch-venv/bin/python benchmarks/torch_xor.py                # about a minute
    /tmp/torch-venv/bin/python benchmarks/torch_xor.py --steps 1000 --rounds 1 --sweep 64

Needs requirements-torch.txt (its own venv). The net is a 2-4-1 MLP on the
four XOR points, full batch, plain SGD: sigmoid hidden layer, MSE on the
sigmoid of the output, learning rate 1.0 (`--act relu`: ReLU, binary cross
entropy on the logits, 0.1). The loss is read back (`loss.item()`) every
100 steps. Timed, each for `--steps` steps after one warm-up run, in
`--rounds` rounds on `--threads` threads:

- `idiomatic`: the usual zero_grad / backward / step loop;
- `idiomatic_summary_writer`: the same, plus `SummaryWriter.add_scalar` of
  the loss every 100 steps (into a temporary directory);
- with `--sweep N` (0 skips it): N such nets trained together, with
  `torch.func` (`vmap` of `grad` over stacked parameters) and hand-batched
  with `torch.baddbmm` (an [N, ...] weight tensor per layer, one SGD).

Prints steps/s (median and every round) and the final loss for the single
net; for the sweep, wall seconds, net-steps/s (nets x steps / seconds), the
fraction of nets whose loss ended below 0.05 (relu: 0.1), and the speed-up
over N sequential idiomatic runs (extrapolated from `idiomatic`).
"""

import argparse
import json
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, stack_module_state, vmap
from torch.utils.tensorboard import SummaryWriter

LOG_EVERY = 100
X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
Y = torch.tensor([[0.0], [1.0], [1.0], [0.0]])


def xor_loss(logits, y, act, per_net=False):
    """The mean loss over the 4 points; per_net: logits [N, 4, 1], one mean per net ([N])."""
    if act == "sigmoid":
        squared = (torch.sigmoid(logits) - y) ** 2
        return squared.mean(dim=(1, 2)) if per_net else squared.mean()
    if per_net:
        return F.binary_cross_entropy_with_logits(logits, y, reduction="none").mean(dim=(1, 2))
    return F.binary_cross_entropy_with_logits(logits, y)


def make_net(act, seed):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(2, 4), nn.Sigmoid() if act == "sigmoid" else nn.ReLU(), nn.Linear(4, 1)
    )


def train_one(args, seed, logdir=None):
    """Trains one net for args.steps steps; returns (steps/s, last logged loss).

    With a logdir, the loss also goes to a SummaryWriter there; its close (the flush) is timed too.
    """
    net = make_net(args.act, seed)
    opt = torch.optim.SGD(net.parameters(), lr=args.lr)
    writer = SummaryWriter(tempfile.mkdtemp(dir=logdir)) if logdir else None
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        opt.zero_grad()
        loss = xor_loss(net(X), Y, args.act)
        loss.backward()
        opt.step()
        if step % LOG_EVERY == 0:
            logged = loss.item()
            if writer is not None:
                writer.add_scalar("loss", logged, step)
    if writer is not None:
        writer.close()
    return args.steps / (time.perf_counter() - start), logged


def sweep_func(args):
    """args.sweep nets with torch.func: vmap(grad) over stacked parameters, SGD by hand.

    Returns train(steps), which trains copies of the same initial parameters and returns the losses.
    """
    initial, _ = stack_module_state([make_net(args.act, 1000 + i) for i in range(args.sweep)])
    template = make_net(args.act, 0).to("meta")

    def loss_of(p):
        return xor_loss(functional_call(template, p, (X,)), Y, args.act)

    grads_of, losses_of = vmap(grad(loss_of)), vmap(loss_of)

    def train(steps):
        params = {name: p.detach().clone() for name, p in initial.items()}
        for step in range(1, steps + 1):
            grads = grads_of(params)
            with torch.no_grad():
                for name, p in params.items():
                    p.sub_(args.lr * grads[name])
            if step % LOG_EVERY == 0:
                losses = losses_of(params).detach()
        return losses

    return train


class BatchedMLP(nn.Module):
    """N independent 2-4-1 nets as one module: weights [N, in, out], biases [N, 1, out]."""

    def __init__(self, n, act):
        super().__init__()
        torch.manual_seed(0)
        self.w1 = nn.Parameter(torch.randn(n, 2, 4) * 0.7)
        self.b1 = nn.Parameter(torch.zeros(n, 1, 4))
        self.w2 = nn.Parameter(torch.randn(n, 4, 1) * 0.5)
        self.b2 = nn.Parameter(torch.zeros(n, 1, 1))
        self.act = torch.sigmoid if act == "sigmoid" else torch.relu

    def forward(self, x):  # x: [N, 4, 2]
        return torch.baddbmm(self.b2, self.act(torch.baddbmm(self.b1, x, self.w1)), self.w2)


def sweep_bmm(args):
    """args.sweep nets hand-batched with baddbmm, one optimizer for all; returns train(steps)."""
    xs, ys = X.expand(args.sweep, 4, 2), Y.expand(args.sweep, 4, 1)

    def train(steps):
        net = BatchedMLP(args.sweep, args.act)
        opt = torch.optim.SGD(net.parameters(), lr=args.lr)
        for step in range(1, steps + 1):
            opt.zero_grad()
            losses = xor_loss(net(xs), ys, args.act, per_net=True)
            losses.sum().backward()  # the nets share no parameters: each gets its own gradient
            opt.step()
            if step % LOG_EVERY == 0:
                final = losses.detach()
        return final

    return train


def timed_rounds(train, args):
    """Warms up for 200 steps, then times args.rounds runs; returns (seconds, final losses)."""
    train(200)
    seconds = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        losses = train(args.steps)
        seconds.append(time.perf_counter() - start)
    return seconds, losses


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--act", default="sigmoid", choices=["sigmoid", "relu"])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sweep", type=int, default=256, help="nets trained at once; 0 skips")
    args = parser.parse_args()
    args.lr = 1.0 if args.act == "sigmoid" else 0.1
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="torch_xor_tb_") as logdir:
        variants = {
            "idiomatic": lambda seed: train_one(args, seed),
            "idiomatic_summary_writer": lambda seed: train_one(args, seed, logdir),
        }
        for run in variants.values():
            run(99)  # warm-up
        rates = {name: [] for name in variants}
        final = {}
        for seed in range(args.rounds):  # the variants alternate
            for name, run in variants.items():
                rate, final[name] = run(seed)
                rates[name].append(rate)

    results = {}
    for name, rs in rates.items():
        median = statistics.median(rs)
        results[name] = {
            "steps_per_s_median": round(median, 1),
            "steps_per_s_all": [round(r) for r in rs],
            "us_per_step": round(1e6 / median, 2),
            "final_loss": round(final[name], 5),
        }

    if args.sweep:
        threshold = 0.05 if args.act == "sigmoid" else 0.1
        net_steps = args.sweep * args.steps
        sequential_s = net_steps / results["idiomatic"]["steps_per_s_median"]
        sweep = {"nets": args.sweep, "steps": args.steps}
        for name, prepare in (("torch_func_vmap", sweep_func), ("bmm", sweep_bmm)):
            seconds, losses = timed_rounds(prepare(args), args)
            median = statistics.median(seconds)
            sweep[name] = {
                "wall_s_median": round(median, 3),
                "wall_s_all": [round(s, 2) for s in seconds],
                "net_steps_per_s": round(net_steps / median),
                "frac_solved": float((losses < threshold).float().mean()),
                "speedup_vs_sequential": round(sequential_s / median, 1),
            }
        sweep["sequential_idiomatic_wall_s_extrapolated"] = round(sequential_s, 1)
        results["sweep"] = sweep

    info = {
        "act": args.act,
        "steps": args.steps,
        "threads": args.threads,
        "torch": torch.__version__,
    }
    print(json.dumps({**info, "results": results}, indent=1))


if __name__ == "__main__":
    main()
