#!/usr/bin/env bash
# make bench-peers: resnet bench side by side with ONNX Runtime and PyTorch on
# the same weights, same thread count, batch 1 and 8, runs alternated (ours,
# ONNX Runtime, PyTorch, repeated BENCH_ROUNDS times) so that the noise of a
# shared machine falls on every engine alike; the median of the rounds, then
# the ratios ours / theirs.
#
#   BUILD=build BENCH_MODEL=... BENCH_THREADS=2 BENCH_SECONDS=8 BENCH_ROUNDS=3 \
#   BENCH_BATCHES="1 8" bench/peers/run.sh
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
OUT=bench/out/peers
mkdir -p "$OUT"

MODEL=${BENCH_MODEL:-models/resnet50.safetensors}
if [ ! -f "$MODEL" ]; then
    MODEL=bench/out/resnet50-random.safetensors
    [ -f "$MODEL" ] || /usr/bin/python3 models/export_torchvision.py resnet50 --seed 0 -o "$MODEL"
fi
ONNX=$OUT/$(basename "$MODEL" .safetensors).onnx
if [ ! -f "$ONNX" ] || [ "$MODEL" -nt "$ONNX" ]; then
    /usr/bin/python3 bench/peers/export_onnx.py "$MODEL" "$ONNX"
fi
if [ ! -f bench/peers/node_modules/onnxruntime-node/package.json ]; then
    (cd bench/peers && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

have_torch=1
/usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null || have_torch=0

# engine batch round -> $OUT/ENGINE-bBATCH-rROUND.json (last JSON line of the run);
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
    onnxruntime) "${pre[@]}" node bench/peers/ort_bench.js "$ONNX" "$b" "$THREADS" "$secs" ;;
    pytorch) "${pre[@]}" /usr/bin/python3 bench/peers/torch_bench.py "$MODEL" "$b" "$THREADS" "$secs" ;;
    esac 2>/dev/null | tail -n 1 >"$f"
}

# ours-bf16 (RN_PRECISION_BF16) once resnet bench has --precision
ENGINES=ours
"$BUILD/resnet" bench 2>&1 | grep -q -- --precision && ENGINES="$ENGINES ours-bf16"
ENGINES="$ENGINES onnxruntime"
[ $have_torch = 1 ] && ENGINES="$ENGINES pytorch"
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
import json, statistics, sys
out, rounds, batches, engines = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4:]
def med(e, b, key):
    vals = []
    for r in range(1, rounds + 1):
        try:
            vals.append(json.load(open(f"{out}/{e}-b{b}-r{r}.json"))[key])
        except (OSError, ValueError, KeyError):
            pass
    return statistics.median(vals) if vals else float("nan")
ours = [e for e in engines if e.startswith("ours")]
peers = [e for e in engines if not e.startswith("ours")]
print(f"{'engine':<14}{'batch':>6}{'img/s':>10}{'ms/batch':>11}")
for b in batches:
    for e in engines:
        print(f"{e:<14}{b:>6}{med(e, b, 'images_per_s'):>10.2f}{med(e, b, 'ms_per_batch_median'):>11.1f}")
for b in batches:
    print(f"batch {b}: " + ", ".join(
        f"{o}/{p} {med(o, b, 'images_per_s') / med(p, b, 'images_per_s'):.2f}"
        for o in ours for p in peers))
rss = {}
for e in engines:
    try:
        rss[e] = int(open(f"{out}/{e}-rss.txt").read().split()[-1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
if rss:
    print("peak RSS at batch 8: " + ", ".join(f"{e} {v:.0f} MB" for e, v in rss.items()))
PY
