#!/usr/bin/env bash
# WebP, GIF, BMP, TIFF and EXIF orientation end to end:
#   - resnet classify with the default model on every fixture of
#     tests/fixtures/images/formats (--exif-orient on the EXIF lines): top-1 as
#     PyTorch + PIL (model.json, make_format_fixtures.py), and each of PyTorch's
#     top-5 probabilities within 1e-4;
#   - the daemon: each format classified, ?orient=exif the same as the CLI's
#     --exif-orient, a bad orient a 400, an unknown type a 415 naming the
#     supported ones, /v1/models listing them.
# The default model comes from `make model` (tests/e2e/default_model.sh).
. "$(dirname "$0")/lib.sh"
cd "$ROOT" || exit 1
RESNET=$BUILD/resnet
MODEL=models/resnet50.safetensors
FIX=tests/fixtures/images/formats
PY=/usr/bin/python3
daemon_scratch

if ! [ -s "$MODEL" ] && ! BUILD=$BUILD models/fetch_default.sh >"$TMP/fetch.log" 2>&1; then
    sed 's/^/# /' "$TMP/fetch.log"
    not_ok "default model: models/fetch_default.sh failed (see above)"
    tap_done
fi

# ---- the CLI against PyTorch + PIL, every fixture
plain=() oriented=()
while read -r file ref w h mode exif; do
    case $file in '#'*|'') continue ;; esac
    if [ "$exif" = 1 ]; then oriented+=("$FIX/$file"); else plain+=("$FIX/$file"); fi
done <"$FIX/MANIFEST"
"$RESNET" classify -m "$MODEL" --topk 20 --json "${plain[@]}" >"$TMP/plain.json" 2>"$TMP/plain.err"
"$RESNET" classify -m "$MODEL" --topk 20 --json --exif-orient "${oriented[@]}" \
    >"$TMP/oriented.json" 2>"$TMP/oriented.err"
check_eq "classify answered for every fixture (${#plain[@]} + ${#oriented[@]} with --exif-orient)" \
    "$(cat "$TMP/plain.json" "$TMP/oriented.json" | wc -l)" "$((${#plain[@]} + ${#oriented[@]}))"
"$PY" - "$FIX/model.json" "$TMP/plain.json" "$TMP/oriented.json" <<'PY'
import json, os, sys
ref = json.load(open(sys.argv[1]))
worst, n = 0.0, 0
for path, suffix in ((sys.argv[2], ""), (sys.argv[3], " exif")):
    for line in open(path):
        got = json.loads(line)
        key = os.path.basename(got["name"]) + suffix
        want = ref[key]
        if "error" in got:
            print("not ok - %s: %s" % (key, got["error"]))
            continue
        probs = {p["index"]: p["score"] for p in got["predictions"]}
        top = got["predictions"][0]["index"]
        diffs = [abs(probs[i] - p) if i in probs else 1.0 for i, p in zip(want["top5"], want["probs"])]
        d = max(diffs)
        worst, n = max(worst, d), n + 1
        good = top == want["top5"][0] and d <= 1e-4
        print("%s - %s: top-1 %d (PyTorch %d), top-5 probabilities within %.1e of PyTorch's"
              % ("ok" if good else "not ok", key, top, want["top5"][0], d))
print("# %d images: largest probability difference %.2e (bound 1e-4)" % (n, worst))
print(("ok" if n == len(ref) else "not ok") + " - every reference was checked (%d of %d)" % (n, len(ref)))
PY

# ---- the daemon
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
"$RESNETD" --model "$MODEL" --listen 127.0.0.1:$PORT 2>"$TMP/log" &
PID=$!
wait_ready "$URL"
for f in dog_lossy.webp person_alpha_lossless.webp scream_interlaced.gif eagle_rle4.bmp \
         horses_565.bmp horses_tiled_lzw.tif scream_palette.tif; do
    code=$(curl -s -o "$TMP/$f.json" -w '%{http_code}' --data-binary @"$FIX/$f" "$URL/v1/classify?topk=20")
    want=$(jq -r --arg k "$f" '.[$k].top5[0]' "$FIX/model.json")
    got=$(jq -r '.predictions[0].index' "$TMP/$f.json" 2>/dev/null)
    check_eq "POST /v1/classify $f: 200 and PyTorch's top-1" "$code $got" "200 $want"
done
curl -s --data-binary @"$FIX/eagle_exif6.jpg" "$URL/v1/classify?orient=exif&topk=20" >"$TMP/o6.json"
want=$(jq -r '.["eagle_exif6.jpg exif"].top5[0]' "$FIX/model.json")
check_eq "orient=exif turns the image as PIL's exif_transpose (top-1)" \
    "$(jq -r '.predictions[0].index' "$TMP/o6.json")" "$want"
"$RESNET" classify -m "$MODEL" --topk 20 --json --exif-orient "$FIX/eagle_exif6.jpg" >"$TMP/o6cli.json"
check_eq "orient=exif: the daemon's scores are the CLI's --exif-orient" \
    "$(jq -c '[.predictions[] | .index]' "$TMP/o6.json")" "$(jq -c '[.predictions[] | .index]' "$TMP/o6cli.json")"
curl -s --data-binary @"$FIX/eagle_exif6.jpg" "$URL/v1/classify?topk=20" >"$TMP/o6none.json"
want=$(jq -r '.["eagle_exif6.jpg"].top5[0]' "$FIX/model.json")
check_eq "without orient the EXIF orientation is ignored, as PIL's Image.open" \
    "$(jq -r '.predictions[0].index' "$TMP/o6none.json")" "$want"
code=$(curl -s -o "$TMP/embed.json" -w '%{http_code}' --data-binary @"$FIX/eagle_exif8.jpg" \
    "$URL/v1/embed?orient=exif")
check_eq "orient=exif on /v1/embed" "$code $(jq -r .dim "$TMP/embed.json")" "200 2048"
code=$(curl -s -o "$TMP/bad.json" -w '%{http_code}' --data-binary @"$FIX/eagle_exif8.jpg" \
    "$URL/v1/classify?orient=sideways")
check_eq "orient=sideways: 400 bad_request" "$code $(jq -r .code "$TMP/bad.json")" "400 bad_request"
printf '\0\0\0\030ftypheic\0\0\0\0mif1heic' >"$TMP/x.heic"
code=$(curl -s -o "$TMP/heic.json" -w '%{http_code}' --data-binary @"$TMP/x.heic" "$URL/v1/classify")
check_eq "HEIF: 415 unsupported_image" "$code $(jq -r .code "$TMP/heic.json")" "415 unsupported_image"
check "the 415 names the supported types" grep -q 'JPEG, PNG, WebP, GIF, BMP and TIFF' "$TMP/heic.json"
curl -s "$URL/v1/models" >"$TMP/models.json"
check_eq "/v1/models lists the image types" "$(jq -c .image_types "$TMP/models.json")" \
    '["image/jpeg","image/png","image/webp","image/gif","image/bmp","image/tiff"]'
check "daemon alive" kill -0 "$PID"
tap_done
