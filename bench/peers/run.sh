#!/usr/bin/env bash
# make bench-peers: resnet bench side by side with ONNX Runtime and PyTorch on
# the same weights, same thread count, batch 1 and 8, runs alternated (ours,
# ONNX Runtime, PyTorch, repeated BENCH_ROUNDS times) so that the noise of a
# shared machine falls on every engine alike; the median of the rounds, then
# the ratios ours / theirs.
#
# Beside each of our rows: the GFLOP/s achieved by the direct-convolution count
# (GFLOP per image from `resnet info --json`, gflops_224), and its fraction of
# the peak FP32 FMA throughput of the ISA the engine ran (build/peak, measured
# once before the rounds on the same thread count). Winograd convolutions do
# fewer multiplies than the direct count, so a fraction above 1 is possible.
# On a CPU with AVX-512, the engine also runs with RN_ISA=avx2 (rows
# ours-avx2), judged against the AVX2 peak (goal >= 0.9); and the default path
# against ONNX Runtime (goal ours/onnxruntime >= 1.25 at every batch).
# Without python3-torch (to export the ONNX file) ONNX Runtime is skipped.
#
# The INT8 peers run in the same rounds: onnxruntime-int8, ONNX Runtime on the
# QDQ model (U8S8, per-channel) bench/peers/make_qdq.py writes as ONNX
# Runtime's quantize_static would (needs python3-torch, python3-onnx and npm),
# and pytorch-int8, PyTorch's FX post-training static quantization
# (bench/peers/torch_int8.py, oneDNN where torch has it); both calibrated on
# BENCH_CALIB (folders or images; default calib.py's: darknet's photos), made
# once into bench/out/peers and remade when the model, the scripts or
# BENCH_CALIB change. Beside their rows: GMAC/s (img/s x half the GFLOP per
# image) and the fraction of the INT8 VPDPBUSD peak (build/peak).
# Our own INT8 row, ours-int8: the model resnet quantize makes from the same
# weights and calibration images (or BENCH_INT8_MODEL, run as resnet bench -m
# BENCH_INT8_MODEL $BENCH_INT8_ARGS), compared with the INT8 peers as ours is
# with the FP32 ones.
#
#   BUILD=build BENCH_MODEL=... BENCH_THREADS=2 BENCH_SECONDS=8 BENCH_ROUNDS=3 \
#   BENCH_BATCHES="1 8" BENCH_PEAK_SECONDS=0.5 BENCH_CALIB=... \
#   BENCH_INT8_MODEL=... BENCH_INT8_ARGS=... bench/peers/run.sh
#
# BENCH_SECONDS is whole seconds (resnet bench --seconds), at least 1.
#
# The model: models/resnet50.safetensors (the default model) if present, else
# random ResNet-50 weights from models/export_torchvision.py. It is exported to
# ONNX by bench/peers/export_onnx.py (Debian's python3-torch); ONNX Runtime is
# npm's onnxruntime-node, installed here with --ignore-scripts (the package
# ships its CPU binaries; the install script only fetches GPU ones).
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
THREADS=${BENCH_THREADS:-2}
SECS=${BENCH_SECONDS:-8}
ROUNDS=${BENCH_ROUNDS:-3}
BATCHES=${BENCH_BATCHES:-1 8}
PEAK_SECS=${BENCH_PEAK_SECONDS:-0.5}
OUT=bench/out/peers
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.err "$OUT"/*-rss.txt

MODEL=${BENCH_MODEL:-models/resnet50.safetensors}
if [ ! -f "$MODEL" ]; then
    MODEL=bench/out/resnet50-random.safetensors
    [ -f "$MODEL" ] || /usr/bin/python3 models/export_torchvision.py resnet50 --seed 0 -o "$MODEL"
fi
have_torch=1
/usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null || have_torch=0
have_ort=1
ONNX=$OUT/$(basename "$MODEL" .safetensors).onnx
if [ ! -f "$ONNX" ] || [ "$MODEL" -nt "$ONNX" ]; then
    if [ $have_torch = 1 ]; then
        /usr/bin/python3 bench/peers/export_onnx.py "$MODEL" "$ONNX"
    else
        echo "bench-peers: no python3-torch to export $ONNX: ONNX Runtime skipped" \
            "(scripts/install-deps.sh --dev)"
        have_ort=0
    fi
fi
if [ $have_ort = 1 ] && [ ! -f bench/peers/node_modules/onnxruntime-node/package.json ]; then
    (cd bench/peers && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) || {
        echo "bench-peers: npm ci failed: ONNX Runtime skipped"
        have_ort=0
    }
fi

# make bench-layers (BENCH_LAYERS=1): the time of every op, ours (resnet bench
# --layers) against ONNX Runtime's profiler (ort_layers.js), alternated,
# summed by stage and kind of op (layers.py); nothing else
if [ "${BENCH_LAYERS:-0}" = 1 ]; then
    [ $have_ort = 1 ] || { echo "bench-layers: no ONNX Runtime to compare with"; exit 1; }
    OUT=$OUT/layers
    mkdir -p "$OUT"
    rm -f "$OUT"/*.json "$OUT"/*.err
    echo "== $MODEL, $THREADS threads, ${SECS}s per run of ours, $ROUNDS rounds"
    for b in $BATCHES; do
        for r in $(seq 1 "$ROUNDS"); do
            "$BUILD/resnet" bench -m "$MODEL" --batch "$b" --threads "$THREADS" --seconds "$SECS" \
                --layers 2>"$OUT/ours-b$b-r$r.err" | tail -n 1 >"$OUT/ours-b$b-r$r.json"
            # about as many runs as ours gets in SECS (ResNet-50: ~20 ms per image)
            node bench/peers/ort_layers.js "$ONNX" "$b" "$THREADS" $((SECS * 50 / b + 3)) \
                2>"$OUT/ort-b$b-r$r.err" >"$OUT/ort-b$b-r$r.json"
        done
    done
    exec /usr/bin/python3 bench/peers/layers.py "$OUT" "$BATCHES" "$ROUNDS"
fi

# the INT8 peers' models, made once per model, scripts and calibration set (the
# arguments they were made with kept beside them, as FILE.args)
stale() { # FILE ARGS: whether FILE must be remade
    [ ! -f "$1" ] || [ "$(cat "$1.args" 2>/dev/null)" != "$2" ] || [ "$MODEL" -nt "$1" ] ||
        [ bench/peers/calib.py -nt "$1" ] || [ bench/peers/torch_model.py -nt "$1" ]
}
CALIB=(${BENCH_CALIB:-})
STEM=$OUT/$(basename "$MODEL" .safetensors)
QDQ=$STEM-qdq.onnx
TORCH_INT8=$STEM-int8-torch.pt
have_onnx=1
/usr/bin/python3 -c 'import onnx' 2>/dev/null || have_onnx=0
args="$MODEL ${CALIB[*]}"
have_ort_int8=$have_ort
if [ $have_ort = 0 ]; then
    echo "bench-peers: no ONNX Runtime: onnxruntime-int8 skipped"
elif stale "$QDQ" "$args" || [ bench/peers/make_qdq.py -nt "$QDQ" ]; then
    rm -f "$QDQ.args"
    if [ $have_torch = 0 ] || [ $have_onnx = 0 ]; then
        echo "bench-peers: no python3-torch or python3-onnx to write $QDQ:" \
            "onnxruntime-int8 skipped (scripts/install-deps.sh --dev)"
        have_ort_int8=0
    elif /usr/bin/python3 bench/peers/make_qdq.py "$MODEL" "$QDQ" ${CALIB[@]:+--calib "${CALIB[@]}"}; then
        echo "$args" >"$QDQ.args"
    else
        echo "bench-peers: make_qdq.py failed: onnxruntime-int8 skipped"
        have_ort_int8=0
    fi
fi
# torch_int8.py times PyTorch itself: no python3-torch, no row
have_torch_int8=$have_torch
if [ $have_torch = 0 ]; then
    echo "bench-peers: no python3-torch: pytorch-int8 skipped (scripts/install-deps.sh --dev)"
elif stale "$TORCH_INT8" "$args" || [ bench/peers/torch_int8.py -nt "$TORCH_INT8" ]; then
    rm -f "$TORCH_INT8.args"
    if /usr/bin/python3 bench/peers/torch_int8.py quantize "$MODEL" "$TORCH_INT8" \
        ${CALIB[@]:+--calib "${CALIB[@]}"}; then
        echo "$args" >"$TORCH_INT8.args"
    else
        echo "bench-peers: torch_int8.py quantize failed: pytorch-int8 skipped"
        have_torch_int8=0
    fi
fi
INT8_MODEL=${BENCH_INT8_MODEL:-}
INT8_ARGS=(${BENCH_INT8_ARGS:-})
if [ -n "$INT8_MODEL" ] && [ ! -f "$INT8_MODEL" ]; then
    echo "bench-peers: BENCH_INT8_MODEL=$INT8_MODEL: no such file: ours-int8 skipped"
    INT8_MODEL=
elif [ -z "$INT8_MODEL" ]; then
    # ours-int8: resnet quantize on the INT8 peers' calibration images (a
    # folder of links to calib.py's list), made again when they change
    INT8_MODEL=$STEM-int8.safetensors
    if stale "$INT8_MODEL" "$args" || [ "$BUILD/resnet" -nt "$INT8_MODEL" ]; then
        rm -rf "$OUT/calib" "$INT8_MODEL.args"
        mkdir -p "$OUT/calib"
        if /usr/bin/python3 -c 'import sys; sys.path.insert(0, "bench/peers"); import calib
print("\n".join(calib.image_paths(sys.argv[1:])))' ${CALIB[@]:+"${CALIB[@]}"} >"$OUT/calib.txt"; then
            i=0
            while read -r f; do
                ln -s "$(realpath "$f")" "$OUT/calib/$(printf %05d $i)-$(basename "$f")"
                i=$((i + 1))
            done <"$OUT/calib.txt"
        fi
        if "$BUILD/resnet" quantize -m "$MODEL" --calib "$OUT/calib" -o "$INT8_MODEL" 2>"$OUT/quantize.err"; then
            echo "$args" >"$INT8_MODEL.args"
        else
            echo "bench-peers: resnet quantize failed ($(tail -1 "$OUT/quantize.err")): ours-int8 skipped"
            INT8_MODEL=
        fi
    fi
fi

# engine batch round -> $OUT/ENGINE-bBATCH-rROUND.json (last JSON line of the run)
# and .err (its stderr: resnet's "kernels: ISA" line);
# round "rss": a 3 s run under /usr/bin/time, peak RSS into $OUT/ENGINE-rss.txt
run() {
    local engine=$1 b=$2 r=$3 f=$OUT/$1-b$2-r$3.json secs=$SECS pre=()
    if [ "$r" = rss ]; then
        secs=3
        pre=(/usr/bin/time -f %M -o "$OUT/$engine-rss.txt")
    fi
    case $engine in
    ours) "${pre[@]}" "$BUILD/resnet" bench -m "$MODEL" --batch "$b" --threads "$THREADS" \
        --seconds "$secs" ;;
    ours-bf16) "${pre[@]}" "$BUILD/resnet" bench -m "$MODEL" --batch "$b" --threads "$THREADS" \
        --seconds "$secs" --precision bf16 ;;
    ours-avx2) RN_ISA=avx2 "${pre[@]}" "$BUILD/resnet" bench -m "$MODEL" --batch "$b" \
        --threads "$THREADS" --seconds "$secs" ;;
    onnxruntime) "${pre[@]}" node bench/peers/ort_bench.js "$ONNX" "$b" "$THREADS" "$secs" ;;
    pytorch) "${pre[@]}" /usr/bin/python3 bench/peers/torch_bench.py "$MODEL" "$b" "$THREADS" "$secs" ;;
    ours-int8) "${pre[@]}" "$BUILD/resnet" bench -m "$INT8_MODEL" --batch "$b" --threads "$THREADS" \
        --seconds "$secs" ${INT8_ARGS[@]:+"${INT8_ARGS[@]}"} ;;
    onnxruntime-int8) "${pre[@]}" node bench/peers/ort_bench.js "$QDQ" "$b" "$THREADS" "$secs" ;;
    pytorch-int8) "${pre[@]}" /usr/bin/python3 bench/peers/torch_int8.py bench "$TORCH_INT8" "$b" \
        "$THREADS" "$secs" ;;
    esac 2>"${f%.json}.err" | tail -n 1 >"$f"
}

# ours-bf16 (RN_PRECISION_BF16) once resnet bench has --precision; ours-avx2 on
# a CPU with AVX-512, once the AVX2 kernel table is in (RN_ISA=avx2 accepted)
ENGINES=ours
"$BUILD/resnet" bench 2>&1 | grep -q -- --precision && ENGINES="$ENGINES ours-bf16"
if grep -qw avx512f /proc/cpuinfo; then
    if msg=$(RN_ISA=avx2 "$BUILD/resnet" bench -m "$MODEL" --batch 1 --threads "$THREADS" \
        --seconds 1 2>&1 >/dev/null); then
        ENGINES="$ENGINES ours-avx2"
    else
        echo "ours-avx2: skipped, RN_ISA=avx2 refused: $(grep -v 'OpenBLAS core' <<<"$msg" | tail -n 1)"
    fi
fi
[ -n "$INT8_MODEL" ] && ENGINES="$ENGINES ours-int8"
[ $have_ort = 1 ] && ENGINES="$ENGINES onnxruntime"
[ $have_torch = 1 ] && ENGINES="$ENGINES pytorch"
[ $have_ort_int8 = 1 ] && ENGINES="$ENGINES onnxruntime-int8"
[ $have_torch_int8 = 1 ] && ENGINES="$ENGINES pytorch-int8"

# the ceiling: peak FP32 FMA GFLOP/s per SIMD width on $THREADS threads, and
# the INT8 VPDPBUSD GMAC/s where the CPU has VNNI
if [ -x "$BUILD/peak" ]; then
    "$BUILD/peak" --threads "$THREADS" --seconds "$PEAK_SECS" | tee "$OUT/peak.txt" | tail -n 1 >"$OUT/peak.json"
    sed '$d' "$OUT/peak.txt"
else
    echo "bench-peers: no $BUILD/peak (make $BUILD/peak): no fractions of peak"
fi
"$BUILD/resnet" info "$MODEL" --json >"$OUT/info.json" 2>/dev/null || rm -f "$OUT/info.json"

echo "== $MODEL, $THREADS threads, ${SECS}s per run, $ROUNDS rounds, engines: $ENGINES"
for b in $BATCHES; do
    for r in $(seq 1 "$ROUNDS"); do
        for e in $ENGINES; do
            run "$e" "$b" "$r"
        done
    done
done

# peak RSS of each engine's process at batch 8: weights, activations and
# runtime (Node.js for ONNX Runtime, the Python interpreter for PyTorch)
if [ -x /usr/bin/time ]; then
    rm -f "$OUT"/*-rss.txt
    for e in $ENGINES; do
        run "$e" 8 rss
    done
fi

/usr/bin/python3 - "$OUT" "$ROUNDS" "$BATCHES" $ENGINES <<'PY'
import json, math, re, statistics, sys
out, rounds, batches, engines = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4:]
def load(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return None
def med(e, b, key):
    vals = [d[key] for r in range(1, rounds + 1)
            if (d := load(f"{out}/{e}-b{b}-r{r}.json")) and key in d]
    return statistics.median(vals) if vals else float("nan")
def isa(e, b):
    """the ISA resnet ran: the JSON's "isa", else its "kernels: ISA" line on stderr"""
    for r in range(1, rounds + 1):
        d = load(f"{out}/{e}-b{b}-r{r}.json")
        if d and d.get("isa"):
            return d["isa"]
        try:
            m = re.search(r"kernels: (\w+)", open(f"{out}/{e}-b{b}-r{r}.err").read())
        except OSError:
            m = None
        if m:
            return m.group(1)
    return "?"
info = load(f"{out}/info.json") or {}
gflop = info.get("gflops_224") or info.get("gflops")
if not gflop:
    gflop = 8.18  # ResNet-50 v1.5 at 224x224 by the direct count
    print(f"(no gflops_224 from resnet info --json: assuming {gflop} GFLOP/image)")
peak = load(f"{out}/peak.json") or {}
int8 = [e for e in engines if e.endswith("-int8")]
ours = [e for e in engines if e.startswith("ours") and e not in int8]
peers = [e for e in engines if not e.startswith("ours") and e not in int8]
ours8 = [e for e in int8 if e.startswith("ours")]
peers8 = [e for e in int8 if not e.startswith("ours")]
def frac(e, b):
    """(isa, GFLOP/s, peak GFLOP/s or None)"""
    i = isa(e, b)
    return i, med(e, b, "images_per_s") * gflop, peak.get(f"{i}_gflops")
# INT8: MACs per image (half the direct count's FLOPs) against build/peak's
# VPDPBUSD loops: ours-int8 against the one of the ISA it ran, a peer (whose
# kernels we do not know) against the fastest
gmac = gflop / 2
vnni = {k[:-len("_gmacs")]: v for k, v in peak.items() if k.endswith("_vnni_gmacs")}
def frac8(e, b):
    """(isa, GMAC/s, peak name or None, peak GMAC/s or None)"""
    i = isa(e, b) if e in ours8 else "int8"
    k = f"{i}_vnni" if f"{i}_vnni" in vnni else max(vnni, key=vnni.get, default=None)
    return i, med(e, b, "images_per_s") * gmac, k, vnni.get(k)
w = max([14] + [len(e) + 1 for e in engines])
print(f"{'engine':<{w}}{'batch':>6}{'img/s':>10}{'ms/batch':>11}   {'isa':<8}{'GFLOP/s':>8}{'of peak':>9}")
for b in batches:
    for e in engines:
        line = f"{e:<{w}}{b:>6}{med(e, b, 'images_per_s'):>10.2f}{med(e, b, 'ms_per_batch_median'):>11.1f}"
        if e in ours:
            i, g, p = frac(e, b)
            line += f"   {i:<8}{g:>8.1f}"
            if p:
                line += f"{g / p:>9.2f} of {i} {p:.0f}" + (" (FP32 FMA peak)" if e == "ours-bf16" else "")
        elif e in int8:
            i, g, k, p = frac8(e, b)
            line += f"   {i:<8}{g:>8.1f}"
            line += (f"{g / p:>9.2f} of {k} {p:.0f}" if p else " " * 9) + " (GMAC/s)"
        print(line)
print(f"GFLOP/s: img/s x {gflop:.2f} GFLOP/image (direct-convolution count, 224x224); "
      f"peak: build/peak on the same threads" + ("" if peak else " (not measured)"))
if int8:
    print(f"INT8 rows, GMAC/s: img/s x {gmac:.2f} GMAC/image (the same count); peak: build/peak's "
          + ("VPDPBUSD loop (GMAC/s)" if vnni else "VPDPBUSD loop, not measured (no VNNI)"))
if peers:
    for b in batches:
        print(f"batch {b}: " + ", ".join(
            f"{o}/{p} {med(o, b, 'images_per_s') / med(p, b, 'images_per_s'):.2f}"
            for o in ours for p in peers))
if ours8 and peers8:
    for b in batches:
        print(f"batch {b} INT8: " + ", ".join(
            f"{o}/{p} {med(o, b, 'images_per_s') / med(p, b, 'images_per_s'):.2f}"
            for o in ours8 for p in peers8))
pairs = [(p + "-int8", p) for p in peers if p + "-int8" in peers8]
if pairs:
    for b in batches:
        print(f"batch {b} INT8 over FP32: " + ", ".join(
            f"{q}/{p} {med(q, b, 'images_per_s') / med(p, b, 'images_per_s'):.2f}" for q, p in pairs))
if int8 and not ours8:
    print("ours-int8: not measured (BENCH_INT8_MODEL unset)")
def goal(what, vals, target):
    vals = [(b, v) for b, v in vals if not math.isnan(v)]
    if not vals:
        return
    print(f"goal {what} >= {target}: " + ", ".join(
        f"batch {b} {v:.2f} {'met' if v >= target else 'NOT met'}" for b, v in vals))
if "onnxruntime" in engines:
    goal("ours/onnxruntime", [(b, med("ours", b, "images_per_s") / med("onnxruntime", b, "images_per_s"))
                              for b in batches], 1.25)
else:
    print("goal ours/onnxruntime >= 1.25: not measured (no ONNX Runtime run)")
if "ours-avx2" in engines:
    goal("ours-avx2 of the avx2 peak", [(b, g / p) for b in batches
                                        for i, g, p in [frac("ours-avx2", b)] if p], 0.9)
rss = {}
for e in engines:
    try:
        rss[e] = int(open(f"{out}/{e}-rss.txt").read().split()[-1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
if rss:
    print("peak RSS at batch 8: " + ", ".join(f"{e} {v:.0f} MB" for e, v in rss.items()))
PY
