#!/usr/bin/env bash
# resnetd end to end: every route, raw and multipart uploads, topk, KServe v2
# in JSON and binary, metrics that parse, two models at once, and the bad-input
# set (each the right 4xx with a JSON error, the daemon serving afterwards).
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
BIN=$RESNETD
PY=/usr/bin/python3
M1=tests/fixtures/parity/bottleneck.safetensors
M2=tests/fixtures/parity/basic.safetensors
IMGS=/usr/share/darknet/data
FIX=tests/fixtures/images
daemon_scratch

PORT=$(free_port)
URL=http://127.0.0.1:$PORT
"$BIN" --model "$M1" --model "$M2" --listen 127.0.0.1:$PORT --max-body-bytes 2M \
    --max-pixels 50M 2>"$TMP/log" &
PID=$!
wait_ready "$URL"
check "daemon becomes ready" curl -sf "$URL/v2/health/ready" -o /dev/null

# req NAME EXPECTED_STATUS CURL_ARGS...: body in $TMP/NAME, status checked
req() {
    local name=$1 want=$2; shift 2
    local got
    got=$(curl -s -o "$TMP/$name" -D "$TMP/$name.h" -w '%{http_code}' "$@")
    check_eq "$name: status" "$got" "$want"
}
# jqcheck NAME FILTER: the jq filter holds on the body of NAME
jqcheck() { check "$1: $2" jq -e "$2" "$TMP/$1" >/dev/null; }
# bad NAME STATUS CODE CURL_ARGS...: a JSON error with that status and code
bad() {
    local name=$1 want=$2 code=$3; shift 3
    req "$name" "$want" "$@"
    check "$name: JSON error with code $code" \
        jq -e --arg c "$code" '(.error|type=="string") and .code==$c' "$TMP/$name" >/dev/null
}

# ---- /v1 ----
req models 200 "$URL/v1/models"
jqcheck models '[.models[].name]==["bottleneck","basic"] and .models[0].default and .models[0].classes==12'
req classify 200 --data-binary @$IMGS/dog.jpg "$URL/v1/classify"
jqcheck classify '.model=="bottleneck" and (.predictions|length)==5 and (.predictions[0]|has("index") and has("label") and has("score"))'
jqcheck classify '[.predictions[].score] == ([.predictions[].score]|sort|reverse)'
req topk3 200 --data-binary @$IMGS/dog.jpg "$URL/v1/classify?topk=3"
jqcheck topk3 '(.predictions|length)==3'
check "topk=3 is the head of the top 5" \
    test "$(jq -c '.predictions[:3]' "$TMP/classify")" == "$(jq -c '.predictions' "$TMP/topk3")"
req topkbig 200 --data-binary @$IMGS/dog.jpg "$URL/v1/classify?topk=500"
jqcheck topkbig '(.predictions|length)==12'
req png 200 -H 'Content-Type: image/png' --data-binary @$FIX/dog_interlaced.png "$URL/v1/classify"
jqcheck png '(.predictions|length)==5'
req multi 200 -F a=@$IMGS/dog.jpg -F b=@$IMGS/eagle.jpg -F c=@$FIX/giraffe_16.png -F note=hello \
    "$URL/v1/classify?topk=2"
jqcheck multi '[.results[].name]==["dog.jpg","eagle.jpg","giraffe_16.png"] and ([.results[].predictions|length]==[2,2,2])'
check "multipart result equals the raw-body result" \
    test "$(jq -c '.results[0].predictions' "$TMP/multi")" == "$(jq -c '.predictions[:2]' "$TMP/classify")"
req model2 200 --data-binary @$IMGS/dog.jpg "$URL/v1/classify?model=basic"
jqcheck model2 '.model=="basic" and (.predictions|length)==5'
req embed 200 --data-binary @$IMGS/dog.jpg "$URL/v1/embed"
jqcheck embed '.dim==128 and (.embedding|length)==128'
req embedmulti 200 -F a=@$IMGS/dog.jpg -F b=@$IMGS/eagle.jpg "$URL/v1/embed?model=basic"
jqcheck embedmulti '(.results|length)==2 and (.results[0].embedding|length)==.results[0].dim'

