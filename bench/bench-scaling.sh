#!/usr/bin/env bash
# Scaling of the engine on ResNet-50 (part of make bench), for each ISA this
# machine runs: images/s and ms per batch at batch 1, 2, 4, 8 and 16 on 1 and
# 2 threads, the 2-thread speed-up, the 2-thread GFLOP/s by the direct count
# and its fraction of that ISA's peak (build/peak, when built); then the peak
# RSS at batch 8 on 2 threads per ISA. FP32 for every ISA, BF16 too on avx512
# where the CPU has avx512_bf16. One run per cell; within each batch size the
# ISAs and the thread counts are alternated, so that the noise of a shared
# machine falls on all of them alike.
#
# The ISAs (RN_ISA): avx512, avx2, neon at every batch; the slow ones, c
# (plain C) and blas (im2col + OpenBLAS), at batch 1 and 2 only unless
# BENCH_SCALING_SLOW=all (every batch) or 0 (not at all). An ISA the engine
# refuses (not this CPU, or its kernel table not built in) is named and left
# out after its first cell.
#
#   BUILD=build BENCH_MODEL=... BENCH_SCALING_SECONDS=4 \
#   BENCH_SCALING_ISAS="avx512 avx2 neon c blas" BENCH_SCALING_SLOW=1 \
#   bench/bench-scaling.sh
#
# BENCH_SCALING_SECONDS (whole seconds, >= 1) per cell bounds the run: about
# (10 cells per fast ISA and precision + 4 per slow ISA) x (seconds + load).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SECS=${BENCH_SCALING_SECONDS:-4}
ISAS=${BENCH_SCALING_ISAS:-avx512 avx2 neon c blas}
SLOW=${BENCH_SCALING_SLOW:-1}
BATCHES="1 2 4 8 16"
SLOW_BATCHES="1 2"
[ "$SLOW" = all ] && SLOW_BATCHES=$BATCHES
MODEL=${BENCH_MODEL:-models/resnet50.safetensors}
[ -f "$MODEL" ] || MODEL=bench/out/resnet50-random.safetensors
[ -f "$MODEL" ] || { echo "bench-scaling: no ResNet-50 weights (make model)" >&2; exit 1; }
OUT=bench/out/scaling
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.err "$OUT"/*-rss.txt

# configurations: ISA-PRECISION
CONFIGS=
for isa in $ISAS; do
    case $isa in
    c | blas) [ "$SLOW" = 0 ] && continue ;;
    esac
    CONFIGS="$CONFIGS $isa-fp32"
    [ "$isa" = avx512 ] && grep -qw avx512_bf16 /proc/cpuinfo && CONFIGS="$CONFIGS $isa-bf16"
done
batches_of() { case ${1%-*} in c | blas) echo "$SLOW_BATCHES" ;; *) echo "$BATCHES" ;; esac; }

# config batch threads [rss] -> $OUT/CONFIG-bB-tT.json (.err: stderr); with rss,
# under /usr/bin/time, peak RSS (KB) into $OUT/CONFIG-rss.txt. Fails as resnet does.
cell() {
    local c=$1 b=$2 t=$3 secs=$SECS pre=() f=$OUT/$1-b$2-t$3
    if [ "${4:-}" = rss ] && [ -x /usr/bin/time ]; then
        pre=(/usr/bin/time -f %M -o "$OUT/$c-rss.txt")
    fi
    [ "${4:-}" = rss-only ] && { secs=1; f=$OUT/$c-rss; pre=(/usr/bin/time -f %M -o "$OUT/$c-rss.txt"); }
    RN_ISA=${c%-*} "${pre[@]}" "$BUILD/resnet" bench -m "$MODEL" --batch "$b" --threads "$t" \
        --seconds "$secs" --precision "${c##*-}" >"$f.out" 2>"$f.err" || return 1
    tail -n 1 "$f.out" >"$f.json"
    rm -f "$f.out"
}

PEAK=
if [ -x "$BUILD/peak" ]; then
    "$BUILD/peak" --threads 2 --seconds 0.3 | tail -n 1 >"$OUT/peak.json" && PEAK=$OUT/peak.json
fi
"$BUILD/resnet" info "$MODEL" --json >"$OUT/info.json" 2>/dev/null || rm -f "$OUT/info.json"

echo "scaling: $MODEL, ${SECS}s per run, configurations:$CONFIGS"
refused=
for b in $BATCHES; do
    for c in $CONFIGS; do
        case " $refused " in *" $c "*) continue ;; esac
        case " $(batches_of "$c") " in *" $b "*) ;; *) continue ;; esac
        for t in 1 2; do
            how=
            [ "$b" = 8 ] && [ "$t" = 2 ] && how=rss
            if ! cell "$c" "$b" "$t" $how; then
                echo "$c: refused or failed at batch $b, $t threads:" \
                    "$(grep -v 'OpenBLAS core' "$OUT/$c-b$b-t$t.err" | tail -n 1)"
                rm -f "$OUT/$c-b$b-t$t.err"
                refused="$refused $c"
                break
            fi
        done
    done
done
# peak RSS at batch 8 for the configurations whose table stops before batch 8
if [ -x /usr/bin/time ]; then
    for c in $CONFIGS; do
        case " $refused " in *" $c "*) continue ;; esac
        [ -f "$OUT/$c-rss.txt" ] || cell "$c" 8 2 rss-only || true
    done
fi

/usr/bin/python3 - "$OUT" "$BATCHES" $CONFIGS <<'PY'
import json, sys
out, batches, configs = sys.argv[1], [int(b) for b in sys.argv[2].split()], sys.argv[3:]
def load(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return None
info = load(f"{out}/info.json") or {}
gflop = info.get("gflops_224") or info.get("gflops") or 8.18
peak = load(f"{out}/peak.json") or {}
rss = {}
for c in configs:
    r = [load(f"{out}/{c}-b{b}-t{t}.json") for b in batches for t in (1, 2)]
    if not any(r):
        continue
    isa, prec = c.rsplit("-", 1)
    p = peak.get(f"{isa}_gflops")
    if isa == "blas":  # OpenBLAS's SGEMM kernel for its core type sets the ceiling
        core = next((x.get("openblas_core", "") for x in r if x), "")
        simd = ("avx512" if any(k in core for k in ("SkylakeX", "Cooperlake", "SapphireRapids"))
                else "avx2" if any(k in core for k in ("Haswell", "Zen")) else
                "neon" if any(k in core.upper() for k in ("ARMV8", "NEOVERSE", "CORTEX")) else None)
        p = peak.get(f"{simd}_gflops") if simd else None
    print(f"{isa} {prec}: {'batch':>5} {'1 thread img/s':>15} {'ms/batch':>9} {'2 threads img/s':>16} "
          f"{'ms/batch':>9} {'2t/1t':>6} {'2t GFLOP/s':>11} {'of peak':>8}")
    for b in batches:
        r1, r2 = (load(f"{out}/{c}-b{b}-t{t}.json") for t in (1, 2))
        if not r1 and not r2:
            continue
        line = f"{'':{len(isa) + len(prec) + 3}}{b:>5} "
        line += f"{r1['images_per_s']:>15.2f} {r1['ms_per_batch_median']:>9.1f} " if r1 else f"{'-':>15} {'-':>9} "
        line += f"{r2['images_per_s']:>16.2f} {r2['ms_per_batch_median']:>9.1f} " if r2 else f"{'-':>16} {'-':>9} "
        line += f"{r2['images_per_s'] / r1['images_per_s']:>6.2f} " if r1 and r2 else f"{'-':>6} "
        if r2:
            g = r2["images_per_s"] * gflop
            line += f"{g:>11.1f} " + (f"{g / p:>8.2f}" if p else f"{'-':>8}")
        print(line)
    try:
        rss[c] = int(open(f"{out}/{c}-rss.txt").read().split()[-1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
print(f"GFLOP/s: img/s x {gflop:.2f} GFLOP/image (direct count); of peak: the 2-thread "
      + ("FP32 FMA peak of the ISA from build/peak (for bf16 too; for blas, of OpenBLAS's core)"
         if peak else "peak (build/peak not built)"))
if rss:
    print("peak RSS at batch 8, 2 threads: " + ", ".join(f"{c} {v:.0f} MB" for c, v in rss.items()))
PY
