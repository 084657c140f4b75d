#!/usr/bin/env bash
# bench/peers/export_qdq.py: our INT8 fixtures as QDQ ONNX graphs, run by ONNX
# Runtime (npm's onnxruntime-node, installed into bench/peers as run.sh does),
# give the logits of the INT8 reference (tests/fixtures/int8, docs/int8.md)
# on every fixture input: the same top-1, and the same values but for the
# odd rounding step where ONNX's float QDQ arithmetic and our integer one part
# (ResNet-D's average pool lands on exact halves that float dequantization
# blurs). The export is the same bytes when made again; a v2 model and a
# float model are refused with a message.
. "$(dirname "$0")/lib.sh"
cd "$ROOT" || exit 1
PY=/usr/bin/python3
FIX=tests/fixtures/int8
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

if [ ! -d bench/peers/node_modules/onnxruntime-node ]; then
    (cd bench/peers && npm ci --ignore-scripts --no-audit --no-fund >"$TMP/npm.log" 2>&1) ||
        { sed 's/^/# /' "$TMP/npm.log"; not_ok "npm ci in bench/peers failed; this test needs the npm registry"; tap_done; }
fi

for m in basic bottleneck v1 resnext resnet_d resnet_d_basic; do
    if ! "$PY" bench/peers/export_qdq.py "$FIX/$m.int8.safetensors" "$TMP/$m.onnx" >"$TMP/$m.log" 2>&1; then
        not_ok "export $m: $(tail -1 "$TMP/$m.log")"
        continue
    fi
    ok "export $m: $(sed 's/.*(//; s/)$//' "$TMP/$m.log" | cut -c1-80)"
    # read back by our own QDQ reader: the INT8 file's logits, bit for bit
    for in in "$FIX/$m".n1.32x32.in.f32 "$FIX/$m".n1.64x64.in.f32; do
        case=$(basename "$in" .in.f32)
        size=${case##*x}
        "$BUILD/resnet" infer -m "$TMP/$m.onnx" --input "$in" --batch 1 --size "$size" \
            --output "$TMP/$case.ours.f32" 2>"$TMP/ours.err"
        check "$case: our reader on the export gives the INT8 file's logits, bit for bit" \
            cmp -s "$TMP/$case.ours.f32" "$FIX/$case.logits.f32"
    done
    for in in "$FIX/$m".n*.in.f32; do
        case=$(basename "$in" .in.f32)
        hw=${case##*.}
        node bench/peers/ort_classify.js "$TMP/$m.onnx" "$in" "$TMP/$case.ort.f32" 1 "$hw" 2>"$TMP/ort.err" ||
            { not_ok "$case: ONNX Runtime: $(tail -1 "$TMP/ort.err")"; continue; }
    done
    # exact arithmetic but for float ties: within 5% of the largest logit (25%
    # with ResNet-D's average pools), and within 1e-5 on most cases of the
    # models without them
    "$PY" - "$FIX" "$TMP" "$m" <<'PY'
import glob, os, sys
import numpy as np
fix, tmp, m = sys.argv[1:]
worst = 0.0
near = total = 0
for ref_path in sorted(glob.glob(os.path.join(fix, m + ".n*.logits.f32"))):
    case = os.path.basename(ref_path)[:-len(".logits.f32")]
    n = int(case.split(".")[1][1:])
    ref = np.fromfile(ref_path, "<f4").reshape(n, -1)
    try:
        got = np.fromfile(os.path.join(tmp, case + ".ort.f32"), "<f4").reshape(n, -1)
    except (OSError, ValueError) as e:
        print("not ok - %s: no ONNX Runtime output (%s)" % (case, e))
        continue
    d = float(np.abs(got - ref).max())
    rel = d / float(np.abs(ref).max())
    worst = max(worst, rel)
    total += 1
    near += d < 1e-5
    same = bool((got.argmax(1) == ref.argmax(1)).all())
    print(("ok - %s: ONNX Runtime on the export keeps the reference's top-1 on %d images" if same else
           "not ok - %s: ONNX Runtime's top-1 differs from the reference's (of %d images)") % (case, n))
    print(("ok" if rel <= (0.25 if "resnet_d" in m else 0.05) else "not ok") +
          " - %s: max |logit diff| %.3g, %.3g of the largest logit" % (case, d, rel))
if "resnet_d" not in m:
    print(("ok" if near * 2 >= total else "not ok") +
          " - %s: %d of %d cases within 1e-5 of the reference" % (m, near, total))
PY
done > "$TMP/tap.txt"
cat "$TMP/tap.txt"
grep -q '^not ok' "$TMP/tap.txt" && _tap_failed=1

"$PY" bench/peers/export_qdq.py "$FIX/resnext.int8.safetensors" "$TMP/again.onnx" >/dev/null 2>&1
check "the same bytes when exported again" cmp -s "$TMP/resnext.onnx" "$TMP/again.onnx"
"$PY" bench/peers/export_qdq.py "$FIX/resnetv2.int8.safetensors" "$TMP/v2.onnx" 2>"$TMP/e1" >/dev/null
check_eq "a v2 model: exit status 1" "$?" 1
grep -q "v1-family models only" "$TMP/e1" && ok "a v2 model is refused, saying why" ||
    not_ok "v2 refusal: $(cat "$TMP/e1")"
check "no file is written for a refused model" test ! -e "$TMP/v2.onnx"
"$PY" - "$TMP/f32.safetensors" <<'PY'
import sys
sys.path.insert(0, "tests/fixtures/int8")
import numpy as np, reference
reference.save_safetensors(sys.argv[1], {"conv1.weight": np.zeros((4, 3, 7, 7), np.float32)})
PY
"$PY" bench/peers/export_qdq.py "$TMP/f32.safetensors" "$TMP/f.onnx" 2>"$TMP/e2" >/dev/null
grep -q "not an INT8 model" "$TMP/e2" && ok "a float model is refused: run resnet quantize first" ||
    not_ok "float refusal: $(cat "$TMP/e2")"
tap_done
