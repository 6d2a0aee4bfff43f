"""Logic gates from single perceptrons (seminar slides 3-9), gate after ':'.

    python train.py --config=configs/gates.py:and        # or, and, nand
    python train.py --config=configs/gates.py:or --config.mode=delta
    python train.py --config=configs/gates.py:xor        # delta rule: fails

Fixed mode uses the seminar's weights, w1 = w2 = 0.5 with theta 0.3 (OR),
0.7 (AND) and 0.7 with the inequality reversed (NAND). Expected: a 4/4
truth table. Delta mode (the default for xor) learns w and theta with the
delta rule, from zeros: OR and AND reach 4/4 after 3 epochs, NAND after 5
(from random starts, `--config.init_scale=0.5`, within 10 epochs for seeds
0-9). XOR stops at max_epochs with at most 3/4 right. Each run takes about
3 s, nearly all of it start-up.
"""

import ml_collections

VARIANTS = ("and", "or", "nand", "xor")  # what may follow the colon (python train.py --help)


def get_config(gate: str = "and") -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.experiment = "gates"  # train.py runs gates.run, not gradient descent
    config.gate = gate  # or, and, nand, xor
    config.mode = "delta" if gate == "xor" else "fixed"  # fixed weights or the delta rule
    config.seed = 0  # delta: draws the initial w and theta
    config.init_scale = 0.0  # delta: initial w, theta uniform in [-s, s]; 0 = zeros
    config.learning_rate = 0.1  # delta: lr in w += lr (t - y) x
    config.max_epochs = 50  # delta: passes over the four points at most
    return config
