"""PyTorch comparison: a whole XOR training process, to be timed from outside.

    /usr/bin/time -v /tmp/torch-venv/bin/python benchmarks/torch_xor_command.py
    hyperfine '/tmp/torch-venv/bin/python benchmarks/torch_xor_command.py'

Needs requirements-torch.txt (its own venv). Trains the 2-4-1 XOR MLP
(sigmoid, MSE on the sigmoid of the output, SGD lr 1.0, full batch of the
four points) for 2,000 steps and logs the loss with
torch.utils.tensorboard's SummaryWriter every 100 steps, into a temporary
directory that is removed at the end: the small-script counterpart of
`python train.py --config=configs/xor.py`. What is measured is the wall
time of the process, imports included; it prints only the final loss.
"""

import tempfile

import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter


def main():
    torch.manual_seed(0)
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = torch.tensor([[0.0], [1.0], [1.0], [0.0]])
    model = nn.Sequential(nn.Linear(2, 4), nn.Sigmoid(), nn.Linear(4, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    with tempfile.TemporaryDirectory(prefix="torch_xor_command_") as logdir:
        writer = SummaryWriter(logdir)
        for step in range(1, 2001):
            optimizer.zero_grad()
            loss = ((torch.sigmoid(model(x)) - y) ** 2).mean()
            loss.backward()
            optimizer.step()
            if step % 100 == 0:
                writer.add_scalar("loss", loss.item(), step)
        writer.close()
    print("final loss", loss.item())


if __name__ == "__main__":
    main()
