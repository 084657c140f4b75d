#!/usr/bin/env bash
# Load time and peak RSS of `resnet info` on ResNet-50 in each format resnetd
# loads: safetensors (the reference), torch.save zip and legacy, ONNX with
# batch norm folded and kept. The same random weights in every file
# (bench/make_formats_50.py, made once into bench/out/formats/). The formats
# run interleaved, ROUNDS rounds; each figure is the median over the rounds,
# the ratio the median of the per-round ratios to safetensors.
#   bench/bench-formats.sh      env: BUILD (build), ROUNDS (5)
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-5}
DIR=bench/out/formats
FILES=(r50.safetensors r50.pth r50_legacy.pth r50.onnx r50_bn.onnx)
if [ ! -f "$DIR/r50_bn.onnx" ]; then
    /usr/bin/python3 -c 'import torch, torchvision, onnx' 2>/dev/null || {
        echo "bench-formats: needs python3-torch, python3-torchvision, python3-onnx (scripts/install-deps.sh --dev)" >&2
        exit 0
    }
    /usr/bin/python3 bench/make_formats_50.py "$DIR" >/dev/null 2>&1
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for r in $(seq "$ROUNDS"); do
    for f in "${FILES[@]}"; do
        # a cold page cache is not what is measured: read the file once first
        cat "$DIR/$f" >/dev/null
        /usr/bin/time -f '%e %M' -o "$TMP/t" "$BUILD/resnet" info "$DIR/$f" >/dev/null
        echo "$f $(cat "$TMP/t")" >>"$TMP/all"
    done
done
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
echo "ResNet-50 load (resnet info), median of $ROUNDS interleaved rounds, $cpu"
printf '%-18s %10s %8s %12s %8s\n' file seconds ratio "peak RSS MB" ratio
awk -v files="${FILES[*]}" '
    { t[$1, ++n[$1]] = $2; m[$1, n[$1]] = $3 }
    function median(a, k,   i, j, v, tmp) { for (i = 1; i <= k; i++) v[i] = a[i];
        for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] < v[i]) { tmp = v[i]; v[i] = v[j]; v[j] = tmp }
        return k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2 }
    END {
        split(files, F, " ")
        for (fi = 1; fi in F; fi++) {
            f = F[fi]; k = n[f]
            for (i = 1; i <= k; i++) { a[i] = t[f, i]; b[i] = m[f, i] / 1024;
                rt[i] = t[F[1], i] > 0 ? t[f, i] / t[F[1], i] : 0; rm[i] = m[f, i] / m[F[1], i] }
            printf "%-18s %10.2f %8.2f %12.0f %8.2f\n", f, median(a, k), median(rt, k), median(b, k), median(rm, k)
        }
    }' "$TMP/all"
