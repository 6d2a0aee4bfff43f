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
# Every variant a recipe lists (what --help shows after its colon).
ARGUMENTS = {name: list(getattr(importlib.import_module(f"configs.{name}"), "VARIANTS", []))
             for name in NAMES}  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_config_is_a_documented_recipe_that_passes_its_checks(name, tmp_path):
    module = importlib.import_module(f"configs.{name}")
    assert f"python train.py --config=configs/{name}.py" in module.__doc__
    assert "Expected" in module.__doc__, "a recipe states what to expect"
    for argument in ARGUMENTS[name] or [None]:
        config = module.get_config(*([argument] if argument else []))
        if "data" in config and config.data.name == "csv":  # the user's file
            config.data.path = str(tmp_path / "data.csv")
            (tmp_path / "data.csv").write_text("x1,x2,label\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n")
        check, _ = train.EXPERIMENTS[config.get("experiment", "train")]
        check(config)


def test_help_lists_every_recipe_with_its_variants():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "train.py", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.stderr == ""  # (absl ends --help with exit code 1)
    assert ARGUMENTS["gates"] == ["and", "or", "nand", "xor"]
    assert "  configs/gates.py:{and,or,nand,xor}" in result.stdout
    assert "configs/playground.py:{spiral,circles,gaussians,xor_cloud}" in result.stdout
    for name in NAMES:
        first_line = importlib.import_module(f"configs.{name}").__doc__.splitlines()[0]
        line = next(x for x in result.stdout.splitlines() if f"  configs/{name}.py" in x)
        assert line.endswith(first_line), line
