#!/usr/bin/env bash
# Decode time per image format for the same photo: darknet's dog.jpg
# (768x576) written by python3-pil as JPEG, PNG, WebP (lossy and lossless),
# GIF, BMP and TIFF (raw and LZW), then `resnet bench-image` on each file.
#   BUILD=build bench/bench-image-formats.sh [SECONDS]
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
/usr/bin/python3 - "$TMP" <<'PY'
import sys
from PIL import Image
d = sys.argv[1]
im = Image.open("/usr/share/darknet/data/dog.jpg").convert("RGB")
im.save(d + "/dog.jpg", quality=90)
im.save(d + "/dog.png")
im.save(d + "/dog_lossy.webp", quality=80)
im.save(d + "/dog_lossless.webp", lossless=True)
im.convert("P", palette=Image.ADAPTIVE).save(d + "/dog.gif")
im.save(d + "/dog.bmp")
im.save(d + "/dog.tif")
im.save(d + "/dog_lzw.tif", compression="tiff_lzw")
PY
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
"$BUILD/resnet" bench-image --seconds "${1:-2}" "$TMP"/dog.jpg "$TMP"/dog.png "$TMP"/dog_lossy.webp \
    "$TMP"/dog_lossless.webp "$TMP"/dog.gif "$TMP"/dog.bmp "$TMP"/dog.tif "$TMP"/dog_lzw.tif
