#!/usr/bin/env bash
# The inspection of the default model against PyTorch
# (tests/fixtures/inspect/default_model.json, from make_inspect_fixtures.py
# --default-model): `resnet inspect --json` on six darknet photos and POST
# /v1/inspect on two, raw and multipart: top-5, every block's norms, cosines
# and lesion, the top-1 CAM (tests/e2e/inspect_compare.py). The heat map
# (?format=png): a PNG of the crop's size whose hottest cell, once the photo
# is taken out, is the reference CAM's. The predictions equal /v1/classify's;
# inspections run beside classify requests; bad arguments are 400s.
. "$(dirname "$0")/lib.sh"
cd "$ROOT" || exit 1
RESNET=$BUILD/resnet
MODEL=models/resnet50.safetensors
REF=tests/fixtures/inspect/default_model.json
IMGS=/usr/share/darknet/data
PY=/usr/bin/python3
daemon_scratch
jqt() { jq -e "$@" >/dev/null; }

if ! BUILD=$BUILD models/fetch_default.sh >"$TMP/fetch.log" 2>&1 || [ ! -s "$MODEL" ]; then
    sed 's/^/# /' "$TMP/fetch.log"
    not_ok "default model: models/fetch_default.sh failed (see above); this test needs the npm registry"
    tap_done
fi

for p in dog eagle horses giraffe kite person; do
    if "$RESNET" inspect -m "$MODEL" --json "$IMGS/$p.jpg" >"$TMP/cli_$p.json" 2>"$TMP/err"; then
        "$PY" tests/e2e/inspect_compare.py "$TMP/cli_$p.json" "$REF" "$p.jpg" "resnet inspect $p.jpg" ||
            _tap_failed=1
    else
        not_ok "resnet inspect $p.jpg: $(tr '\n' ' ' <"$TMP/err")"
    fi
done
check "resnet inspect --png writes a PNG" sh -c \
    "'$RESNET' inspect -m '$MODEL' --no-lesions --png '$TMP/cli.png' '$IMGS/dog.jpg' >/dev/null 2>&1 &&
     head -c 8 '$TMP/cli.png' | od -An -tx1 | grep -q '89 50 4e 47 0d 0a 1a 0a'"
check "resnet inspect without an image is a usage error" sh -c "! '$RESNET' inspect -m '$MODEL' 2>/dev/null"

PORT=$(free_port)
URL=http://127.0.0.1:$PORT
"$RESNETD" --model "$MODEL" --listen 127.0.0.1:$PORT --workers 2 --threads 1 2>"$TMP/log" &
PID=$!
check "the daemon starts with the default model" wait_ready "$URL"

for p in dog eagle; do
    code=$(curl -s -o "$TMP/srv_$p.json" -w '%{http_code}' --data-binary @$IMGS/$p.jpg "$URL/v1/inspect")
    check_eq "POST /v1/inspect $p.jpg answers 200" "$code" 200
    "$PY" tests/e2e/inspect_compare.py "$TMP/srv_$p.json" "$REF" "$p.jpg" "POST /v1/inspect $p.jpg" ||
        _tap_failed=1
done
check_eq "the reply names the model and the input shape" \
    "$(jq -c '[.model, .input_shape, (.cam.classes | length), .computed.lesions]' "$TMP/srv_dog.json")" \
    '["resnet50",[3,224,224],5,true]'
lf=$(jq '.computed.lesion_forwards' "$TMP/srv_dog.json")
check "the reply says what the lesions recomputed ($lf forward passes for 16 blocks, fewer than 16)" \
    awk -v f="$lf" 'BEGIN {exit !(f > 1 && f < 16)}'
check "each lesion recomputes only the ops after its block (fewer for later blocks)" \
    jqt '[.blocks[].lesion.recomputed_ops] | . == (sort | reverse) and .[0] > .[-1]' "$TMP/srv_dog.json"
check "the downsampling blocks are flagged (layer2.0, layer3.0, layer4.0)" \
    jqt '[.blocks[] | select(.downsampling) | .name] == ["layer2.0","layer3.0","layer4.0"]' "$TMP/srv_dog.json"

# the same top-5 as /v1/classify
curl -s --data-binary @$IMGS/dog.jpg "$URL/v1/classify" >"$TMP/cls.json"
check "the inspection's top-5 is /v1/classify's" "$PY" - "$TMP/cls.json" "$TMP/srv_dog.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))["predictions"]
i = json.load(open(sys.argv[2]))["predictions"]
sys.exit(not ([p["index"] for p in c] == [p["index"] for p in i] and
              all(abs(a["score"] - b["score"]) <= 1e-6 for a, b in zip(c, i))))
PY

# multipart, one file; lesions off
code=$(curl -s -o "$TMP/mp.json" -w '%{http_code}' -F photo=@$IMGS/eagle.jpg "$URL/v1/inspect?lesions=0&topk=3")
check_eq "multipart inspection without lesions answers 200" "$code" 200
check_eq "... names the file part, has no lesions and 3 classes" \
    "$(jq -c '[.name, .computed.lesions, ([.blocks[] | has("lesion")] | any), (.predictions | length)]' "$TMP/mp.json")" \
    '["eagle.jpg",false,false,3]'

# the heat map
top=$(jq '.predictions[0].index' "$TMP/srv_dog.json")
code=$(curl -s -D "$TMP/h" -o "$TMP/cam.png" -w '%{http_code}' --data-binary @$IMGS/dog.jpg \
    "$URL/v1/inspect?format=png&lesions=0")
