#!/usr/bin/python3
"""The ONNX Runtime INT8 peer's model: a QDQ ONNX graph of one of our
safetensors ResNets, written as onnxruntime.quantization.quantize_static
writes it with its defaults and

    quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
    weight_type=QuantType.QInt8, per_channel=True,
    calibrate_method=CalibrationMethod.Percentile (or MinMax)

(U8S8 per-channel), after onnxruntime.quantization.preprocess (batch norm
folded into the convolutions). The onnxruntime Python package is not in
Debian, so the graph is built here with python3-onnx and numpy, and the
activation ranges come from the FP32 model run in PyTorch with forward hooks.

  /usr/bin/python3 bench/peers/make_qdq.py MODEL.safetensors OUT.onnx
      [--calib DIR|IMAGE ...] [--method percentile|minmax] [--percentile 99.999]
      [--fc int8|float] [--check [--eval DIR|IMAGE ...]]

What the graph holds, as quantize_static makes it:
  * the FP32 graph: Conv (batch norm folded, bias) -> Relu, Add -> Relu,
    MaxPool, GlobalAveragePool, Flatten, Gemm (transB=1); opset 13, dynamic
    batch axis, input "input" [N,3,224,224], output "logits".
  * activations: uint8, asymmetric: scale = (max - min) / 255 and zero point
    round(-min / scale), the range widened to hold 0. One QuantizeLinear ->
    DequantizeLinear pair per tensor, shared by its consumers: the graph
    input, every Conv output, both inputs and the output of every Add, the
    GlobalAveragePool output and the Gemm's input and output.
  * Relu is removed where it follows a Conv or an Add whose output it alone
    reads (quantize_static's "removable activation", the default unless
    QDQKeepRemovableActivations): the producer writes the Relu's output
    tensor, quantized with the Relu output's range (minimum 0, zero point 0),
    so the clamp at the zero point is the Relu.
  * MaxPool's output is quantized with its input's scale and zero point
    (QDQDirect8BitOp), so ONNX Runtime runs it on uint8 directly.
  * weights: int8 initializers, symmetric per output channel (axis 0):
    scale = max|w| / 127, zero point 0, values in [-127, 127], each read
    through a DequantizeLinear (axis 0); no QuantizeLinear on weights
    (AddQDQPairToWeight is off by default).
  * biases: int32 initializers, scale = input scale x weight scale (per
    channel), zero point 0, through a DequantizeLinear (axis 0).
  * Flatten is not an op quantize_static quantizes: it runs on float between
    the GlobalAveragePool's DequantizeLinear and the Gemm's QuantizeLinear
    (both with the same range, the values being the same).
  * The classifier: Gemm is in quantize_static's default op list for QDQ
    (QDQGemm), so by default it is quantized like a Conv: uint8 input, int8
    per-channel weight (axis 0, as transB=1), int32 bias, and its output, the
    logits, quantized to uint8 too (OpTypesToExcludeOutputQuantization is
    empty by default). --fc float leaves the Gemm, its input and its logits
    in float, as op_types_to_quantize without "Gemm" would.

Calibration (the tensors above, each over all images at once, as ONNX
Runtime's calibrators merge all batches before computing ranges):
  * percentile (quantize_static's PercentileCalibrater defaults): a histogram
    of |x| over 2048 bins between min |x| and max |x|; t = the lower edge of
    the bin where the cumulative share reaches 99.999%; the range is (-t, t)
    clipped to the tensor's (min, max).
  * minmax (MinMaxCalibrater): the tensor's (min, max).
The images are decoded and preprocessed as calib.py says (torchvision's eval
transform with the model's `resnet.preprocess`), one image per batch.

--check writes the FP32 graph too and runs both through ONNX Runtime
(bench/peers/ort_classify.js, in ort_session.js's session; needs `npm ci` in
bench/peers), on the --eval images (default: the calibration images), and
prints how often their top-1 class agrees with the PyTorch FP32 model's.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

import calib
import torch_model

HERE = os.path.dirname(os.path.abspath(__file__))
OPSET = 13
NUM_BINS = 2048


# --- the FP32 graph, batch norm folded -------------------------------------

class Graph:
    def __init__(self):
        self.nodes = []  # (op, name, inputs, outputs, attrs)
        self.inits = {}  # name -> np.ndarray
        self.input, self.output = "input", "logits"

    def node(self, op, name, inputs, output=None, **attrs):
        output = output or name
        self.nodes.append((op, name, list(inputs), [output], attrs))
        return output

    def conv(self, name, x, conv, bn):
        """Conv with bn folded in, named as the module; returns its output"""
        w = conv.weight.detach().double()
        scale = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)
        wf = (w * scale.reshape(-1, 1, 1, 1)).float().numpy()
        bf = (bn.bias.detach().double() - bn.running_mean.double() * scale).float().numpy()
        self.inits[name + ".weight"], self.inits[name + ".bias"] = wf, bf
        k = list(conv.kernel_size)
        pad = list(conv.padding) * 2
        return self.node("Conv", name, [x, name + ".weight", name + ".bias"],
                         kernel_shape=k, strides=list(conv.stride), pads=pad,
                         dilations=list(conv.dilation), group=conv.groups)


def build_fp32(model):
    """The Graph of a torchvision ResNet (eval), and the names of its tensors
    in the order the hooks of calibrate() see them."""
    g = Graph()
    x = g.conv("conv1", g.input, model.conv1, model.bn1)
    x = g.node("Relu", "relu", [x])
    mp = model.maxpool
    x = g.node("MaxPool", "maxpool", [x], kernel_shape=[mp.kernel_size] * 2,
               strides=[mp.stride] * 2, pads=[mp.padding] * 4)
    for li in range(1, 5):
        for bi, block in enumerate(getattr(model, "layer%d" % li)):
            b = "layer%d.%d" % (li, bi)
            convs = [(block.conv1, block.bn1), (block.conv2, block.bn2)]
            if hasattr(block, "conv3"):
                convs.append((block.conv3, block.bn3))
            y = x
            for i, (c, n) in enumerate(convs, 1):
                y = g.conv("%s.conv%d" % (b, i), y, c, n)
                if i < len(convs):
                    y = g.node("Relu", "%s.relu%d" % (b, i), [y])
            identity = x
            if block.downsample is not None:
                identity = g.conv(b + ".downsample", x, block.downsample[0], block.downsample[1])
            y = g.node("Add", b + ".add", [y, identity])
            x = g.node("Relu", b + ".relu", [y])
    x = g.node("GlobalAveragePool", "avgpool", [x])
    x = g.node("Flatten", "flatten", [x], axis=1)
    g.inits["fc.weight"] = model.fc.weight.detach().float().numpy()
    g.inits["fc.bias"] = model.fc.bias.detach().float().numpy()
    g.node("Gemm", "fc", [x, "fc.weight", "fc.bias"], output=g.output, alpha=1.0, beta=1.0,
           transB=1)
    return g


def to_onnx(g, nodes, inits, doc):
    graph = helper.make_graph(
        [helper.make_node(op, ins, outs, name=name, **attrs) for op, name, ins, outs, attrs in nodes],
        "resnet",
        [helper.make_tensor_value_info(g.input, TensorProto.FLOAT, ["batch", 3, 224, 224])],
        [helper.make_tensor_value_info(g.output, TensorProto.FLOAT, ["batch", None])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                          producer_name="resnetd bench/peers/make_qdq.py", doc_string=doc)
    onnx.checker.check_model(m)
    return m


# --- calibration -----------------------------------------------------------

def hooks(model, see):
    """Forward hooks calling see(tensor name, value) for every tensor of
    build_fp32's graph (Relu's in-place writes turned off first)."""
    for mod in model.modules():
        if isinstance(mod, torch.nn.ReLU):
            mod.inplace = False
    hs = [model.conv1.register_forward_pre_hook(lambda m, inp: see("input", inp[0])),
          model.bn1.register_forward_hook(lambda m, i, o: see("conv1", o)),
          model.relu.register_forward_hook(lambda m, i, o: see("relu", o)),
          model.maxpool.register_forward_hook(lambda m, i, o: see("maxpool", o)),
          model.avgpool.register_forward_hook(lambda m, i, o: see("avgpool", o)),
          model.avgpool.register_forward_hook(lambda m, i, o: see("flatten", torch.flatten(o, 1))),
          model.fc.register_forward_hook(lambda m, i, o: see("logits", o))]
    for li in range(1, 5):
        for bi, block in enumerate(getattr(model, "layer%d" % li)):
            b = "layer%d.%d" % (li, bi)
            n = 3 if hasattr(block, "conv3") else 2
            # the block's one ReLU module runs after each but the last conv,
            # then after the add: its input that last time is the add's output
            relus = ["%s.relu%d" % (b, i) for i in range(1, n)] + [b + ".relu"]
            calls = [0]

            def pre(m, inp, calls=calls):
                calls[0] = 0

            def relu(m, i, o, b=b, relus=relus, calls=calls):
                if calls[0] == len(relus) - 1:
                    see(b + ".add", i[0])
                see(relus[calls[0]], o)
                calls[0] += 1

            hs.append(block.register_forward_pre_hook(pre))
            hs.append(block.relu.register_forward_hook(relu))
            for i in range(1, n + 1):
                hs.append(getattr(block, "bn%d" % i).register_forward_hook(
                    lambda m, inp, o, name="%s.conv%d" % (b, i): see(name, o)))
            if block.downsample is not None:
                hs.append(block.downsample.register_forward_hook(
                    lambda m, inp, o, name=b + ".downsample": see(name, o)))
    return hs


def calibrate(model, images, method, percentile):
    """{tensor: (rmin, rmax)} over the images (float32 [N,3,H,W]), one image
    per forward, as ONNX Runtime's calibrators compute them."""
    stats = {}

    def minmax(name, t):
        a = t.detach().numpy()
        lo, hi = a.min(), a.max()
        alo, ahi = np.abs(a).min(), np.abs(a).max()
        if name in stats:
            s = stats[name]
            lo, hi, alo, ahi = min(s[0], lo), max(s[1], hi), min(s[2], alo), max(s[3], ahi)
        stats[name] = (lo, hi, alo, ahi)

    def run(see):
        hs = hooks(model, see)
        try:
            with torch.no_grad():
                for x in images:
                    model(torch.from_numpy(x[None]))
        finally:
            for h in hs:
                h.remove()

    run(minmax)
    if method == "minmax":
        return {k: (np.float32(s[0]), np.float32(s[1])) for k, s in stats.items()}
    # histograms of |x|, 2048 bins over (min |x|, max |x|) of all the images:
    # what np.histogram(all |x| at once, bins=2048) gives, as ONNX Runtime
    # computes it on the merged outputs of all batches
    hist = {}

    def histogram(name, t):
        a = np.abs(t.detach().numpy().ravel())
        _, _, alo, ahi = stats[name]
        h, edges = np.histogram(a, bins=NUM_BINS, range=(alo, ahi))
        hist[name] = (hist[name][0] + h, edges) if name in hist else (h, edges)

    run(histogram)
    ranges = {}
    for name, (h, edges) in hist.items():
        cdf = np.cumsum(h / h.sum())
        t = np.float32(edges[np.searchsorted(cdf, percentile / 100.0)])
        lo, hi = stats[name][0], stats[name][1]
        ranges[name] = (np.float32(max(-t, lo)), np.float32(min(t, hi)))
    return ranges


