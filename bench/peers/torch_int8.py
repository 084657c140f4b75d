#!/usr/bin/python3
"""PyTorch INT8 peer: one of our safetensors ResNets through PyTorch's FX
graph mode post-training static quantization, then timed like torch_bench.py
times the FP32 model.

  /usr/bin/python3 bench/peers/torch_int8.py quantize MODEL.safetensors OUT.pt
      [--calib DIR|IMAGE ...] [--check [--eval DIR|IMAGE ...]]
  /usr/bin/python3 bench/peers/torch_int8.py bench OUT.pt BATCH THREADS SECONDS
  /usr/bin/python3 bench/peers/torch_int8.py classify OUT.pt MODEL.safetensors IMAGE ...

quantize: the torchvision model of torch_model.py, prepare_fx with the
default QConfigMapping of the quantized engine (torch.ao.quantization,
native backend config: conv + batch norm + ReLU and add + ReLU fused), run
over the calibration images one at a time (calib.py: the images and the
preprocessing make_qdq.py calibrates the ONNX Runtime INT8 peer with),
convert_fx, TorchScript, frozen, saved with the engine's name. The engine is
'onednn' where this torch has it (torch.backends.quantized.supported_engines;
Debian's 1.13 has no fbgemm), else 'fbgemm', else 'x86'. Its default qconfig:
activations quint8 affine per tensor from a HistogramObserver (reduce_range
off for onednn, on for fbgemm), weights qint8 symmetric per output channel
from a PerChannelMinMaxObserver. --check prints how often the top-1 class of
the quantized model agrees with the FP32 model's on the --eval images
(default: the calibration images).

bench: loads OUT.pt (the engine set first), random NCHW 224x224 input of
BATCH images, THREADS intra-op threads, three warm-up runs, then runs for
SECONDS; prints one JSON line like resnet bench's (images_per_s,
ms_per_batch_median), with the engine.

classify: the quantized model's probabilities for every class of each image
(preprocessed by calib.py with MODEL's metadata), one JSON line per image in
the form of `resnet classify --json --topk 1000`: {"name", "predictions":
[{"index", "score"}, ...] best first}, so bench/int8_fidelity.py --torch
compares them with our float model like our INT8 models.
"""
import argparse
import json
import statistics
import sys
import time
import zipfile

import torch

ENGINES = ("onednn", "fbgemm", "x86")


def engine():
    for e in ENGINES:
        if e in torch.backends.quantized.supported_engines:
            return e
    raise SystemExit("this torch has no x86 quantized engine (%s)"
                     % ", ".join(torch.backends.quantized.supported_engines))


def quantize(a):
    import os

    import calib
    import torch_model
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.set_num_threads(a.threads)
    eng = engine()
    torch.backends.quantized.engine = eng
    arch, fp32 = torch_model.load(a.model)
    _, meta = torch_model.read_safetensors(a.model)
    pre = calib.preprocess_of(meta)
    paths = calib.image_paths(a.calib)
    x = torch.from_numpy(calib.batch(paths, pre))
    _, model = torch_model.load(a.model)  # prepare_fx changes it
    with torch.no_grad():
        prepared = prepare_fx(model, get_default_qconfig_mapping(eng), example_inputs=(x[:1],))
        for i in range(x.shape[0]):
            prepared(x[i:i + 1])
        q = convert_fx(prepared)
        m = torch.jit.freeze(torch.jit.script(q.eval()))
    os.makedirs(os.path.dirname(os.path.abspath(a.output)), exist_ok=True)
    torch.jit.save(m, a.output, _extra_files={"engine": eng})
    print("%s: %s quantized (FX post-training static, engine %s, calibrated on %d images) "
          "written to %s" % (a.model, arch, eng, len(paths), a.output))
    if a.check:
        if a.eval:
            paths = calib.image_paths(a.eval)
            x = torch.from_numpy(calib.batch(paths, pre))
        labels = json.loads(meta["resnet.labels"]) if meta.get("resnet.labels") else None
        name = (lambda i: labels[i] if labels else str(i))
        with torch.no_grad():
            ref, got = fp32(x), m(x)
        p_ref, p_q = torch.softmax(ref, 1), torch.softmax(got, 1)
        top, qtop = ref.argmax(1), got.argmax(1)
        for k, p in enumerate(paths):
            print("%-28s FP32 %-24s INT8 %-24s" % (
                os.path.basename(p)[:28], "%s %.2f" % (name(top[k])[:18], p_ref[k, top[k]]),
                "%s %.2f" % (name(qtop[k])[:18], p_q[k, qtop[k]])))
        print("PyTorch INT8 (%s) vs PyTorch FP32: top-1 agrees on %d/%d images, "
              "max |logit diff| %.2f" % (eng, int((top == qtop).sum()), len(paths),
                                         float((got - ref).abs().max())))


def load_quantized(path):
    """A model quantize() wrote, with the engine set first: the packed weights
    are repacked for it at load"""
    with zipfile.ZipFile(path) as z:
        eng = z.read(next(n for n in z.namelist() if n.endswith("/extra/engine"))).decode()
    torch.backends.quantized.engine = eng
    return eng, torch.jit.load(path)


def classify(a):
    import calib
    import torch_model

    torch.set_num_threads(a.threads)
    _, m = load_quantized(a.quantized)
    _, meta = torch_model.read_safetensors(a.model)
    pre = calib.preprocess_of(meta)
    with torch.no_grad():
        for p in a.images:
            prob = torch.softmax(m(torch.from_numpy(calib.batch([p], pre))), 1)[0].double()
            order = torch.argsort(prob, descending=True)
            print(json.dumps({"name": p, "predictions": [
                {"index": int(i), "score": round(float(prob[i]), 6)} for i in order]}))


def bench(a):
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)
    eng, m = load_quantized(a.model)
    x = torch.randn(a.batch, 3, 224, 224)
    with torch.no_grad():
        for _ in range(3):
            m(x)
        times = []
        start = time.perf_counter()
        while time.perf_counter() - start < a.seconds or len(times) < 3:
            t0 = time.perf_counter()
            m(x)
            times.append(time.perf_counter() - t0)
    total = sum(times)
    print(json.dumps({"engine": "pytorch %s int8 %s" % (torch.__version__, eng), "batch": a.batch,
                      "threads": a.threads, "images_per_s": a.batch * len(times) / total,
                      "ms_per_batch_median": 1000 * statistics.median(times)}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("quantize")
    q.add_argument("model")
    q.add_argument("output")
    q.add_argument("--calib", nargs="+", metavar="DIR|IMAGE")
    q.add_argument("--check", action="store_true")
    q.add_argument("--eval", nargs="+", metavar="DIR|IMAGE")
    q.add_argument("--threads", type=int, default=2)
    b = sub.add_parser("bench")
    b.add_argument("model")
    b.add_argument("batch", type=int)
    b.add_argument("threads", type=int)
    b.add_argument("seconds", type=float)
    c = sub.add_parser("classify")
    c.add_argument("quantized")
    c.add_argument("model")
    c.add_argument("images", nargs="+")
    c.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    {"quantize": quantize, "bench": bench, "classify": classify}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
