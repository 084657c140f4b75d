"""A torchvision ResNet holding the weights of one of our safetensors files.

Shared by export_onnx.py and torch_bench.py, so that every peer runs exactly
the weights resnet bench runs. The architecture is torchvision's resnet18..152
chosen by the tensors (bottleneck blocks if conv3 exists, blocks per stage
counted); `resnet.variant` v1 moves the stride 2 of layers 2-4's first block
from conv2 to conv1, and `resnet.bn_eps` sets every batch norm's epsilon, as
the engine reads them. Debian's python3-torch and python3-torchvision only.
"""
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models"))
import safetensors_io  # noqa: E402
ARCHS = {(False, (2, 2, 2, 2)): "resnet18", (False, (3, 4, 6, 3)): "resnet34",
         (True, (3, 4, 6, 3)): "resnet50", (True, (3, 4, 23, 3)): "resnet101",
         (True, (3, 8, 36, 3)): "resnet152"}


def read_safetensors(path):
    """(state_dict of float32 tensors, metadata dict)."""
    tensors, meta = safetensors_io.load(path)
    # num_batches_tracked (I64) is not a weight
    return {k: v.float() for k, v in tensors.items() if v.is_floating_point()}, meta


def load(path):
    """The eval-mode torchvision model of the safetensors file at path."""
    sd, meta = read_safetensors(path)
    bottleneck = any(k.endswith("conv3.weight") for k in sd)
    blocks = tuple(len({k.split(".")[1] for k in sd if k.startswith("layer%d." % i)})
                   for i in range(1, 5))
    arch = ARCHS.get((bottleneck, blocks))
    if arch is None:
        raise SystemExit("%s: no torchvision ResNet has %s blocks %s" %
                         (path, "bottleneck" if bottleneck else "basic", blocks))
    model = getattr(torchvision.models, arch)(weights=None,
                                               num_classes=sd["fc.weight"].shape[0])
    if meta.get("resnet.variant", "v1.5") == "v1":
        for layer in (model.layer2, model.layer3, model.layer4):
            first = layer[0]
            if bottleneck:
                first.conv1.stride, first.conv2.stride = (2, 2), (1, 1)
    eps = float(meta.get("resnet.bn_eps", "1e-5"))
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.eps = eps
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit("%s: missing %s, unexpected %s" % (path, missing, unexpected))
    return arch, model.eval()
