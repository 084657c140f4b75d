#!/usr/bin/python3
"""Our INT8 model (docs/int8.md) as a QDQ ONNX graph with exactly its scales.

  /usr/bin/python3 bench/peers/export_qdq.py IN.int8.safetensors OUT.onnx

It reads the file `resnet quantize` writes (I8 weights with per-channel
weight_scale, I32 biases at s_in * weight_scale, one output_scale per
convolution, input_scale) and writes the graph ONNX Runtime's quantize_static
would write had it chosen the same numbers, so that ONNX Runtime runs the very
quantization our engine runs (bench/peers/int8_fidelity.py compares them) and
a QDQ reader can be checked against our own file. Deterministic: the same
input gives the same bytes. Only torchvision/timm v1-family ResNets (basic
and bottleneck blocks, v1 and v1.5, ResNeXt groups, timm's deep stem and
average-pool shortcuts, an input batch norm); a pre-activation v2 file is
refused (its unfolded batch norms and s8 block outputs have no QDQ form here).

The mapping (opset 13; input "input" float [batch, 3, height, width], output
"logits"):

  * the image: an input batch norm `input_norm` if the file has one, as Mul by
    f32 scale then Add of f32 shift per channel (scale and shift as
    core/model/loader.c computes them); then QuantizeLinear(uint8, scale
    input_scale, zero point input_zero_point, 128 when absent) -> DequantizeLinear.
  * every convolution NAME: Conv(x, DequantizeLinear(NAME.weight int8,
    NAME.weight_scale, 0, axis 0), DequantizeLinear(NAME.bias int32,
    f32(s_in * NAME.weight_scale[o]), 0, axis 0)), strides, pads k//2,
    group = in channels / weight's in channels.
  * its output, where it ends in a ReLU (every stem and body conv but a
    block's last): QuantizeLinear(uint8, NAME.output_scale, zero point 0) ->
    DequantizeLinear; there is no Relu node: the clamp at zero point 0 is the
    ReLU, as quantize_static removes a removable activation.
    A projection shortcut (downsample conv, no ReLU): int8, zero point
    NAME.output_zero_point (0 when absent).
  * a block's last convolution stays float and feeds the Add with the
    shortcut (our engine computes conv + residual + ReLU with one rounding);
    the Add's output: QuantizeLinear(uint8, the last conv's output_scale,
    zero point 0) -> DequantizeLinear, again the ReLU.
  * MaxPool 3x3/2 pad 1, and ResNet-D's AveragePool 2x2/2 (ceil_mode,
    count_include_pad 0) on a stride-2 shortcut: on the dequantized input,
    then QuantizeLinear -> DequantizeLinear with the input's own scale and
    zero point (ONNX Runtime runs them on uint8).
  * GlobalAveragePool, Flatten and the classifier Gemm(transB=1, fc.weight,
    fc.bias as float32) in float.

Activation tensors are named after the op that writes them (module names);
X_QuantizeLinear_Output / X_DequantizeLinear_Output, X_scale / X_zero_point
as quantize_static names them; weights NAME.weight_quantized,
NAME.weight_scale, NAME.weight_zero_point; biases NAME.bias_quantized,
NAME.bias_quantized_scale, NAME.bias_quantized_zero_point.
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                                "fixtures", "int8"))
sys.dont_write_bytecode = True  # no __pycache__ among the fixtures
import reference  # noqa: E402

OPSET = 13
F32 = np.float32
class ExportError(Exception):
    pass


def load_safetensors(path):
    """({name: ndarray}, {metadata}): the INT8 reference's reader (numpy only)"""
    try:
        t, meta, _ = reference.load_safetensors(path)
    except KeyError as e:
        raise ExportError("%s: dtype %s not expected in an INT8 file" % (path, e))
    return t, meta


