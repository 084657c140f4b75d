#!/usr/bin/python3
"""Random weights for a full-size pre-activation ResNet-50 (timm's
resnetv2_50: 7x7 stem, PreActBottleneck stages [3, 4, 6, 3] of 256..2048
channels, BatchNormAct2d norms, 1x1-conv head), saved with timm's names, for
`make bench` to measure v2 beside v1 ResNet-50 of the same size.

  /usr/bin/python3 bench/make_resnetv2_50.py OUT.safetensors

The modules are those of tests/fixtures/parity/make_timm_fixtures.py, which
reproduce timm's definitions in plain torch (timm is not packaged).
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "fixtures", "parity"))
sys.path.insert(0, os.path.join(HERE, "..", "models"))
import make_timm_fixtures as timm  # noqa: E402
import safetensors_io  # noqa: E402


def main():
    torch.manual_seed(0)
    model = timm.ResNetV2([3, 4, 6, 3], [256, 512, 1024, 2048], stem_chs=64, classes=1000)
    timm.randomize(model, torch.Generator().manual_seed(1))
    safetensors_io.save(model.state_dict(), sys.argv[1], {})


if __name__ == "__main__":
    main()
