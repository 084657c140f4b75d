#!/usr/bin/python3
"""ResNet-50 in every format resnetd loads, for bench/bench-formats.sh.

  /usr/bin/python3 bench/make_formats_50.py OUTDIR

torchvision's resnet50 with random weights (seed 0) as OUTDIR/r50.safetensors,
r50.pth (zip), r50_legacy.pth, r50.onnx (batch norm folded by the exporter)
and r50_bn.onnx (batch-norm nodes kept). Needs python3-torch, python3-onnx.
"""
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
import safetensors_io  # noqa: E402

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
model = torchvision.models.resnet50().eval()
sd = model.state_dict()
safetensors_io.save(sd, os.path.join(out, "r50.safetensors"), {})
torch.save(sd, os.path.join(out, "r50.pth"))
torch.save(sd, os.path.join(out, "r50_legacy.pth"), _use_new_zipfile_serialization=False)
x = torch.randn(1, 3, 224, 224)
for name, fold in (("r50.onnx", True), ("r50_bn.onnx", False)):
    torch.onnx.export(model, x, os.path.join(out, name), opset_version=13, do_constant_folding=fold,
                      training=torch.onnx.TrainingMode.EVAL if fold else torch.onnx.TrainingMode.PRESERVE,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