# --- quantization ----------------------------------------------------------

def act_params(rmin, rmax):
    """uint8 asymmetric (scale, zero point), as compute_scale_zp"""
    rmin, rmax = np.float32(min(rmin, 0)), np.float32(max(rmax, 0))
    scale = np.float32((rmax - rmin) / np.float32(255))
    if scale < np.finfo(np.float32).tiny:
        return np.float32(1), np.uint8(0)
    return scale, np.uint8(np.clip(np.round(np.float32(0) - rmin / scale), 0, 255))


def weight_per_channel(w):
    """int8 symmetric per output channel (axis 0): (q, scales)"""
    flat = w.reshape(w.shape[0], -1)
    absmax = np.maximum(np.abs(flat.min(1)), np.abs(flat.max(1))).astype(np.float32)
    scale = (np.float32(2) * absmax / np.float32(254)).astype(np.float32)
    scale[scale < np.finfo(np.float32).tiny] = 1
    q = np.clip(np.round(flat / scale[:, None]), -127, 127).astype(np.int8)
    return q.reshape(w.shape), scale


def quantize(g, ranges, fc_int8):
    """The QDQ nodes and initializers of Graph g, as quantize_static's QDQ
    quantizer writes them (see the top of this file)."""
    # [op, name, inputs, outputs, attrs], copied: g stays the FP32 graph
    nodes = [[op, name, list(ins), list(outs), dict(attrs)] for op, name, ins, outs, attrs in g.nodes]
    consumers = {}
    for n in nodes:
        for i in n[2]:
            consumers[i] = consumers.get(i, 0) + 1
    quant = {}  # tensor -> the tensor whose (scale, zero point) it takes
    weights, biases = [], {}  # biases: name -> (input, weight)
    removed = set()
    producer = {n[3][0]: n for n in nodes}
    for n in nodes:
        op, name, ins, outs = n[0], n[1], n[2], n[3]
        if op == "Conv" or (op == "Gemm" and fc_int8):
            quant.setdefault(ins[0], ins[0])
            quant.setdefault(outs[0], outs[0])
            weights.append(ins[1])
            if len(ins) > 2:
                biases[ins[2]] = (ins[0], ins[1])
        elif op == "Relu":
            up = ins[0]
            if (up in quant and consumers[up] == 1 and up != g.input and up != g.output
                    and outs[0] in ranges):
                # the removable activation: the producer writes the Relu's output
                producer[up][3][0] = outs[0]
                for m in nodes:
                    m[2] = [outs[0] if i == up else i for i in m[2]]
                del quant[up]
                removed.add(name)
            else:
                quant.setdefault(ins[0], ins[0])
            quant.setdefault(outs[0], outs[0])
        elif op in ("Add", "GlobalAveragePool"):
            for t in ins + outs:
                quant.setdefault(t, t)
        elif op == "MaxPool":
            if ins[0] in quant:
                quant.setdefault(outs[0], quant[ins[0]])
        # Flatten (and Gemm with --fc float): not quantized
    nodes = [n for n in nodes if n[1] not in removed]

    params = {}  # tensor -> (scale name, zero point name)
    inits = {}
    for t, src in quant.items():
        if src not in ranges:
            raise SystemExit("no calibrated range for %s" % src)
        if src not in params:
            s, z = act_params(*ranges[src])
            inits[src + "_scale"], inits[src + "_zero_point"] = np.array(s, np.float32), np.array(z)
            params[src] = (src + "_scale", src + "_zero_point")
        params[t] = params[src]
    out = []

    def qdq(t):
        """Q and DQ nodes of tensor t; its consumers read t_DequantizeLinear_Output"""
        s, z = params[t]
        q_in = t + "_QuantizeLinear_Input" if t == g.output else t
        out.append(("QuantizeLinear", t + "_QuantizeLinear", [q_in, s, z],
                    [t + "_QuantizeLinear_Output"], {}))
        dq_out = t if t == g.output else t + "_DequantizeLinear_Output"
        out.append(("DequantizeLinear", t + "_DequantizeLinear",
                    [t + "_QuantizeLinear_Output", s, z], [dq_out], {}))

    for name, w in g.inits.items():
        if name in weights:
            q, s = weight_per_channel(w)
            inits[name + "_quantized"] = q
            inits[name + "_scale"] = s
            inits[name + "_zero_point"] = np.zeros(s.shape, np.int8)
        elif name in biases:
            x, wname = biases[name]
            s = (inits[params[x][0]] * inits[wname + "_scale"]).astype(np.float32)
            q = np.clip(np.round(w / s), np.iinfo(np.int32).min, np.iinfo(np.int32).max)
            inits[name + "_quantized"] = q.astype(np.int32)
            inits[name + "_quantized_scale"] = s
            inits[name + "_quantized_zero_point"] = np.zeros(s.shape, np.int32)
        else:
            inits[name] = w

    def dq_init(name):
        base = name + "_quantized" if name in biases else name
        s, z = (base + "_scale", base + "_zero_point")
        src = name + "_quantized"
        out.append(("DequantizeLinear", base + "_DequantizeLinear", [src, s, z],
                    [base + "_DequantizeLinear_Output"], {"axis": 0}))
        return base + "_DequantizeLinear_Output"

    if g.input in quant:
        qdq(g.input)
    for op, name, ins, outs, attrs in nodes:
        new_ins = []
        for i in ins:
            if i in weights or i in biases:
                new_ins.append(dq_init(i))
            elif i in quant:
                new_ins.append(i + "_DequantizeLinear_Output")
            else:
                new_ins.append(i)
        o = outs[0]
        if o == g.output and o in quant:
            o = g.output + "_QuantizeLinear_Input"
        out.append((op, name, new_ins, [o], attrs))
        if outs[0] in quant:
            qdq(outs[0])
    return out, inits, removed