# ---- KServe v2 ----
req v2 200 "$URL/v2"
jqcheck v2 '.name=="resnetd" and (.extensions|index("binary_tensor_data")!=null)'
req live 200 "$URL/v2/health/live"
req ready 200 "$URL/v2/health/ready"
req v2model 200 "$URL/v2/models/basic"
jqcheck v2model '.name=="basic" and .inputs[0].shape==[-1,3,224,224] and .outputs[0].shape==[-1,10]'
req v2modelv 200 "$URL/v2/models/basic/versions/1"
req v2ready 200 "$URL/v2/models/bottleneck/ready"
printf '{"id":"r1","inputs":[{"name":"image","datatype":"BYTES","shape":[2],"data":["%s","%s"]}],"outputs":[{"name":"probabilities","parameters":{"classification":3}},{"name":"logits"}]}' \
    "$(base64 -w0 $IMGS/dog.jpg)" "$(base64 -w0 $IMGS/eagle.jpg)" >"$TMP/bytes.json"
req v2bytes 200 -H 'Content-Type: application/json' --data-binary @"$TMP/bytes.json" "$URL/v2/models/bottleneck/infer"
jqcheck v2bytes '.id=="r1" and .model_name=="bottleneck" and .outputs[0].datatype=="BYTES" and .outputs[0].shape==[2,3] and .outputs[1].shape==[2,12]'
check "v2 classification equals /v1/classify" test \
    "$(jq -r '.outputs[0].data[0]|split(":")[1]' "$TMP/v2bytes")" == "$(jq -r '.predictions[0].index' "$TMP/classify")"
$PY - "$TMP" <<'PY'
import json, random, struct, sys
tmp = sys.argv[1]
random.seed(7)
x = [random.uniform(-2, 2) for _ in range(2 * 3 * 40 * 48)]
json.dump({"inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 3, 40, 48], "data": x}],
           "outputs": [{"name": "logits"}]}, open(tmp + "/fp32.json", "w"))
blob = struct.pack("<%df" % len(x), *x)
hdr = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 3, 40, 48],
                              "parameters": {"binary_data_size": len(blob)}}],
                  "parameters": {"binary_data_output": True}}).encode()
open(tmp + "/fp32.bin", "wb").write(hdr + blob)
open(tmp + "/fp32.hlen", "w").write(str(len(hdr)))
PY
req v2fp32 200 --data-binary @"$TMP/fp32.json" "$URL/v2/models/bottleneck/infer"
jqcheck v2fp32 '.outputs|length==1 and .[0].name=="logits" and .[0].shape==[2,12] and (.[0].data|length)==24'
req v2bin 200 -H "Inference-Header-Content-Length: $(cat "$TMP/fp32.hlen")" \
    -H 'Content-Type: application/octet-stream' --data-binary @"$TMP/fp32.bin" "$URL/v2/models/bottleneck/infer"
