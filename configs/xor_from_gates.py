"""XOR from the seminar's fixed gates: AND(OR(x1, x2), NAND(x1, x2)).

    python train.py --config=configs/xor_from_gates.py

Expected: the truth table with the two hidden outputs (OR, NAND), 4/4
right, and in IMAGES the band between two lines where the output is 1:
what one perceptron (configs/gates.py:xor) cannot draw. About 3 s.
"""

from configs import gates


def get_config():
    config = gates.get_config("xor")
    config.mode = "fixed"
    return config
