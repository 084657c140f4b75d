#!/usr/bin/python3
"""Export a torchvision ResNet to safetensors for resnetd.

  /usr/bin/python3 models/export_torchvision.py resnet50 --weights resnet50.pth -o resnet50.safetensors
  /usr/bin/python3 models/export_torchvision.py resnext50_32x4d --seed 0 -o random.safetensors

ARCH is any torchvision ResNet: resnet18, resnet34, resnet50, resnet101,
resnet152, wide_resnet50_2, wide_resnet101_2, resnext50_32x4d,
resnext101_32x8d, resnext101_64x4d. Weights come from a .pth state_dict (or a
whole pickled model), or are random with --seed (with random batch-norm
statistics, so that folding is exercised). Runs with Debian's python3-torch
and python3-torchvision; nothing is downloaded.
"""
import argparse
import json
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

ARCHS = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet50_2",
         "wide_resnet101_2", "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d"]

IMAGENET_PREPROCESS = {"resize": 256, "crop": 224, "scale": 1 / 255,
                       "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                       "order": "RGB"}


def randomize_bn(model, gen):
    """Non-identity batch norm, so that folding is really tested."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            m.weight.data = torch.rand(c, generator=gen) * 0.5 + 0.75
            m.bias.data = torch.randn(c, generator=gen) * 0.1
            m.running_mean.data = torch.randn(c, generator=gen) * 0.1
            m.running_var.data = torch.rand(c, generator=gen) * 0.5 + 0.75


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("arch", choices=ARCHS)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", help="a .pth file: a state_dict or a pickled model")
    src.add_argument("--seed", type=int, help="random weights from this seed")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--labels", help="a JSON array of class names, or a text file, one per line")
    ap.add_argument("--dtype", choices=["F32", "F16", "BF16"], default="F32")
    args = ap.parse_args()

    if args.seed is not None:
        torch.manual_seed(args.seed)
    model = getattr(torchvision.models, args.arch)(weights=None)
    if args.weights:
        obj = torch.load(args.weights, map_location="cpu")
        state = obj.state_dict() if hasattr(obj, "state_dict") else obj
        if "state_dict" in state:
            state = state["state_dict"]
        model.load_state_dict(state)
    else:
        randomize_bn(model, torch.Generator().manual_seed(args.seed))
    model.eval()

    dtype = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}[args.dtype]
    tensors = {}
    for k, v in model.state_dict().items():
        tensors[k] = v.to(dtype) if v.is_floating_point() else v
    meta = {"resnet.arch": args.arch, "resnet.variant": "v1.5", "resnet.bn_eps": "1e-05",
            "resnet.preprocess": json.dumps(IMAGENET_PREPROCESS),
            "resnet.source": os.path.basename(args.weights) if args.weights else f"random, seed {args.seed}"}
    if args.labels:
        with open(args.labels) as f:
            text = f.read()
        labels = json.loads(text) if text.lstrip().startswith("[") else text.splitlines()
        n = model.fc.out_features
        if len(labels) != n:
            sys.exit(f"{args.labels}: {len(labels)} labels, the model has {n} classes")
        meta["resnet.labels"] = json.dumps(labels)
    safetensors_io.save(tensors, args.output, meta)
    print(f"wrote {args.output}: {args.arch}, {sum(t.numel() for t in tensors.values())} values")


if __name__ == "__main__":
    main()
