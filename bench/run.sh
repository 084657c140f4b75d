#!/usr/bin/env bash
# make bench: the engine on a full-size ResNet-50 at batch 1 and 8 with 2
# threads: the default path (AVX-512 direct kernels where the CPU has them),
# the portable im2col + OpenBLAS path with the kernels libresnet selects, and
# the same with OpenBLAS's generic kernels, side by side (runs alternated);
# peak RSS at batch 8; the peak FP32 FMA throughput of the machine (build/peak)
# and what each kernel table's tiles reach alone (build/bench-tiles), and
# ResNet-50's INT8 convolutions one by one (build/bench-qlayers);
# then the other benchmarks under bench/ that exist (image pipeline, HTTP load).
#
# The model: models/resnet50.safetensors (the default model, `make model`) if
# present, else random ResNet-50 weights from models/export_torchvision.py
# (needs Debian's python3-torch: scripts/install-deps.sh --dev).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SECONDS_PER_RUN=${BENCH_SECONDS:-10}
THREADS=${BENCH_THREADS:-2}
OUT=bench/out
mkdir -p "$OUT"

MODEL=${BENCH_MODEL:-models/resnet50.safetensors}
if [ ! -f "$MODEL" ]; then
    MODEL=$OUT/resnet50-random.safetensors
    if [ ! -f "$MODEL" ]; then
        /usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null || {
            echo "bench: no models/resnet50.safetensors and no python3-torch to make a random ResNet-50;" >&2
            echo "       run 'make model' or 'scripts/install-deps.sh --dev'" >&2
            exit 1
        }
        /usr/bin/python3 models/export_torchvision.py resnet50 --seed 0 -o "$MODEL"
    fi
fi

run() { # label env batch
    local label=$1 envs=$2 batch=$3 line
    line=$(env $envs "$BUILD/resnet" bench -m "$MODEL" --batch "$batch" --threads "$THREADS" \
        --seconds "$SECONDS_PER_RUN" 2>/dev/null | tail -n 1)
    printf '%-22s batch %-2s %s\n' "$label" "$batch" "$line"
    echo "$line" >"$OUT/engine-$label-b$batch.json"
}

echo "== engine: $MODEL, $THREADS threads, ${SECONDS_PER_RUN}s per run"
for b in 1 8; do
    run default "" "$b"
    run openblas "RN_ISA=blas" "$b"
    run openblas-generic "RN_ISA=blas OPENBLAS_CORETYPE=Prescott" "$b"
done
/usr/bin/python3 - "$OUT" <<'PY'
import json, sys, glob
out = sys.argv[1]
for b in (1, 8):
    d = json.load(open(f"{out}/engine-default-b{b}.json"))
    o = json.load(open(f"{out}/engine-openblas-b{b}.json"))
    g = json.load(open(f"{out}/engine-openblas-generic-b{b}.json"))
    print(f"batch {b}: default {d['images_per_s']:.2f} img/s; im2col+OpenBLAS {o['openblas_core']} "
          f"{o['images_per_s']:.2f}; OpenBLAS {g['openblas_core']} {g['images_per_s']:.2f} "
          f"(x{o['images_per_s'] / g['images_per_s']:.2f} from choosing the core)")
PY

if [ -x "$BUILD/peak" ]; then
    echo
    "$BUILD/peak" --threads "$THREADS" --seconds 0.5 | sed '$d'
fi
# each kernel table's tiles alone, in L1, on one thread: against the 1-thread
# peak above, what the tiles themselves reach before the driver and memory
if [ -x "$BUILD/bench-tiles" ]; then
    echo
    "$BUILD/bench-tiles" 0.5
fi
# ResNet-50's INT8 convolutions shape by shape, one thread, on each INT8
# table this CPU runs (the fastest run of each: noise stays out)
if [ -x "$BUILD/bench-qlayers" ]; then
    for isa in avx512 avx2; do
        echo
        "$BUILD/bench-qlayers" --isa $isa --threads 1 2>/dev/null || true
    done
fi

# Pre-activation ResNet v2 (timm resnetv2_50, random weights) beside the v1
# model, alternated: v2's extra scale-shift-ReLU passes are its only extra work.
V2=$OUT/resnetv2_50-random.safetensors
if [ ! -f "$V2" ] && /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    /usr/bin/python3 bench/make_resnetv2_50.py "$V2"
fi
if [ -f "$V2" ]; then
    echo "== resnetv2_50 (pre-activation) beside $MODEL"
    for b in 1 8; do
        run v1 "" "$b"
        line=$("$BUILD/resnet" bench -m "$V2" --batch "$b" --threads "$THREADS" \
            --seconds "$SECONDS_PER_RUN" 2>/dev/null | tail -n 1)
        printf '%-22s batch %-2s %s\n' resnetv2_50 "$b" "$line"
    done
else
    echo "== resnetv2_50: skipped (needs python3-torch for its random weights)"
fi

if [ -x /usr/bin/time ]; then
    /usr/bin/time -v -o "$OUT/time-b8.txt" "$BUILD/resnet" bench -m "$MODEL" --batch 8 \
        --threads "$THREADS" --seconds 2 >/dev/null 2>&1
    rss=$(awk -F: '/Maximum resident/ {gsub(/ /, "", $2); print $2}' "$OUT/time-b8.txt")
    echo "peak RSS at batch 8: $((rss / 1024)) MB"
fi

for b in bench/bench-*.sh; do
    [ -x "$b" ] && { echo; echo "== $b"; BUILD=$BUILD "$b"; }
done
exit 0
