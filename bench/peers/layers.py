#!/usr/bin/python3
"""make bench-layers: where the time goes, ours against ONNX Runtime, op by op.

    layers.py OUT BATCHES ROUNDS

reads OUT/ours-bB-rR.json (resnet bench --layers) and OUT/ort-bB-rR.json
(bench/peers/ort_layers.js) and prints, per batch, one row per kind of op and
stage (the stem, layer1..., the head): convolutions by kernel, stride and
channels, pooling, the classifier. Each engine's figure is the median over the
rounds of its ms per image summed over the ops of that row; ours/ort above 1
means ours is slower there. Ops one engine has and the other fused away (ONNX
Runtime's layout reorders, say) get a row of their own.
"""
import json
import re
import statistics
import sys


def load(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return None


def stage_of(name, seen_layer):
    m = re.match(r"(layer\d+)", name or "")
    if m:
        return m.group(1)
    return "head" if seen_layer else "stem"


def ours_rows(d):
    """[(stage, kind, ms per image)] from resnet bench --layers"""
    rows, seen = [], False
    for op in d.get("layers", []):
        what = op["what"]
        if "(nothing" in what:  # a BF16 model's conversions, idle in FP32
            continue
        m = re.match(r"conv (\d+x\d+/\d+) (\d+->\d+)( groups \d+)?", what)
        if m:
            kind = f"conv {m.group(1)} {m.group(2)}{m.group(3) or ''}"
        elif what.startswith("maxpool"):
            kind = "maxpool"
        elif "average pool" in what or what.startswith("avgpool"):
            kind = "avgpool"
        elif what.startswith("fc"):
            kind = "fc"
        else:
            kind = what.split(" (")[0]
        st = stage_of(op["layer"], seen)
        seen = seen or st.startswith("layer")
        rows.append((st, kind, op["ms_per_batch"] / d["batch"]))
    return rows


def ort_rows(d):
    """[(stage, kind, ms per image)] from ort_layers.js"""
    rows, seen = [], False
    for n in d.get("nodes", []):
        op, ins, outs = n["op"], n["in"], n["out"]
        if op == "Conv" and len(ins) >= 2 and len(ins[1]) == 4 and outs and len(outs[0]) == 4:
            x, w, y = ins[0], ins[1], outs[0]
            s = max(1, round(x[2] / y[2]))
            g = x[1] // w[1] if w[1] else 1
            kind = f"conv {w[2]}x{w[3]}/{s} {x[1]}->{w[0]}" + (f" groups {g}" if g > 1 else "")
        elif op == "MaxPool":
            kind = "maxpool"
        elif op in ("GlobalAveragePool", "AveragePool"):
            kind = "avgpool"
        elif op in ("Gemm", "MatMul", "FusedGemm"):
            kind = "fc"
        else:
            kind = op.lower()
        m = re.search(r"/(layer\d+)/", n["name"])
        st = m.group(1) if m else ("head" if seen else "stem")
        seen = seen or bool(m)
        rows.append((st, kind, n["ms"] / d["batch"]))
    return rows


def summed(rows):
    """{(stage, kind): (count, ms)} in first-seen order"""
    out = {}
    for st, kind, ms in rows:
        c, t = out.get((st, kind), (0, 0.0))
        out[(st, kind)] = (c + 1, t + ms)
    return out


def main():
    out, batches, rounds = sys.argv[1], sys.argv[2].split(), int(sys.argv[3])
    for b in batches:
        ours = [summed(ours_rows(d)) for r in range(1, rounds + 1)
                if (d := load(f"{out}/ours-b{b}-r{r}.json"))]
        ort = [summed(ort_rows(d)) for r in range(1, rounds + 1)
               if (d := load(f"{out}/ort-b{b}-r{r}.json"))]
        if not ours:
            print(f"batch {b}: no resnet bench --layers result")
            continue
        keys = list(ours[0])
        for k in (ort[0] if ort else {}):
            if k not in keys:
                keys.append(k)
        med = lambda runs, k: statistics.median(r[k][1] for r in runs) if runs and k in runs[0] else None
        cnt = lambda runs, k: runs[0][k][0] if runs and k in runs[0] else 0
        print(f"batch {b}, ms per image (medians of {len(ours)} runs of ours, {len(ort)} of ONNX Runtime)")
        print(f"{'stage':<8}{'op':<30}{'n':>3}{'ours':>9}{'ort':>9}{'ours/ort':>10}")
        tot_o = tot_r = 0.0
        for k in keys:
            o, r = med(ours, k), med(ort, k)
            if (o or 0) < 0.0005 and (r or 0) < 0.0005:
                continue
            tot_o += o or 0
            tot_r += r or 0
            n = max(cnt(ours, k), cnt(ort, k))
            fo = f"{o:9.3f}" if o is not None else f"{'-':>9}"
            fr = f"{r:9.3f}" if r is not None else f"{'-':>9}"
            ratio = f"{o / r:10.2f}" if o and r else ""
            print(f"{k[0]:<8}{k[1]:<30}{n:>3}{fo}{fr}{ratio}")
        ratio = f"{tot_o / tot_r:10.2f}" if tot_o and tot_r else ""
        print(f"{'total':<41}{tot_o:9.3f}{tot_r:9.3f}{ratio}")
        print()


if __name__ == "__main__":
    main()
