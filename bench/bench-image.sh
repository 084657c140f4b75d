#!/usr/bin/env bash
# The image pipeline under make bench: decode + preprocess time per image for
# darknet's 768x576 dog.jpg and a 12-megapixel JPEG made from it (4000x3000,
# quality 90, built once into bench/out with ImageMagick), with and without
# libjpeg-turbo's DCT scaling. Then dog.jpg's decode + preprocess on each resize
# table this CPU runs (RN_ISA=c, avx2, avx512: every one gives the same bytes).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=bench/out
SECS=${BENCH_IMAGE_SECONDS:-4}
mkdir -p "$OUT"
DOG=/usr/share/darknet/data/dog.jpg
[ -f "$DOG" ] || { echo "bench-image: $DOG missing (apt-get install darknet)" >&2; exit 1; }
BIG=$OUT/dog-12mp.jpg
if [ ! -f "$BIG" ]; then
    /usr/bin/convert "$DOG" -resize '4000x3000!' -quality 90 "$BIG"
fi
for img in "$DOG" "$BIG"; do
    "$BUILD/resnet" bench-image "$img" --seconds "$SECS"
done
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
for t in c avx2 avx512; do
    case $t in
    avx2) [[ $flags == *" avx2"* ]] || continue ;;
    avx512) [[ $flags == *" avx512bw"* && $flags == *" avx512vl"* && $flags == *" avx512dq"* ]] || continue ;;
    esac
    printf 'resize table %-7s ' "$t"
    RN_ISA=$t "$BUILD/resnet" bench-image "$DOG" --seconds "$SECS" | awk '$5 == "full" { print "decode + preprocess: mean " $8 " ms, best " $9 " ms" }'
done

