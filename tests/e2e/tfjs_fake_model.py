#!/usr/bin/python3
"""Write a tiny fake TF.js layers model of a Keras ResNet (Python standard
library only), whole or broken in one named way, for convert_errors.sh.

    tfjs_fake_model.py DIR [MUTATION]

DIR gets model.json, group1-shard1of2.bin, group1-shard2of2.bin and
reference.json (the Keras weights as lists, to check the conversion). The
network: conv1 (3x3, 3->4) + bn_conv1, one bottleneck stage (res2a: 2a 1x1
4->2, 2b 3x3 2->2, 2c 1x1 2->8, branch1 1x1 4->8), fc1000 (8->5). Weights are
listed alphabetically, as the TF.js converter does, and the bytes are split
into two shards at an odd offset.
"""
import json
import os
import struct
import sys

CONVS = {  # name: (kernel HWIO, batch norm)
    "conv1": ([3, 3, 3, 4], "bn_conv1"),
    "res2a_branch2a": ([1, 1, 4, 2], "bn2a_branch2a"),
    "res2a_branch2b": ([3, 3, 2, 2], "bn2a_branch2b"),
    "res2a_branch2c": ([1, 1, 2, 8], "bn2a_branch2c"),
    "res2a_branch1": ([1, 1, 4, 8], "bn2a_branch1"),
}
EPS = 0.001


def conv_config(name, kernel, strides=(1, 1)):
    return {"name": name, "class_name": "Conv2D",
            "config": {"name": name, "filters": kernel[3], "kernel_size": kernel[:2],
                       "strides": list(strides), "padding": "same", "use_bias": True,
                       "dilation_rate": [1, 1], "data_format": "channels_last"}}


def bn_config(name, eps=EPS):
    return {"name": name, "class_name": "BatchNormalization",
            "config": {"name": name, "axis": [3], "epsilon": eps}}


def build(mutation):
    weights = {}  # name -> (shape, values)
    layers = [{"name": "input_1", "class_name": "InputLayer", "config": {"name": "input_1"}}]
    k = 0

    def values(n, base):
        nonlocal k
        k += 1
        return [base + 0.01 * ((i * 7 + k * 3) % 23 - 11) for i in range(n)]

    for name, (kernel, bn) in CONVS.items():
        n = kernel[0] * kernel[1] * kernel[2] * kernel[3]
        co = kernel[3]
        weights[name + "/kernel"] = (kernel, values(n, 0.0))
        weights[name + "/bias"] = ([co], values(co, 0.1))
        weights[bn + "/gamma"] = ([co], values(co, 1.0))
        weights[bn + "/beta"] = ([co], values(co, 0.0))
        weights[bn + "/moving_mean"] = ([co], values(co, 0.2))
        weights[bn + "/moving_variance"] = ([co], values(co, 1.5))
        layers.append(conv_config(name, kernel))
        layers.append(bn_config(bn))
    weights["fc1000/kernel"] = ([8, 5], values(40, 0.0))
    weights["fc1000/bias"] = ([5], values(5, 0.0))
    layers.append({"name": "fc1000", "class_name": "Dense",
                   "config": {"name": "fc1000", "units": 5, "activation": "softmax"}})

    if mutation == "unknown_layer":  # a layer name no ResNet has
        weights["dense_7/kernel"] = weights.pop("fc1000/kernel")
        weights["dense_7/bias"] = weights.pop("fc1000/bias")
        layers[-1]["name"] = layers[-1]["config"]["name"] = "dense_7"
    elif mutation == "unknown_class":  # a layer kind no ResNet has
        layers.insert(1, {"name": "dw", "class_name": "DepthwiseConv2D", "config": {"name": "dw"}})
    elif mutation == "missing_layer":
        for p in ("gamma", "beta", "moving_mean", "moving_variance"):
            del weights["bn2a_branch2b/" + p]
        layers = [l for l in layers if l["name"] != "bn2a_branch2b"]
    elif mutation == "bn_channels":  # consistent sizes, inconsistent channels
        weights["bn2a_branch2a/gamma"] = ([3], [1.0, 1.0, 1.0])
    elif mutation == "eps_mismatch":
        layers[4]["config"]["epsilon"] = 1e-5
    elif mutation == "tfkeras":  # tf.keras 2.x's names for the same network
        def rename(n):
            fixed = {"conv1": "conv1_conv", "bn_conv1": "conv1_bn", "fc1000": "predictions"}
            if n in fixed:
                return fixed[n]
            kind = "bn" if n.startswith("bn") else "conv"
            br = {"1": 0, "2a": 1, "2b": 2, "2c": 3}[n.split("_branch")[1]]
            stage, block = n.lstrip("bnres")[0], ord(n.lstrip("bnres")[1]) - ord("a") + 1
            return "conv%s_block%d_%d_%s" % (stage, block, br, kind)
        weights = {rename(k.split("/")[0]) + "/" + k.split("/")[1]: v for k, v in weights.items()}
        for l in layers[1:]:
            l["name"] = l["config"]["name"] = rename(l["name"])
    return weights, layers


def main():
    out = sys.argv[1]
    mutation = sys.argv[2] if len(sys.argv) > 2 else "none"
    weights, layers = build(mutation)
    names = sorted(weights)
    entries = [{"name": n, "shape": weights[n][0], "dtype": "float32"} for n in names]
    blob = b"".join(struct.pack("<%df" % len(weights[n][1]), *weights[n][1]) for n in names)

    if mutation == "shape_mismatch":  # the manifest says more than the shards hold
        next(e for e in entries if e["name"] == "fc1000/kernel")["shape"] = [8, 6]
    elif mutation == "shape_smaller":  # ... or less
        next(e for e in entries if e["name"] == "fc1000/kernel")["shape"] = [8, 4]
    elif mutation == "shape_overflow":
        next(e for e in entries if e["name"] == "fc1000/kernel")["shape"] = [2 ** 40, 2 ** 40]
    elif mutation == "quantized":
        e = next(e for e in entries if e["name"] == "res2a_branch2b/kernel")
        e["quantization"] = {"dtype": "uint8", "scale": 0.01, "min": -1.0}
    elif mutation == "int32":
        next(e for e in entries if e["name"] == "fc1000/bias")["dtype"] = "int32"

    cut = len(blob) // 2 + 1
    shards = [blob[:cut], blob[cut:]]
    paths = ["group1-shard1of2.bin", "group1-shard2of2.bin"]
    if mutation == "path_escape":
        paths[1] = "../group1-shard2of2.bin"
    model = {
        "format": "layers-model",
        "generatedBy": "tfjs_fake_model.py",
        "convertedBy": "hand",
        "modelTopology": {"model_config": {"class_name": "Model",
                                           "config": {"name": "tiny", "layers": layers}}},
        "weightsManifest": [{"paths": paths, "weights": entries}],
    }
    os.makedirs(out, exist_ok=True)
    text = json.dumps(model, indent=1)
    if mutation == "invalid_json":
        text = text[: len(text) // 2]
    with open(os.path.join(out, "model.json"), "w") as f:
        f.write(text)
    for i, s in enumerate(shards):
        with open(os.path.join(out, "group1-shard%dof2.bin" % (i + 1)), "wb") as f:
            f.write(s)
    if mutation == "missing_shard":
        os.remove(os.path.join(out, "group1-shard2of2.bin"))
    elif mutation == "short_shard":
        with open(os.path.join(out, "group1-shard2of2.bin"), "r+b") as f:
            f.truncate(len(shards[1]) - 4)
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump({n: weights[n] for n in names}, f)


if __name__ == "__main__":
    main()
