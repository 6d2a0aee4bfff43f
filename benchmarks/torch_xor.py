"""PyTorch comparison: XOR training steps/s, one net and many nets at once, as JSON.

    /tmp/torch-venv/bin/python benchmarks/torch_xor.py                # about a minute
    /tmp/torch-venv/bin/python benchmarks/torch_xor.py --steps 1000 --rounds 1 --sweep 64
    python3 benchmarks/torch_xor.py --device=cuda --steps 2000 --sweep 256,100000   # a GPU

Needs requirements-torch.txt (its own venv). The net is a 2-4-1 MLP on the
four XOR points, full batch, plain SGD: sigmoid hidden layer, MSE on the
sigmoid of the output, learning rate 1.0 (`--act relu`: ReLU, binary cross
entropy on the logits, 0.1). The loss is read back (`loss.item()`) every
100 steps. Timed, each for `--steps` steps after one warm-up run, in
`--rounds` rounds on `--threads` threads (CPU), on `--device` (cpu, the
default; cuda; auto: cuda when PyTorch sees one; on CUDA every timing
starts and ends with torch.cuda.synchronize()):

- `idiomatic`: the usual zero_grad / backward / step loop;
- `idiomatic_summary_writer`: the same, plus `SummaryWriter.add_scalar` of
  the loss every 100 steps (into a temporary directory);
- with `--sweep N` (a comma-separated list of sizes; 0 skips it): N such
  nets trained together, with `torch.func` (`vmap` of `grad` over stacked
  parameters) and hand-batched with `torch.baddbmm` (an [N, ...] weight
  tensor per layer, one SGD);
- `--variants` (default: eager on CPU, all three on CUDA; eager always runs): besides eager,
  the single net's loop and the `baddbmm` sweep with their forward pass
  and loss as one module under `torch.compile` (`_compile`), and under
  `torch.compile(mode="reduce-overhead")` (`_reduce_overhead`: replayed as
  CUDA graphs, each step begun with
  `torch.compiler.cudagraph_mark_step_begin()`; on CPU that is plain
  compile), the optimizer eager.

Prints steps/s (median and every round) and the final loss for the single
net; for each sweep, wall seconds, net-steps/s (nets x steps / seconds),
the fraction of nets whose loss ended below 0.05 (relu: 0.1), and the
speed-up over N sequential idiomatic runs (extrapolated from `idiomatic`).
`results.sweep` is the first size's; with several sizes,
`results.sweeps` has each by its size.
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
VARIANTS = ("eager", "compile", "reduce-overhead")
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


def sync(device):
    """Waits for the device's queued work (CUDA runs asynchronously; the CPU does not)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def suffix(variant):
    """A result's name after its loop's: '' for eager, '_compile', '_reduce_overhead'."""
    return "" if variant == "eager" else "_" + variant.replace("-", "_")


def compiled(module, variant):
    """The module as the variant runs it, and the call that begins each step."""
    if variant == "eager":
        return module.forward, lambda: None  # the net's call as before: no module call around it
    if variant == "compile":
        return torch.compile(module), lambda: None
    return torch.compile(module, mode="reduce-overhead"), torch.compiler.cudagraph_mark_step_begin


class SingleLoss(nn.Module):
    """One net's mean loss on the four points: what a compiled variant compiles."""

    def __init__(self, net, act):
        super().__init__()
        self.net, self.act = net, act

    def forward(self, x, y):
        return xor_loss(self.net(x), y, self.act)


def single_trainer(args, variant):
    """Returns train(seed, logdir=None) for one net, kept across calls (compiled once).

    Each call starts from make_net(act, seed)'s parameters; with a logdir, the loss also goes
    to a SummaryWriter there, whose close (the flush) is timed too. train returns (steps/s,
    last logged loss).
    """
    net = make_net(args.act, 0).to(args.device)
    loss_of, begin_step = compiled(SingleLoss(net, args.act), variant)
    x, y = X.to(args.device), Y.to(args.device)

    def train(seed, logdir=None):
        with torch.no_grad():
            for p, init in zip(
                net.parameters(), make_net(args.act, seed).parameters(), strict=True
            ):
                p.copy_(init)
        opt = torch.optim.SGD(net.parameters(), lr=args.lr)
        writer = SummaryWriter(tempfile.mkdtemp(dir=logdir)) if logdir else None
        sync(args.device)
        start = time.perf_counter()
        for step in range(1, args.steps + 1):
            begin_step()
            opt.zero_grad()
            loss = loss_of(x, y)
            loss.backward()
            opt.step()
            if step % LOG_EVERY == 0:
                logged = loss.item()
                if writer is not None:
                    writer.add_scalar("loss", logged, step)
        if writer is not None:
            writer.close()
        sync(args.device)
        return args.steps / (time.perf_counter() - start), logged

    return train


def sweep_func(args, n):
    """n nets with torch.func: vmap(grad) over stacked parameters, SGD by hand.

    Returns train(steps), which trains copies of the same initial parameters and returns the losses.
    """
    initial, _ = stack_module_state([make_net(args.act, 1000 + i) for i in range(n)])
    initial = {name: p.to(args.device) for name, p in initial.items()}
    template = make_net(args.act, 0).to("meta")
    x, y = X.to(args.device), Y.to(args.device)

    def loss_of(p):
        return xor_loss(functional_call(template, p, (x,)), y, args.act)

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


