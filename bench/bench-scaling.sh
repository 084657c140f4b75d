#!/usr/bin/env bash
# Scaling of the engine on ResNet-50 (part of make bench): images/s and ms per
# batch at batch 1, 2, 4, 8 and 16 on 1 and 2 threads, FP32 and BF16 (where
# the CPU has avx512_bf16), and the 2-thread speed-up. One run per cell,
# threads alternated within each batch size, so that the noise of a shared
# machine falls on both alike.
#
#   BUILD=build BENCH_MODEL=... BENCH_SCALING_SECONDS=4 bench/bench-scaling.sh
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SECS=${BENCH_SCALING_SECONDS:-4}
MODEL=${BENCH_MODEL:-models/resnet50.safetensors}
[ -f "$MODEL" ] || MODEL=bench/out/resnet50-random.safetensors
[ -f "$MODEL" ] || { echo "bench-scaling: no ResNet-50 weights (make model)" >&2; exit 1; }
OUT=bench/out/scaling
mkdir -p "$OUT"

PRECISIONS=fp32
grep -qw avx512_bf16 /proc/cpuinfo && PRECISIONS="fp32 bf16"
echo "scaling: $MODEL, ${SECS}s per run"
for p in $PRECISIONS; do
    for b in 1 2 4 8 16; do
        for t in 1 2; do
            "$BUILD/resnet" bench -m "$MODEL" --batch "$b" --threads "$t" --seconds "$SECS" \
                --precision "$p" 2>/dev/null | tail -n 1 >"$OUT/$p-b$b-t$t.json"
        done
    done
done
/usr/bin/python3 - "$OUT" $PRECISIONS <<'PY'
import json, sys
out, precisions = sys.argv[1], sys.argv[2:]
for p in precisions:
    print(f"{p}: {'batch':>5} {'1 thread img/s':>15} {'ms/batch':>9} {'2 threads img/s':>16} {'ms/batch':>9} {'2t/1t':>6}")
    for b in (1, 2, 4, 8, 16):
        r = [json.load(open(f"{out}/{p}-b{b}-t{t}.json")) for t in (1, 2)]
        print(f"{'':6}{b:>5} {r[0]['images_per_s']:>15.2f} {r[0]['ms_per_batch_median']:>9.1f} "
              f"{r[1]['images_per_s']:>16.2f} {r[1]['ms_per_batch_median']:>9.1f} "
              f"{r[1]['images_per_s'] / r[0]['images_per_s']:>6.2f}")
PY