check "v2 binary reply: header length, binary logits equal the JSON ones" $PY - "$TMP" <<'PY'
import json, math, re, struct, sys
tmp = sys.argv[1]
h = open(tmp + "/v2bin.h").read()
n = int(re.search(r"(?i)inference-header-content-length: *(\d+)", h).group(1))
body = open(tmp + "/v2bin", "rb").read()
hdr = json.loads(body[:n])
outs = {o["name"]: o for o in hdr["outputs"]}
off = n
vals = {}
for o in hdr["outputs"]:
    size = o["parameters"]["binary_data_size"]
    vals[o["name"]] = struct.unpack("<%df" % (size // 4), body[off:off + size])
    off += size
assert off == len(body), (off, len(body))
ref = json.load(open(tmp + "/v2fp32"))["outputs"][0]["data"]
assert len(vals["logits"]) == 24 and all(abs(a - b) <= 1e-6 * max(1, abs(b)) for a, b in zip(vals["logits"], ref))
p = vals["probabilities"]
assert abs(sum(p[:12]) - 1) < 1e-4 and abs(sum(p[12:]) - 1) < 1e-4
PY

# ---- metrics ----
req metrics 200 "$URL/metrics"
check "metrics parse as Prometheus text with the documented names" $PY - "$TMP/metrics" <<'PY'
import re, sys
lines = open(sys.argv[1]).read().splitlines()
sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? (-?[0-9.eE+-]+|\+Inf|NaN)$')
names, types = set(), {}
buckets = {}
for l in lines:
    if l.startswith("# TYPE "):
        _, _, n, t = l.split(" ", 3); types[n] = t; continue
    if l.startswith("# HELP ") or not l:
        continue
    m = sample.match(l)
    assert m, "bad line: " + l
    names.add(m.group(1))
    if m.group(1).endswith("_bucket"):
        # one list of cumulative counts per series: the labels other than le
        series = re.sub(r',?le="[^"]*"', "", m.group(2) or "")
        buckets.setdefault(m.group(1), {}).setdefault(series, []).append(float(m.group(5)))
for n in ["resnetd_requests_total", "resnetd_request_duration_seconds", "resnetd_queue_duration_seconds",
          "resnetd_inference_duration_seconds", "resnetd_batch_size", "resnetd_queue_depth", "resnetd_images_total"]:
    assert n in types, n
for h in ["resnetd_request_duration_seconds", "resnetd_queue_duration_seconds",
          "resnetd_inference_duration_seconds", "resnetd_batch_size"]:
    assert types[h] == "histogram"
    assert buckets[h + "_bucket"], h
    for b in buckets[h + "_bucket"].values():
        assert len(b) >= 5 and b == sorted(b) and b[-1] > 0, (h, b)
PY
check "metrics count the classify requests" grep -q 'resnetd_requests_total{route="/v1/classify",code="200"} [1-9]' "$TMP/metrics"

# ---- bad input: the right 4xx, a JSON error, and the daemon goes on ----
head -c 3000 $IMGS/dog.jpg >"$TMP/trunc.jpg"
{ head -c 2000 $IMGS/dog.jpg; head -c 20000 /dev/urandom; } >"$TMP/corrupt.jpg"
$PY - "$TMP/bomb.png" <<'PY'
import struct, sys, zlib
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))
PY
head -c 3000000 /dev/zero >"$TMP/big.bin"
bad empty 411 empty_body -X POST "$URL/v1/classify"
bad truncated 400 corrupt_image --data-binary @"$TMP/trunc.jpg" "$URL/v1/classify"
bad corrupt 400 corrupt_image --data-binary @"$TMP/corrupt.jpg" "$URL/v1/classify"
bad text 415 unsupported_image --data-binary 'hello, world' "$URL/v1/classify"
bad texttype 415 unsupported_media_type -H 'Content-Type: text/plain' --data-binary 'hello' "$URL/v1/classify"
bad bomb 413 image_too_large --data-binary @"$TMP/bomb.png" "$URL/v1/classify"
bad toolarge 413 body_too_large --data-binary @"$TMP/big.bin" "$URL/v1/classify"
bad noboundary 400 bad_request -H 'Content-Type: multipart/form-data' --data-binary 'x' "$URL/v1/classify"
bad nofile 400 no_file -F field=value "$URL/v1/classify"
bad badpart 400 corrupt_image -F a=@$IMGS/dog.jpg -F b=@"$TMP/trunc.jpg" "$URL/v1/classify"
check "badpart: the error names the file" grep -q 'trunc.jpg' "$TMP/badpart"
printf -- '--xx\r\nContent-Disposition: form-data; name="a"; filename="a.jpg"\r\n\r\nabc' >"$TMP/mp_trunc"
bad mptrunc 400 bad_request -H 'Content-Type: multipart/form-data; boundary=xx' --data-binary @"$TMP/mp_trunc" "$URL/v1/classify"
bad topkabc 400 bad_request --data-binary @$IMGS/dog.jpg "$URL/v1/classify?topk=abc"
bad topk0 400 bad_request --data-binary @$IMGS/dog.jpg "$URL/v1/classify?topk=0"
bad topkneg 400 bad_request --data-binary @$IMGS/dog.jpg "$URL/v1/classify?topk=-3"
bad nomodel 404 model_not_found --data-binary @$IMGS/dog.jpg "$URL/v1/classify?model=nope"
bad v2nomodel 404 model_not_found "$URL/v2/models/nope"
bad route 404 not_found "$URL/v3/anything"
bad method 405 method_not_allowed -X DELETE "$URL/v1/models"
bad method2 405 method_not_allowed "$URL/v1/classify"
check "405 carries Allow" grep -qi '^Allow: POST' "$TMP/method2.h"
bad v2json 400 bad_request --data-binary '{"inputs":[' "$URL/v2/models/basic/infer"
bad v2empty 411 empty_body -X POST "$URL/v2/models/basic/infer"
bad v2noinputs 400 bad_tensor --data-binary '{"inputs":[]}' "$URL/v2/models/basic/infer"
bad v2shape 400 bad_tensor --data-binary '{"inputs":[{"name":"input","datatype":"FP32","shape":[1,3,8,8],"data":[1]}]}' "$URL/v2/models/basic/infer"
bad v2count 400 bad_tensor --data-binary '{"inputs":[{"name":"input","datatype":"FP32","shape":[1,3,32,32],"data":[1,2,3]}]}' "$URL/v2/models/basic/infer"
bad v2dtype 400 bad_tensor --data-binary '{"inputs":[{"name":"input","datatype":"INT8","shape":[1],"data":[1]}]}' "$URL/v2/models/basic/infer"
bad v2b64 400 bad_tensor --data-binary '{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["not base64!"]}]}' "$URL/v2/models/basic/infer"
bad v2img 415 unsupported_image --data-binary '{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["aGVsbG8="]}]}' "$URL/v2/models/basic/infer"
bad v2out 400 bad_tensor --data-binary '{"inputs":[{"name":"input","datatype":"FP32","shape":[1,3,32,32],"data":[1]}],"outputs":[{"name":"nope"}]}' "$URL/v2/models/basic/infer"
bad v2hlen 400 bad_request -H 'Inference-Header-Content-Length: 99999' --data-binary '{}' "$URL/v2/models/basic/infer"
bad v2binsize 400 bad_tensor -H 'Inference-Header-Content-Length: 96' --data-binary '{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":9}}]}abcd' "$URL/v2/models/basic/infer"