# --- the check ---------------------------------------------------------------

def run_ort(model_path, x, tmp, threads):
    xin, xout = os.path.join(tmp, "x.f32"), os.path.join(tmp, "y.f32")
    x.astype("<f4").tofile(xin)
    subprocess.run(["node", os.path.join(HERE, "ort_classify.js"), model_path, xin, xout,
                    str(threads)], check=True)
    return np.fromfile(xout, "<f4").reshape(x.shape[0], -1)


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def check(model, g, qdq_path, paths, pre, labels, threads):
    x = calib.batch(paths, pre)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        fp32_path = os.path.join(tmp, "fp32.onnx")
        onnx.save(to_onnx(g, g.nodes, g.inits, "FP32, batch norm folded"), fp32_path)
        fp32 = run_ort(fp32_path, x, tmp, threads)
        int8 = run_ort(qdq_path, x, tmp, threads)
    top = ref.argmax(1)
    name = (lambda i: labels[i] if labels else str(i))
    print("%-28s %-22s %-22s %-22s %6s" % ("image", "PyTorch FP32", "ORT FP32 (folded)",
                                          "ORT INT8 (QDQ)", "top-5"))
    p_ref, p_q = softmax(ref), softmax(int8)
    for k, p in enumerate(paths):
        t5r, t5q = set(np.argsort(-ref[k])[:5]), set(np.argsort(-int8[k])[:5])
        print("%-28s %-22s %-22s %-22s %4d/5" % (
            os.path.basename(p)[:28], "%s %.2f" % (name(top[k])[:16], p_ref[k, top[k]]),
            name(fp32[k].argmax())[:22],
            "%s %.2f" % (name(int8[k].argmax())[:16], p_q[k, int8[k].argmax()]), len(t5r & t5q)))
    n = len(paths)
    agree_fp32 = int((fp32.argmax(1) == top).sum())
    agree = int((int8.argmax(1) == top).sum())
    print("ONNX Runtime FP32 (folded graph) vs PyTorch FP32: top-1 %d/%d, max |logit diff| %.2g"
          % (agree_fp32, n, np.abs(fp32 - ref).max()))
    print("ONNX Runtime INT8 (QDQ) vs PyTorch FP32: top-1 agrees on %d/%d images, "
          "top-1 probability %.3f vs %.3f (mean), max |logit diff| %.2f"
          % (agree, n, p_q[np.arange(n), int8.argmax(1)].mean(), p_ref[np.arange(n), top].mean(),
             np.abs(int8 - ref).max()))
    for k in np.nonzero(int8.argmax(1) != top)[0]:
        print("  %s: FP32 gives %s %.3f, %s %.3f (its rank %d)" % (
            os.path.basename(paths[k]), name(top[k]), p_ref[k, top[k]], name(int8[k].argmax()),
            p_ref[k, int8[k].argmax()], 1 + int((ref[k] > ref[k, int8[k].argmax()]).sum())))
    return agree, n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("output")
    ap.add_argument("--calib", nargs="+", metavar="DIR|IMAGE",
                    help="calibration images (default: %s)" % " ".join(calib.DEFAULT_DIRS))
    ap.add_argument("--method", choices=("percentile", "minmax"), default="percentile")
    ap.add_argument("--percentile", type=float, default=99.999)
    ap.add_argument("--fc", choices=("int8", "float"), default="int8",
                    help="the classifier Gemm quantized (quantize_static's default) or float")
    ap.add_argument("--check", action="store_true",
                    help="compare top-1 with the FP32 model in ONNX Runtime (node)")
    ap.add_argument("--eval", nargs="+", metavar="DIR|IMAGE",
                    help="images of --check (default: the calibration images)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    arch, model = torch_model.load(a.model)
    _, meta = torch_model.read_safetensors(a.model)
    pre = calib.preprocess_of(meta)
    paths = calib.image_paths(a.calib)
    g = build_fp32(model)
    ranges = calibrate(model, calib.batch(paths, pre), a.method, a.percentile)
    nodes, inits, removed = quantize(g, ranges, a.fc == "int8")
    doc = ("%s, QDQ U8S8 per-channel as quantize_static writes it: %s calibration%s on %d images, "
           "classifier %s" % (arch, a.method, " %g" % a.percentile if a.method == "percentile" else "",
                              len(paths), "int8" if a.fc == "int8" else "float"))
    m = to_onnx(g, nodes, inits, doc)
    os.makedirs(os.path.dirname(os.path.abspath(a.output)), exist_ok=True)
    onnx.save(m, a.output)
    count = {}
    for n in m.graph.node:
        count[n.op_type] = count.get(n.op_type, 0) + 1
    print("%s: %s written to %s (%s; Relu removed: %d)" % (
        a.model, doc, a.output, ", ".join("%s %d" % kv for kv in sorted(count.items())), len(removed)))
    if a.check:
        import json
        labels = json.loads(meta["resnet.labels"]) if meta.get("resnet.labels") else None
        check(model, g, a.output, calib.image_paths(a.eval) if a.eval else paths, pre, labels,
              a.threads)


if __name__ == "__main__":
    sys.exit(main())
