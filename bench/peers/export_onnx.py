#!/usr/bin/python3
"""Export one of our safetensors ResNets to ONNX for the ONNX Runtime peer.

  /usr/bin/python3 bench/peers/export_onnx.py MODEL.safetensors OUT.onnx

The graph has a dynamic batch axis (input "input" [N,3,224,224], output
"logits"); batch norm stays unfolded: ONNX Runtime folds it itself with graph
optimisation "all", as it would for any exported model.
"""
import sys

import torch

import torch_model


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    arch, model = torch_model.load(sys.argv[1])
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.onnx.export(model, x, sys.argv[2], opset_version=13, input_names=["input"],
                          output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    print("%s: %s exported to %s" % (sys.argv[1], arch, sys.argv[2]))


if __name__ == "__main__":
    main()