check_eq "format=png answers 200" "$code" 200
check "... as image/png" grep -qi '^content-type: image/png' "$TMP/h"
"$PY" - "$TMP/cam.png" "$IMGS/dog.jpg" "$REF" <<'PY' || _tap_failed=1
# The PNG lays 0.55 x a colour ramp over 0.45 x the crop: the crop taken out,
# the brightest 32x32 cell of what is left is the hottest CAM cell.
import json, sys
from PIL import Image
png, photo, ref = sys.argv[1:]
say = lambda good, msg: print(("ok - " if good else "not ok - ") + msg) or good
try:
    im = Image.open(png)
    im.load()
except Exception as e:
    say(False, f"the heat map decodes as a PNG ({e})")
    sys.exit(1)
say(im.size == (224, 224) and im.mode == "RGB", f"the heat map is a 224x224 RGB PNG ({im.size}, {im.mode})")
src = Image.open(photo).convert("RGB")
w, h = src.size
nw, nh = (256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256)
src = src.resize((nw, nh), Image.BILINEAR)
l, t = int(round((nw - 224) / 2.0)), int(round((nh - 224) / 2.0))
crop = src.crop((l, t, l + 224, t + 224))
heat = [[0.0] * 7 for _ in range(7)]
for y in range(224):
    for x in range(224):
        a, b = im.getpixel((x, y)), crop.getpixel((x, y))
        heat[y // 32][x // 32] += sum(a[c] - 0.45 * b[c] for c in range(3))
cells = [v for row in heat for v in row]
hot = cells.index(max(cells))
r = json.load(open(ref))["dog.jpg"]["cam"]["grid"]
want = r.index(max(r))
ok = say(hot == want, f"the heat map's hottest cell is the reference CAM's ({hot}, PyTorch {want})")
sys.exit(0 if ok else 1)
PY
code=$(curl -s -o "$TMP/cam2.png" -w '%{http_code}' --data-binary @$IMGS/dog.jpg \
    "$URL/v1/inspect?format=png&class=248&lesions=0")
check "format=png&class=248 gives another map" sh -c "[ $code = 200 ] && ! cmp -s '$TMP/cam.png' '$TMP/cam2.png'"

# inspections beside classify requests, on two workers
for i in 1 2 3; do
    curl -s -o "$TMP/par_i$i" -w '%{http_code}\n' --data-binary @$IMGS/eagle.jpg "$URL/v1/inspect?lesions=0" >"$TMP/code_i$i" &
    curl -s -o "$TMP/par_c$i" -w '%{http_code}\n' --data-binary @$IMGS/dog.jpg "$URL/v1/classify" >"$TMP/code_c$i" &
done
wait $(jobs -p | grep -v "^$PID$") 2>/dev/null
sleep 0.5
check_eq "3 inspections and 3 classifications at once all answer 200" \
    "$(cat "$TMP"/code_i* "$TMP"/code_c* | sort | uniq -c | tr -s ' ')" " 6 200"
check "... and the classifications are the single request's" sh -c \
    "for i in 1 2 3; do cmp -s '$TMP/par_c'\$i '$TMP/cls.json' || exit 1; done"

# ?orient=exif reaches the inspection: a PNG stored rotated (EXIF orientation 6)
ROT=tests/fixtures/images/formats/dog_exif6.png
a=$(curl -s --data-binary @$ROT "$URL/v1/inspect?lesions=0" | jq -c '.blocks[0].x_norm')
b=$(curl -s --data-binary @$ROT "$URL/v1/inspect?lesions=0&orient=exif" | jq -c '.blocks[0].x_norm')
c=$("$RESNET" inspect -m "$MODEL" --no-lesions --exif-orient --json "$ROT" 2>/dev/null | jq -c '.blocks[0].x_norm')
check "orient=exif turns the image before the inspection ($a without, $b with), as --exif-orient does ($c)" \
    sh -c "[ -n '$a' ] && [ '$a' != '$b' ] && [ '$b' = '$c' ]"

# refusals
bad() { # description, expected code, curl args...
    local d=$1 want=$2; shift 2
    local code
    code=$(curl -s -o "$TMP/bad" -w '%{http_code}' "$@")
    if [ "$code" = "$want" ] && jq -e '.error | length > 0' "$TMP/bad" >/dev/null 2>&1; then
        ok "$d: $want ($(jq -r .error "$TMP/bad"))"
    else
        not_ok "$d: got $code, want $want ($(head -c 200 "$TMP/bad"))"
    fi
}
bad "lesions=maybe" 400 --data-binary @$IMGS/dog.jpg "$URL/v1/inspect?lesions=maybe"
bad "format=gif" 400 --data-binary @$IMGS/dog.jpg "$URL/v1/inspect?format=gif"
bad "class without format=png" 400 --data-binary @$IMGS/dog.jpg "$URL/v1/inspect?class=3"
bad "class=1000 of 1000 classes" 400 --data-binary @$IMGS/dog.jpg "$URL/v1/inspect?format=png&class=1000"
bad "class=-1" 400 --data-binary @$IMGS/dog.jpg "$URL/v1/inspect?format=png&class=-1"
bad "two file parts" 400 -F a=@$IMGS/dog.jpg -F b=@$IMGS/eagle.jpg "$URL/v1/inspect"
# as /v1/classify answers them
bad "an empty body" 411 -X POST "$URL/v1/inspect"
bad "a body that is no image" 415 --data-binary "hello" "$URL/v1/inspect"
bad "an unknown model" 404 --data-binary @$IMGS/dog.jpg "$URL/v1/inspect?model=nope"
bad "GET /v1/inspect" 405 "$URL/v1/inspect"
check "the daemon still answers" curl -sf -o /dev/null "$URL/v2/health/ready"
check "the metrics count the inspections by route" sh -c \
    "curl -s '$URL/metrics' | grep -q 'route=\"/v1/inspect\",code=\"200\"'"
tap_done
