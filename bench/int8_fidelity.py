#!/usr/bin/python3
"""How closely an INT8 model made by `resnet quantize` follows its float model,
per calibration method and calibration set size, on photos it was not
calibrated on; and (--ort) how closely ONNX Runtime, running the QDQ export of
the same INT8 file (bench/peers/export_qdq.py), follows our INT8 engine.

  scripts/fetch-photos.sh                        # the photos (Debian packages)
  /usr/bin/python3 bench/int8_fidelity.py [--photos DIR] [--model M]
      [--config METHOD[:PERCENTILE][@SIZE] ...] [--ort [CONFIG]] [--torch [SIZE]]
      [--quantize-arg ARG ...]

The photos (default models/cache/photos/all) are split in two halves by
source photo (a test image's variants -- tests--dog_*.jpg -- go with the photo
they were made from, darknet--dog.jpg), alternately in name order. For each
configuration, half A calibrates a model that classifies half B and half B
one that classifies half A, so every photo is judged by a model that never saw
it; SIZE calibration photos (evenly spaced through the half, or all of it) are
linked into a folder for `resnet quantize --calib`.

Per configuration it prints: top-1 agreement with the float model
(`resnet classify`, same decoding and preprocessing), the mean overlap of
the two top-5 sets, the agreement on the photos where the float model's
first class leads its second by 0.05 or more (probabilities), the mean
KL divergence of the INT8 model's probabilities from the float model's (all
1000 classes, as classify prints them: less is closer), and (--misses) each photo
whose top-1 changed with the float model's margin. Models are kept in
bench/out/int8_fidelity/ and reused while the model file, the resnet binary
and the options are the same.

--ort: for CONFIG (default: the first --config), the INT8 models of both
halves are exported to QDQ ONNX and run by ONNX Runtime (npm's
onnxruntime-node in bench/peers, `npm ci --ignore-scripts` there) on the
photos preprocessed by bench/peers/calib.py (PIL + torchvision, which our
preprocessing matches); `resnet infer` runs our INT8 model on the same
tensors. Prints top-1 agreement ours vs ONNX Runtime and the largest
|logit difference|.

--torch: the same halves and measures for PyTorch's own INT8
(bench/peers/torch_int8.py: FX post-training static quantization, oneDNN,
HistogramObserver activations, per-channel weights), calibrated on SIZE photos
of one half (default all) and compared with our float model on the other:
what a peer's post-training quantization keeps of the same model on the same
photos, beside ours.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
PEERS = os.path.join(ROOT, "bench", "peers")
EXTS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")
SURE = 0.05


def run(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if r.returncode:
        sys.exit("%s failed (%d): %s" % (" ".join(cmd[:3]), r.returncode, r.stderr[-2000:]))
    return r.stdout


def group_of(name):
    """The source photo of a file of the set: tests--dog_tiny.jpg -> darknet--dog"""
    base = os.path.splitext(name)[0]
    if base.startswith("tests--"):
        return "darknet--" + base[len("tests--"):].split("_")[0]
    return base


def halves(photos):
    groups = sorted({group_of(os.path.basename(p)) for p in photos})
    side = {g: i % 2 for i, g in enumerate(groups)}
    return [[p for p in photos if side[group_of(os.path.basename(p))] == h] for h in (0, 1)]


def parse_config(s):
    """METHOD[:PERCENTILE][@SIZE] -> (method, percentile or None, size or None=all)"""
    size = None
    if "@" in s:
        s, sz = s.split("@")
        size = None if sz == "all" else int(sz)
    method, _, pct = s.partition(":")
    if method not in ("percentile", "minmax", "mse"):
        sys.exit("--config %s: method percentile, minmax or mse" % s)
    return method, (float(pct) if pct else (99.999 if method == "percentile" else None)), size


def config_name(c):
    m, p, n = c
    return "%s%s@%s" % (m, ":%g" % p if p is not None else "", n if n else "all")


def classify(resnet, model, photos, threads, topk=1000):
    """{photo: [(class, probability)] best first}: every class (for the KL
    divergence), probabilities as classify prints them (6 decimals)"""
    out = run([resnet, "classify", "-m", model, "--topk", str(topk), "--json", "--threads",
               str(threads)] + photos)
    res = {}
    for line in out.splitlines():
        r = json.loads(line)
        if "predictions" in r:
            res[r["name"]] = [(p["index"], p["score"]) for p in r["predictions"]]
    missing = [p for p in photos if p not in res]
    if missing:
        sys.exit("%s: no predictions for %s" % (model, ", ".join(missing[:5])))
    return res


def kl(f, g):
    """KL(p || q) of two classify results, probabilities floored at 1e-6"""
    p, q = dict(f), dict(g)
    return sum(pv * np.log(pv / max(q.get(k, 0.0), 1e-6)) for k, pv in p.items() if pv > 0)


def calib_subset(half, size):
    if not size or size >= len(half):
        return list(half)
    return [half[(k * len(half)) // size] for k in range(size)]


def quantize(a, c, h, calib, out_dir, extra):
    method, pct, size = c
    key = hashlib.sha1(json.dumps([os.path.realpath(a.model), os.path.getmtime(a.model),
                                   os.path.getmtime(a.resnet), calib, method,
                                   pct, extra]).encode()).hexdigest()[:12]
    path = os.path.join(out_dir, "%s.%s.half%d.%s.safetensors" % (
        os.path.basename(a.model).split(".")[0], config_name(c).replace(":", "p"), h, key))
    if os.path.exists(path):
        return path
    d = os.path.join(out_dir, "calib-%s" % key)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    for k, p in enumerate(calib):  # numbered: resnet quantize takes them in name order
        os.symlink(os.path.realpath(p), os.path.join(d, "%04d-%s" % (k, os.path.basename(p))))
    cmd = [a.resnet, "quantize", "-m", a.model, "--calib", d, "-o", path + ".tmp", "--method", method,
           "--images", str(len(calib)), "--threads", str(a.threads)] + extra
    if pct is not None:
        cmd += ["--percentile", "%g" % pct]
    run(cmd)
    os.rename(path + ".tmp", path)
    return path


def measure(a, c, sets, fp32, out_dir, extra):
    rows = []  # (photo, same top-1, top-5 overlap, fp32 margin, int8 top-1, KL(fp32 || int8))
    models = []
    for h in (0, 1):
        calib = calib_subset(sets[h], c[2])
        model = quantize(a, c, h, calib, out_dir, extra)
        models.append(model)
        other = sets[1 - h]
        q = classify(a.resnet, model, other, a.threads)
        for p in other:
            f, g = fp32[p], q[p]
            rows.append((p, f[0][0] == g[0][0], len({i for i, _ in f[:5]} & {i for i, _ in g[:5]}) / 5.0,
                         f[0][1] - f[1][1], g[0][0], kl(f, g)))
    return rows, models


def report(name, rows, labels):
    n = len(rows)
    agree = sum(r[1] for r in rows)
    sure = [r for r in rows if r[3] >= SURE]
    line = ("%-24s top-1 %3d/%d (%5.1f%%)  top-5 overlap %.3f  sure (margin >= %.2f) %d/%d  "
            "mean KL %.4f" % (name, agree, n, 100.0 * agree / n, sum(r[2] for r in rows) / n, SURE,
                              sum(r[1] for r in sure), len(sure), sum(r[5] for r in rows) / n))
    misses = ["%s (margin %.3f, now %s)" % (os.path.basename(r[0]), r[3], labels[r[4]] if labels else r[4])
              for r in sorted(rows, key=lambda r: r[3]) if not r[1]]
    return line, misses


def ort_compare(a, models, sets, c):
    sys.path.insert(0, PEERS)
    import calib as calibmod  # bench/peers/calib.py: PIL + torchvision preprocessing
    if not os.path.isdir(os.path.join(PEERS, "node_modules", "onnxruntime-node")):
        run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=PEERS)
    with open(a.model, "rb") as f:
        meta = json.loads(f.read(int.from_bytes(f.read(8), "little"))).get("__metadata__", {})
    pre = calibmod.preprocess_of(meta)
    crop = pre["crop"]
    tmp = os.path.join(a.out, "ort")
    os.makedirs(tmp, exist_ok=True)
    agree = total = same_cls = 0
    worst = 0.0
    misses = []
    for h in (0, 1):
        onnx_path = os.path.join(tmp, os.path.basename(models[h])[:-len(".safetensors")] + ".onnx")
        if not os.path.exists(onnx_path):
            run([sys.executable, os.path.join(PEERS, "export_qdq.py"), models[h], onnx_path])
        photos = sets[1 - h]
        x = calibmod.batch(photos, pre)
        xin = os.path.join(tmp, "x%d.f32" % h)
        x.astype("<f4").tofile(xin)
        ours_out, ort_out = os.path.join(tmp, "ours%d.f32" % h), os.path.join(tmp, "ort%d.f32" % h)
        run([a.resnet, "infer", "-m", models[h], "--input", xin, "--batch", str(len(photos)), "--size",
             str(crop), "--output", ours_out, "--threads", str(a.threads)])
        run(["node", os.path.join(PEERS, "ort_classify.js"), onnx_path, xin, ort_out, str(a.threads),
             "%dx%d" % (crop, crop)])
        ours = np.fromfile(ours_out, "<f4").reshape(len(photos), -1)
        ort = np.fromfile(ort_out, "<f4").reshape(len(photos), -1)
        # the tensors are our classify's: infer on them gives classify's top-1
        q = classify(a.resnet, models[h], photos, a.threads, 1)
        same_cls += sum(int(ours[k].argmax()) == q[p][0][0] for k, p in enumerate(photos))
        total += len(photos)
        agree += int((ours.argmax(1) == ort.argmax(1)).sum())
        worst = max(worst, float(np.abs(ours - ort).max()))
        for k in np.nonzero(ours.argmax(1) != ort.argmax(1))[0]:
            s = np.sort(ours[k])[::-1]
            misses.append("%s (our logit margin %.3f)" % (os.path.basename(photos[k]), s[0] - s[1]))
    print("\nONNX Runtime on the QDQ export of %s vs our INT8 engine, same tensors (%d photos):"
          % (config_name(c), total))
    print("  top-1 agreement %d/%d (%.1f%%), max |logit diff| %.4g; resnet infer on calib.py's tensors "
          "= resnet classify's top-1 on %d/%d" % (agree, total, 100.0 * agree / total, worst, same_cls,
                                                   total))
    for m in misses:
        print("    differs:", m)


def torch_measure(a, size, sets, fp32):
    rows = []
    script = os.path.join(PEERS, "torch_int8.py")
    for h in (0, 1):
        calib = calib_subset(sets[h], size)
        key = hashlib.sha1(json.dumps([os.path.realpath(a.model), os.path.getmtime(a.model),
                                       os.path.getmtime(script), calib]).encode()).hexdigest()[:12]
        pt = os.path.join(a.out, "torch-int8.half%d.%s.pt" % (h, key))
        if not os.path.exists(pt):
            run([sys.executable, script, "quantize", a.model, pt + ".tmp", "--threads", str(a.threads),
                 "--calib"] + calib)
            os.rename(pt + ".tmp", pt)
        out = run([sys.executable, script, "classify", pt, a.model, "--threads", str(a.threads)]
                  + sets[1 - h])
        q = {}
        for line in out.splitlines():
            r = json.loads(line)
            q[r["name"]] = [(p["index"], p["score"]) for p in r["predictions"]]
        for p in sets[1 - h]:
            f, g = fp32[p], q[p]
            rows.append((p, f[0][0] == g[0][0], len({i for i, _ in f[:5]} & {i for i, _ in g[:5]}) / 5.0,
                         f[0][1] - f[1][1], g[0][0], kl(f, g)))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", default=os.path.join(ROOT, "models", "cache", "photos", "all"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "resnet50.safetensors"))
    ap.add_argument("--resnet", default=os.path.join(ROOT, os.environ.get("BUILD", "build"), "resnet"))
    ap.add_argument("--config", nargs="+", default=["percentile:99.999@all"],
                    help="METHOD[:PERCENTILE][@SIZE|@all] ...")
    ap.add_argument("--quantize-arg", action="append", default=[],
                    help="passed to resnet quantize (e.g. --quantize-arg=--bias-correction)")
    ap.add_argument("--ort", nargs="?", const="", default=None, metavar="CONFIG")
    ap.add_argument("--torch", nargs="?", const="all", default=None, metavar="SIZE")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "out", "int8_fidelity"))
    ap.add_argument("--misses", action="store_true", help="list every photo whose top-1 changed")
    a = ap.parse_args()
    if not os.path.isdir(a.photos):
        sys.exit("%s: no such folder (scripts/fetch-photos.sh makes it)" % a.photos)
    photos = sorted(os.path.join(a.photos, f) for f in os.listdir(a.photos) if f.lower().endswith(EXTS))
    sets = halves(photos)
    os.makedirs(a.out, exist_ok=True)
    labels = None
    fp32 = classify(a.resnet, a.model, photos, a.threads)
    sure = sum(fp32[p][0][1] - fp32[p][1][1] >= SURE for p in photos)
    print("%d photos of %s in halves of %d and %d; the float model's margin is >= %.2f on %d; "
          "quantize options: %s" % (len(photos), a.photos, len(sets[0]), len(sets[1]), SURE, sure,
                                    " ".join(a.quantize_arg) or "(none)"))
    configs = [parse_config(s) for s in a.config]
    kept = {}
    for c in configs:
        rows, models = measure(a, c, sets, fp32, a.out, a.quantize_arg)
        kept[config_name(c)] = models
        line, misses = report(config_name(c), rows, labels)
        print(line, flush=True)
        if a.misses:
            for m in misses:
                print("    changed:", m)
    if a.torch is not None:
        size = None if a.torch == "all" else int(a.torch)
        line, misses = report("pytorch-fx@%s" % a.torch, torch_measure(a, size, sets, fp32), labels)
        print(line, flush=True)
        if a.misses:
            for m in misses:
                print("    changed:", m)
    if a.ort is not None:
        c = parse_config(a.ort) if a.ort else configs[0]
        models = kept.get(config_name(c)) or measure(a, c, sets, fp32, a.out, a.quantize_arg)[1]
        ort_compare(a, models, sets, c)


if __name__ == "__main__":
    main()
