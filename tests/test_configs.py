"""Every config file is a recipe that loads, passes its checks and says how to run it."""

import glob
import importlib
import os

import pytest

import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = sorted(
    os.path.basename(p)[:-3]
    for p in glob.glob(os.path.join(ROOT, "configs", "*.py"))
    if not p.endswith(("__init__.py", "base.py"))
)
ARGUMENTS = {"gates": ["or", "and", "nand", "xor"], "playground": ["spiral", "circles"]}


@pytest.mark.parametrize("name", NAMES)
def test_config_is_a_documented_recipe_that_passes_its_checks(name, tmp_path):
    module = importlib.import_module(f"configs.{name}")
    assert f"python train.py --config=configs/{name}.py" in module.__doc__
    assert "Expected" in module.__doc__, "a recipe states what to expect"
    for argument in ARGUMENTS.get(name, [None]):
        config = module.get_config(*([argument] if argument else []))
        if "data" in config and config.data.name == "csv":  # the user's file
            config.data.path = str(tmp_path / "data.csv")
            (tmp_path / "data.csv").write_text("x1,x2,label\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n")
        check, _ = train.EXPERIMENTS[config.get("experiment", "train")]
        check(config)
