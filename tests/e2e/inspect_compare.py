#!/usr/bin/python3
"""Compare an inspection reply (resnet inspect --json, POST /v1/inspect)
with the PyTorch reference of tests/fixtures/inspect/make_inspect_fixtures.py.

    inspect_compare.py GOT.json REFERENCE.json PHOTO-NAME WHAT

Prints TAP lines: the top-5 classes and probabilities, every block's norms,
ratios and cosines and its lesion (within 1e-3 relative; KL within 1e-3
absolute), the top-1 class activation map (within 1e-4 of its largest
magnitude) and its hottest cell. Standard library only.
"""
import json
import math
import sys

got_path, ref_path, photo, what = sys.argv[1:5]
ref = json.load(open(ref_path))[photo]
failed = 0


def say(good, msg):
    global failed
    print(("ok - " if good else "not ok - ") + f"{what}: {msg}")
    failed |= not good


try:
    got = json.load(open(got_path))
except ValueError as e:
    say(False, f"the reply is not JSON ({e})")
    sys.exit(1)


def near(a, b, rel=1e-3, tol=1e-6):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= rel * abs(b) + tol


preds = got.get("predictions", [])
say([p["index"] for p in preds] == ref["top5"] and
    all(near(p["score"], s) for p, s in zip(preds, ref["probs"])),
    "top-5 %s with probabilities within 1e-3 of PyTorch's %s" %
    ([p["index"] for p in preds], ref["top5"]))

FIELDS = ["x_norm", "s_norm", "f_norm", "y_norm", "f_over_s", "f_over_x", "cos_sf", "cos_xy"]
blocks = got.get("blocks", [])
say([b["name"] for b in blocks] == [b["name"] for b in ref["blocks"]],
    f"{len(blocks)} blocks by their PyTorch names")
worst, bad = {}, []
for g, r in zip(blocks, ref["blocks"]):
    pairs = [(k, g[k], r[k], 1e-3, 1e-7) for k in FIELDS]
    les = g.get("lesion") or {}
    pairs += [("lesion.top1.score", les.get("top1", {}).get("score"), r["lesion_top1_prob"], 1e-3, 1e-6),
              ("lesion.orig_score", les.get("orig_score"), r["lesion_orig_prob"], 1e-3, 1e-6),
              ("lesion.embed_cos", les.get("embed_cos"), r["lesion_embed_cos"], 1e-3, 1e-7),
              ("lesion.kl", les.get("kl"), r["lesion_kl"], 0, 1e-3)]
    for k, a, b, rel, tol in pairs:
        if not near(a, b, rel, tol):
            bad.append(f"{g['name']} {k} {a} (PyTorch {b})")
        elif a is not None and b:
            worst[k] = max(worst.get(k, 0), abs(a - b) / (abs(b) if rel else 1))
    lt = les.get("top1", {}).get("index")
    if lt != r["lesion_top1"] and abs(les.get("top1", {}).get("score", 0) - r["lesion_top1_prob"]) > 1e-3:
        bad.append(f"{g['name']} lesioned top-1 {lt} (PyTorch {r['lesion_top1']})")
say(not bad, "every block's measurements and lesion match PyTorch" +
    (": " + "; ".join(bad[:4]) if bad else " (largest differences: " +
     ", ".join(f"{k} {v:.1e}" for k, v in sorted(worst.items())) + ")"))

cams = got.get("cam", {}).get("classes", [])
rc = ref["cam"]
if not cams or cams[0]["index"] != rc["class"]:
    say(False, "the first class activation map is the top-1's")
else:
    g, r = cams[0]["grid"], rc["grid"]
    mx = max(abs(v) for v in r)
    md = max(abs(a - b) for a, b in zip(g, r)) if len(g) == len(r) else math.inf
    say(got["cam"]["height"] == rc["h"] and got["cam"]["width"] == rc["w"] and md <= 1e-4 * mx,
        f"the top-1 CAM ({rc['h']}x{rc['w']}) within 1e-4 of PyTorch's (max |diff| {md:.2g}, "
        f"max |CAM| {mx:.3g})")
    say(g.index(max(g)) == r.index(max(r)),
        f"the CAM's hottest cell is PyTorch's ({g.index(max(g))})")
sys.exit(failed)
