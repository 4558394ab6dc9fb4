"""Print the torch/torchvision requirement that pip should install here.

Some machines cap pip at a locally stored torch/torchvision pair through a pip
``constraint`` file (``torch<=X``, ``torchvision<=Y``). Only that exact pair
imports together there, so we pin it (``torch==X torchvision==Y``). Everywhere
else this prints nothing and pip resolves torch/torchvision as usual. The
``TORCH_PINS`` environment variable, when set, wins.
"""

import os
import re
import subprocess
import sys


def _constraint_files():
    try:
        out = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"],
            capture_output=True, text=True, check=False,
        ).stdout
    except OSError:
        return []
    files = []
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key.strip().endswith(".constraint"):
            files.extend(value.strip().strip("'\"").split())
    return files


def main():
    """Print the pins (possibly an empty line)."""
    if "TORCH_PINS" in os.environ:
        print(os.environ["TORCH_PINS"])
        return
    caps = {}
    for path in _constraint_files():
        try:
            with open(path) as fh:
                text = fh.read()
        except OSError:
            continue
        for name, version in re.findall(
            r"^\s*(torch|torchvision)\s*<=\s*([\w.+]+)", text, re.M
        ):
            caps[name] = version
    if "torch" in caps and "torchvision" in caps:
        print(f"torch=={caps['torch']} torchvision=={caps['torchvision']}")
    else:
        print("")


if __name__ == "__main__":
    main()