class BatchedLoss(nn.Module):
    """The N nets' losses ([N]) on their copies of the four points."""

    def __init__(self, net, act):
        super().__init__()
        self.net, self.act = net, act

    def forward(self, xs, ys):
        return xor_loss(self.net(xs), ys, self.act, per_net=True)


def sweep_bmm(args, n, variant="eager"):
    """n nets hand-batched with baddbmm, one optimizer for all; returns train(steps).

    The module is made (and compiled) once; each train call starts from its initial parameters.
    """
    net = BatchedMLP(n, args.act).to(args.device)
    initial = [p.detach().clone() for p in net.parameters()]
    losses_of, begin_step = compiled(BatchedLoss(net, args.act), variant)
    xs = X.to(args.device).expand(n, 4, 2)
    ys = Y.to(args.device).expand(n, 4, 1)

    def train(steps):
        with torch.no_grad():
            for p, init in zip(net.parameters(), initial, strict=True):
                p.copy_(init)
        opt = torch.optim.SGD(net.parameters(), lr=args.lr)
        for step in range(1, steps + 1):
            begin_step()
            opt.zero_grad()
            losses = losses_of(xs, ys)
            losses.sum().backward()  # the nets share no parameters: each gets its own gradient
            opt.step()
            if step % LOG_EVERY == 0:
                final = losses.detach().clone()  # a CUDA graph's output is overwritten next step
        return final

    return train


def timed_rounds(train, args):
    """Warms up for 200 steps, then times args.rounds runs; returns (seconds, final losses)."""
    train(200)
    seconds = []
    for _ in range(args.rounds):
        sync(args.device)
        start = time.perf_counter()
        losses = train(args.steps)
        sync(args.device)
        seconds.append(time.perf_counter() - start)
    return seconds, losses


def pick_device(name):
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--act", default="sigmoid", choices=["sigmoid", "relu"])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--sweep", default="256", help="nets trained at once, comma-separated sizes; 0 skips"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument(
        "--variants",
        help=f"comma-separated, of {', '.join(VARIANTS)} (default: eager on CPU, all on CUDA)",
    )
    args = parser.parse_args()
    args.lr = 1.0 if args.act == "sigmoid" else 0.1
    args.device = pick_device(args.device)
    if args.device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device={args.device}: this PyTorch ({torch.__version__}) sees no GPU")
    default_variants = "eager" if args.device.type == "cpu" else ",".join(VARIANTS)
    variants = (args.variants or default_variants).split(",")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown --variants {unknown}: choose from {', '.join(VARIANTS)}")
    if "eager" not in variants:  # the baseline: the summary writer's loop and the speed-ups
        variants.insert(0, "eager")
    if args.steps % LOG_EVERY:
        parser.error(f"--steps must be a multiple of {LOG_EVERY} (the loss is read every 100)")
    sizes = [int(s) for s in args.sweep.split(",") if int(s) > 0]
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="torch_xor_tb_") as logdir:
        trainers = {f"idiomatic{suffix(v)}": single_trainer(args, v) for v in variants}
        runs = {name: (lambda seed, t=t: t(seed)) for name, t in trainers.items()}
        runs["idiomatic_summary_writer"] = lambda seed: trainers["idiomatic"](seed, logdir)
        for run in runs.values():
            run(99)  # warm-up (and compiling)
        rates = {name: [] for name in runs}
        final = {}
        for seed in range(args.rounds):  # the variants alternate
            for name, run in runs.items():
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

    sweeps = {}
    for n in sizes:
        threshold = 0.05 if args.act == "sigmoid" else 0.1
        net_steps = n * args.steps
        sequential_s = net_steps / results["idiomatic"]["steps_per_s_median"]
        sweep = {"nets": n, "steps": args.steps}
        loops = {"torch_func_vmap": lambda n=n: sweep_func(args, n)}
        for v in variants:
            loops[f"bmm{suffix(v)}"] = lambda n=n, v=v: sweep_bmm(args, n, v)
        for name, prepare in loops.items():
            seconds, losses = timed_rounds(prepare(), args)
            median = statistics.median(seconds)
            sweep[name] = {
                "wall_s_median": round(median, 3),
                "wall_s_all": [round(s, 2) for s in seconds],
                "net_steps_per_s": round(net_steps / median),
                "frac_solved": float((losses < threshold).float().mean()),
                "speedup_vs_sequential": round(sequential_s / median, 1),
            }
        sweep["sequential_idiomatic_wall_s_extrapolated"] = round(sequential_s, 1)
        sweeps[str(n)] = sweep
    if sweeps:
        results["sweep"] = sweeps[str(sizes[0])]
    if len(sweeps) > 1:
        results["sweeps"] = sweeps

    info = {
        "act": args.act,
        "steps": args.steps,
        "threads": args.threads,
        "device": str(args.device),
        "variants": variants,
        "torch": torch.__version__,
    }
    print(json.dumps({**info, "results": results}, indent=1))


if __name__ == "__main__":
    main()
