#!/usr/bin/env bash
# make bench: the engine on a full-size ResNet-50 at batch 1 and 8 with 2
# threads, with the OpenBLAS kernels libresnet selects and with OpenBLAS's
# generic ones side by side (runs alternated), peak RSS at batch 8, then the
# other benchmarks under bench/ that exist (image pipeline, HTTP load).
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
    run generic-openblas "OPENBLAS_CORETYPE=Prescott" "$b"
done
/usr/bin/python3 - "$OUT" <<'PY'
import json, sys, glob
out = sys.argv[1]
for b in (1, 8):
    d = json.load(open(f"{out}/engine-default-b{b}.json"))
    g = json.load(open(f"{out}/engine-generic-openblas-b{b}.json"))
    print(f"batch {b}: {d['images_per_s']:.2f} img/s ({d['openblas_core']}) vs "
          f"{g['images_per_s']:.2f} img/s ({g['openblas_core']}): x{d['images_per_s'] / g['images_per_s']:.2f}")
PY

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