class Exporter:
    def __init__(self, t, meta):
        self.t, self.meta = t, meta
        self.nodes, self.inits = [], {}
        self.qparams = {}  # float tensor name -> (scale init, zero point init)
        self.scale = {}  # dequantized tensor name -> its float32 scale
        self.ch = {}

    def need(self, name):
        if name not in self.t:
            raise ExportError("%s: missing" % name)
        return self.t[name]

    def node(self, op, name, inputs, output, **attrs):
        self.nodes.append(helper.make_node(op, inputs, [output], name=name, **attrs))
        return output

    def qdq(self, x, scale, zp):
        """Quantize float tensor x with (scale, zp: np.uint8 or np.int8 scalar)
        and dequantize it; returns the dequantized tensor's name."""
        s, z = x + "_scale", x + "_zero_point"
        self.inits[s], self.inits[z] = np.array(scale, F32), np.array(zp)
        return self.qdq_with(x, s, z, F32(scale))

    def qdq_with(self, x, s, z, scale):
        q = self.node("QuantizeLinear", x + "_QuantizeLinear", [x, s, z], x + "_QuantizeLinear_Output")
        dq = self.node("DequantizeLinear", x + "_DequantizeLinear", [q, s, z],
                       x + "_DequantizeLinear_Output")
        self.qparams[dq] = (s, z)
        self.scale[dq] = scale
        return dq

    def conv(self, name, x, stride, quant):
        """quant: "u8" (a ReLU follows), "s8" (none), or None (float output)"""
        w = self.need(name + ".weight")
        ws = self.need(name + ".weight_scale").astype(F32)
        b = self.need(name + ".bias")
        if w.dtype != np.int8 or b.dtype != np.int32 or w.ndim != 4 or ws.shape != (w.shape[0],) \
                or b.shape != (w.shape[0],):
            raise ExportError("%s: expected I8 weight (out,in,kh,kw), F32 weight_scale and I32 bias "
                              "of (out)" % name)
        in_c = self.ch[x]
        if w.shape[1] < 1 or in_c % w.shape[1]:
            raise ExportError("%s.weight: shape %s does not fit %d input channels"
                              % (name, list(w.shape), in_c))
        s_in = self.scale[x]
        bs = (s_in * ws).astype(F32)  # f32(s_in * weight_scale[o])
        wq = name + ".weight_quantized"
        self.inits[wq] = w
        self.inits[name + ".weight_scale"] = ws
        self.inits[name + ".weight_zero_point"] = np.zeros(w.shape[0], np.int8)
        bq = name + ".bias_quantized"
        self.inits[bq] = b
        self.inits[bq + "_scale"] = bs
        self.inits[bq + "_zero_point"] = np.zeros(w.shape[0], np.int32)
        wdq = self.node("DequantizeLinear", wq + "_DequantizeLinear",
                        [wq, name + ".weight_scale", name + ".weight_zero_point"],
                        wq + "_DequantizeLinear_Output", axis=0)
        bdq = self.node("DequantizeLinear", bq + "_DequantizeLinear",
                        [bq, bq + "_scale", bq + "_zero_point"], bq + "_DequantizeLinear_Output", axis=0)
        k = int(w.shape[2])
        y = self.node("Conv", name, [x, wdq, bdq], name, kernel_shape=[k, int(w.shape[3])],
                      strides=[stride, stride], pads=[k // 2] * 4, dilations=[1, 1],
                      group=in_c // int(w.shape[1]))
        self.ch[y] = int(w.shape[0])
        if quant is None:
            return y
        s_out = self.need(name + ".output_scale").astype(F32)
        z = np.int8(self.t[name + ".output_zero_point"]) if name + ".output_zero_point" in self.t else np.int8(0)
        out = self.qdq(y, s_out, np.uint8(0) if quant == "u8" else z)
        self.ch[out] = self.ch[y]
        return out

    def same_scale(self, op, name, x, **attrs):
        """A pooling on dequantized x, requantized with x's own parameters."""
        y = self.node(op, name, [x], name, **attrs)
        s, z = self.qparams[x]
        out = self.qdq_with(y, s, z, self.scale[x])
        self.ch[out] = self.ch[x]
        return out

    def input(self):
        x = "input"
        self.ch[x] = 3
        if "input_norm.weight" in self.t:
            eps = float(F32(float(self.meta.get("resnet.bn_eps", "1e-5"))))
            g, b, m, v = (self.need("input_norm." + f).astype(np.float64)
                          for f in ("weight", "bias", "running_mean", "running_var"))
            s = g / np.sqrt(v + eps)
            self.inits["input_norm.scale"] = s.astype(F32).reshape(1, 3, 1, 1)
            self.inits["input_norm.shift"] = (b - m * s).astype(F32).reshape(1, 3, 1, 1)
            x = self.node("Mul", "input_norm.mul", [x, "input_norm.scale"], "input_norm.mul")
            x = self.node("Add", "input_norm", [x, "input_norm.shift"], "input_norm")
            self.ch[x] = 3
        z = np.uint8(self.t["input_zero_point"]) if "input_zero_point" in self.t else np.uint8(128)
        out = self.qdq(x, self.need("input_scale").astype(F32), z)
        self.ch[out] = 3
        return out

    def v1(self):
        t, meta = self.t, self.meta
        if "stem.conv.weight" in t or "stem.conv1.weight" in t or any(k.startswith("stages.") for k in t):
            raise ExportError("a pre-activation ResNet v2 (timm resnetv2): export_qdq.py writes "
                              "v1-family models only (torchvision/timm resnet, ResNeXt, ResNet-C/D)")
        variant = meta.get("resnet.variant", "v1.5")
        if variant not in ("v1", "v1.5"):
            raise ExportError('metadata resnet.variant: "%s", expected "v1" or "v1.5"' % variant)
        x = self.input()
        if "conv1.weight" in t:
            x = self.conv("conv1", x, 2, "u8")
        elif "conv1.0.weight" in t:
            x = self.conv("conv1.0", x, 2, "u8")
            x = self.conv("conv1.3", x, 1, "u8")
            x = self.conv("conv1.6", x, 1, "u8")
        else:
            raise ExportError("conv1.weight: missing; not a torchvision/timm ResNet")
        x = self.same_scale("MaxPool", "maxpool", x, kernel_shape=[3, 3], strides=[2, 2],
                            pads=[1, 1, 1, 1])
        bottleneck = "layer1.0.conv3.weight" in t
        s = 1
        while "layer%d.0.conv1.weight" % s in t:
            for i in range(10000):
                p = "layer%d.%d" % (s, i)
                if p + ".conv1.weight" not in t:
                    break
                stride = 2 if i == 0 and s > 1 else 1
                res = x
                if p + ".downsample.1.weight" in t and t[p + ".downsample.1.weight"].ndim == 4:
                    src = x
                    if stride > 1:
                        src = self.same_scale("AveragePool", p + ".downsample.0", x, kernel_shape=[2, 2],
                                              strides=[2, 2], ceil_mode=1, count_include_pad=0)
                    res = self.conv(p + ".downsample.1", src, 1, "s8")
                elif p + ".downsample.0.weight" in t:
                    res = self.conv(p + ".downsample.0", x, stride, "s8")
                if bottleneck:
                    y = self.conv(p + ".conv1", x, stride if variant == "v1" else 1, "u8")
                    y = self.conv(p + ".conv2", y, 1 if variant == "v1" else stride, "u8")
                    last = p + ".conv3"
                else:
                    y = self.conv(p + ".conv1", x, stride, "u8")
                    last = p + ".conv2"
                y = self.conv(last, y, 1, None)
                if self.ch[y] != self.ch[res] or (res == x and stride != 1):
                    raise ExportError("%s: the block maps %d channels at stride %d to %d without a "
                                      "downsample" % (p, self.ch[x], stride, self.ch[y]))
                a = self.node("Add", p + ".add", [y, res], p + ".add")
                x = self.qdq(a, self.need(last + ".output_scale").astype(F32), np.uint8(0))
                self.ch[x] = self.ch[y]
            s += 1
        if s == 1:
            raise ExportError("layer1.0.conv1.weight: missing; not a ResNet")
        x = self.node("GlobalAveragePool", "avgpool", [x], "avgpool")
        x = self.node("Flatten", "flatten", [x], "flatten", axis=1)
        w = self.need("fc.weight").astype(F32)
        w = w.reshape(w.shape[0], -1)
        self.inits["fc.weight"] = w
        self.inits["fc.bias"] = self.need("fc.bias").astype(F32)
        self.node("Gemm", "fc", [x, "fc.weight", "fc.bias"], "logits", alpha=1.0, beta=1.0, transB=1)
        return w.shape[0]


def export(path):
    t, meta = load_safetensors(path)
    q = meta.get("resnet.quantization")
    if not q:
        raise ExportError("not an INT8 model (no resnet.quantization metadata): run resnet quantize first")
    try:
        qj = json.loads(q)
    except ValueError:
        raise ExportError("metadata resnet.quantization is not JSON: %r" % q)
    if qj.get("version") != 1:
        raise ExportError("resnet.quantization version %r, expected 1" % qj.get("version"))
    e = Exporter(t, meta)
    classes = e.v1()
    graph = helper.make_graph(
        e.nodes, "resnet_int8",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
        [numpy_helper.from_array(np.array(v, order="C"), k) for k, v in e.inits.items()])
    doc = "resnetd INT8 model as QDQ (docs/int8.md scales, u8/s8 zero point 0, image zero point 128); " \
          "quantization %s" % q
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                          producer_name="resnetd bench/peers/export_qdq.py", doc_string=doc)
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def main(argv):
    if len(argv) != 3 or argv[1].startswith("-"):
        sys.stderr.write("usage: export_qdq.py IN.int8.safetensors OUT.onnx\n")
        return 2
    try:
        m = export(argv[1])
    except (ExportError, OSError, ValueError) as e:
        sys.stderr.write("export_qdq.py: %s: %s\n" % (argv[1], e))
        return 1
    onnx.save(m, argv[2])
    count = {}
    for n in m.graph.node:
        count[n.op_type] = count.get(n.op_type, 0) + 1
    print("%s: wrote %s (%s)" % (argv[1], argv[2], ", ".join("%s %d" % kv for kv in sorted(count.items()))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