req after 200 --data-binary @$IMGS/dog.jpg "$URL/v1/classify"
check "still serving after the bad input, same answer" test "$(jq -c . "$TMP/after")" == "$(jq -c . "$TMP/classify")"
check "daemon process alive" kill -0 "$PID"
check "no 500 in the access log" bash -c "! grep -q '\" 500 ' '$TMP/log'"
check "access log line with status, bytes, request id, images and each phase's time" \
    grep -qE '"POST /v1/classify" 200 [0-9]+B id=[0-9a-f]{32} images=1 read_ms=[0-9.]+ preprocess_ms=[0-9.]+ queue_ms=[0-9.]+ inference_ms=[0-9.]+ reply_ms=[0-9.]+ total_ms=[0-9.]+' "$TMP/log"

# ---- SIGTERM: exit 0 ----
kill -TERM "$PID"
rc=0; wait "$PID" || rc=$?
PID=
check_eq "SIGTERM: exit status" "$rc" 0

# ---- start-up failures exit 2 before binding ----
rc=0; "$BIN" --model "$M1" --max-batch 0 2>"$TMP/e1" || rc=$?
check_eq "bad flag: exit 2" "$rc" 2
check "bad flag: message names it" grep -q -- '--max-batch' "$TMP/e1"
rc=0; "$BIN" --model "$TMP/trunc.jpg" --listen 127.0.0.1:$PORT 2>"$TMP/e2" || rc=$?
check_eq "unloadable model: exit 2" "$rc" 2
check "unloadable model: message names the model" grep -q 'model trunc' "$TMP/e2"
rc=0; "$BIN" --help >"$TMP/help" || rc=$?
check "--help lists every flag" bash -c "[ $rc = 0 ] && for f in model listen threads workers max-batch max-delay-us max-queue max-body-bytes max-pixels request-timeout-ms log-format; do grep -q -- \"--\$f\" '$TMP/help' || exit 1; done"

# ---- JSON logs ----
PORT=$(free_port)
"$BIN" --model "$M1" --listen 127.0.0.1:$PORT --log-format json 2>"$TMP/jlog" &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/v2/health/ready" >/dev/null && break; sleep 0.1; done
curl -s --data-binary @$IMGS/dog.jpg "http://127.0.0.1:$PORT/v1/classify" >/dev/null
kill -TERM "$PID"; wait "$PID"; PID=
check "--log-format json: every line is JSON, with an access line" bash -c \
    "jq -c . '$TMP/jlog' >/dev/null && jq -s -e 'any(.[]; .path==\"/v1/classify\" and .status==200 and .images==1)' '$TMP/jlog' >/dev/null"
tap_done
