#!/usr/bin/env bash
# KServe v2 (Open Inference Protocol) conformance, checked from the spec with
# a small client of our own (python3 http.client, no numpy):
# - versions: a model has the versions its metadata lists ("1"); a path
#   naming another is a 404 that names the ones there are, on metadata,
#   readiness and infer alike;
# - inputs are matched by name (400 naming the expected ones otherwise);
# - a client that fills every input the metadata lists, with values of the
#   listed shape (as perf_analyzer does), sends a valid request; the
#   alternative BYTES input described in parameters works too;
# - a request without "outputs" gets exactly the outputs the metadata lists,
#   each with the listed shape; the extra outputs in parameters are served;
# - the preprocessing the metadata states (parameters.preprocess_*) is the
#   one the model applies: an FP32 tensor built from it by the client gives
#   the logits of the same image sent as BYTES (the file's resnet.preprocess
#   set here to caffe-style BGR minus the mean, at 64 pixels);
# - binary tensor data: a binary BYTES input with a binary output;
# - a compressed body (Content-Encoding other than identity) is a 415 that
#   says so, with Accept-Encoding, on every POST route.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
PY=/usr/bin/python3
daemon_scratch

# The bottleneck fixture with the caffe-style preprocessing of the default
# model (Keras ResNet-50) in its metadata, at a small size.
PRE='{"resize":80,"crop":64,"scale":1,"mean":[103.939,116.779,123.68],"std":[1,1,1],"order":"BGR"}'
$PY - tests/fixtures/parity/bottleneck.safetensors "$TMP/caffe.safetensors" "$PRE" <<'PY'
import json, struct, sys
src, dst, pre = sys.argv[1:]
raw = open(src, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
head = json.loads(raw[8:8 + n])
head.setdefault("__metadata__", {})["resnet.preprocess"] = pre
h = json.dumps(head, separators=(",", ":")).encode()
h += b" " * (-len(h) % 8)
open(dst, "wb").write(struct.pack("<Q", len(h)) + h + raw[8 + n:])
PY

PORT=$(free_port)
URL=http://127.0.0.1:$PORT
"$RESNETD" --model "$TMP/caffe.safetensors" --model tests/fixtures/parity/basic.safetensors \
    --listen 127.0.0.1:$PORT 2>"$TMP/log" &
PID=$!
wait_ready "$URL"
check "daemon becomes ready" curl -sf "$URL/v2/health/ready" -o /dev/null

$PY - "$PORT" /usr/share/darknet/data/dog.jpg "$PRE" <<'PY'
import base64, gzip, http.client, json, struct, sys
from PIL import Image

port, dog, pre = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
M = "caffe"
jpeg = open(dog, "rb").read()
failed = 0

def tap(ok, what):
    global failed
    print(("ok - " if ok else "not ok - ") + what)
    failed |= not ok

def call(method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data

def infer(req, model=M, path=None, headers=None):
    st, h, data = call("POST", path or f"/v2/models/{model}/infer", json.dumps(req), headers)
    try:
        return st, json.loads(data)
    except ValueError:
        return st, {"raw": data, "headers": h}

def bytes_input(n=1):
    return {"name": "image", "datatype": "BYTES", "shape": [n],
            "data": [base64.b64encode(jpeg).decode()] * n}

# ---- versions ----
st, _, body = call("GET", f"/v2/models/{M}")
meta = json.loads(body)
tap(st == 200 and meta["versions"] == ["1"], "metadata lists version \"1\"")
st, _, _ = call("GET", f"/v2/models/{M}/versions/1")
tap(st == 200, "GET .../versions/1: 200")
st, _, _ = call("GET", f"/v2/models/{M}/versions/1/ready")
tap(st == 200, "GET .../versions/1/ready: 200")
for suffix in ("", "/ready"):
    st, _, body = call("GET", f"/v2/models/{M}/versions/2{suffix}")
    err = json.loads(body).get("error", "")
    tap(st == 404 and "version '2'" in err and '["1"]' in err,
        f"GET .../versions/2{suffix}: 404 naming the versions there are ({st}: {err})")
st, out = infer({"inputs": [bytes_input()]}, path=f"/v2/models/{M}/versions/2/infer")
tap(st == 404 and '["1"]' in out.get("error", ""), f"POST .../versions/2/infer: 404 ({st})")
st, out = infer({"inputs": [bytes_input()]}, path=f"/v2/models/{M}/versions/1/infer")
tap(st == 200 and out["model_version"] == "1", "POST .../versions/1/infer: 200, model_version 1")

# ---- inputs by name ----
st, out = infer({"inputs": [dict(bytes_input(), name="pixels")]})
err = out.get("error", "")
tap(st == 400 and "'pixels'" in err and '"input"' in err and '"image"' in err,
    f"an input named 'pixels': 400 naming the inputs ({err})")
st, out = infer({"inputs": [{k: v for k, v in bytes_input().items() if k != "name"}]})
tap(st == 400 and "name" in out.get("error", ""), "an input without a name: 400")
st, out = infer({"inputs": [dict(bytes_input(), name="input")]})
tap(st == 400 and "FP32" in out.get("error", ""), f"'input' sent as BYTES: 400 ({out.get('error')})")

# ---- a generic client: every listed input, zeros of the listed shape ----
inputs = []
for t in meta["inputs"]:
    shape = [1 if d < 0 else d for d in t["shape"]]
    count = 1
    for d in shape:
        count *= d
    tap(t["datatype"] == "FP32", f"listed input {t['name']} is FP32, fillable with any numbers")
    inputs.append({"name": t["name"], "datatype": t["datatype"], "shape": shape,
                   "data": [0.0] * count})
st, out = infer({"inputs": inputs})
tap(st == 200, f"a request filling every listed input ({len(inputs)}): 200 ({out.get('error')})")
listed_out = {t["name"]: t for t in meta["outputs"]}
got = {t["name"]: t for t in out.get("outputs", [])}
tap(sorted(got) == sorted(listed_out),
    f"without \"outputs\", exactly the listed outputs come back ({sorted(got)} vs {sorted(listed_out)})")
tap(all(got[k]["shape"] == [1] + listed_out[k]["shape"][1:] and got[k]["datatype"] == listed_out[k]["datatype"]
        for k in got if k in listed_out), "each with the listed datatype and shape")
st, out = infer({"inputs": inputs, "outputs": [{"name": n} for n in listed_out]})
tap(st == 200 and len(out["outputs"]) == len(listed_out), "naming every listed output: 200")

alt = json.loads(meta["parameters"]["alternative_inputs"])
tap([a["name"] for a in alt] == ["image"] and alt[0]["datatype"] == "BYTES",
    "parameters.alternative_inputs describes the BYTES input 'image'")
st, out = infer({"inputs": [bytes_input(2)]})
tap(st == 200 and out["outputs"][0]["shape"][0] == 2, "the alternative input serves 2 images")

extra = json.loads(meta["parameters"]["extra_outputs"])
tap(len(extra) > 3, f"parameters.extra_outputs lists the layers ({len(extra)})")
bad = []
for t in extra:
    st, out = infer({"inputs": [bytes_input()], "outputs": [{"name": t["name"]}]})
    o = out.get("outputs", [{}])[0]
    if st != 200 or o.get("name") != t["name"] or o.get("shape") != [1] + t["shape"][1:]:
        bad.append((t["name"], st, o.get("shape"), t["shape"]))
tap(not bad, f"every extra output is served alone with its listed shape ({bad[:3]})")

# ---- preprocessing from the metadata ----
p = meta["parameters"]
fl = lambda s: [float(v) for v in s.split(",")]
tap((p["preprocess_resize"], p["preprocess_crop"], p["preprocess_order"], p["preprocess_layout"])
    == (pre["resize"], pre["crop"], pre["order"], "NCHW")
    and fl(p["preprocess_mean"]) == pre["mean"] and fl(p["preprocess_std"]) == [1.0, 1.0, 1.0]
    and float(p["preprocess_scale"]) == 1.0,
    "parameters.preprocess_* state the file's resnet.preprocess")
st, _, body = call("GET", "/v2/models/basic")
q = json.loads(body)["parameters"]
tap(q["preprocess_order"] == "RGB" and abs(float(q["preprocess_scale"]) - 1 / 255) < 1e-9
    and fl(q["preprocess_mean"]) == [0.485, 0.456, 0.406] and fl(q["preprocess_std"]) == [0.229, 0.224, 0.225],
    "a model without resnet.preprocess states torchvision's normalisation")

# torchvision's eval transform, by the metadata: shorter side to resize
# (PIL's antialiased bilinear), center crop, scale, mean, std, order.
img = Image.open(dog).convert("RGB")
w, h = img.size
r, c = p["preprocess_resize"], p["preprocess_crop"]
nw, nh = (r, int(r * h / w)) if w <= h else (int(r * w / h), r)
img = img.resize((nw, nh), Image.BILINEAR)
left, top = int(round((nw - c) / 2.0)), int(round((nh - c) / 2.0))
img = img.crop((left, top, left + c, top + c))
px = list(img.getdata())
order = [2, 1, 0] if p["preprocess_order"] == "BGR" else [0, 1, 2]
scale, mean, std = float(p["preprocess_scale"]), fl(p["preprocess_mean"]), fl(p["preprocess_std"])
x = [(v[order[ch]] * scale - mean[ch]) / std[ch] for ch in range(3) for v in px]
st, fp = infer({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, c, c], "data": x}],
                "outputs": [{"name": "logits"}]})
st2, by = infer({"inputs": [bytes_input()], "outputs": [{"name": "logits"}]})
a, b = fp["outputs"][0]["data"], by["outputs"][0]["data"]
diff = max(abs(u - v) for u, v in zip(a, b))
span = max(abs(v) for v in b)
tap(st == 200 and st2 == 200 and a.index(max(a)) == b.index(max(b)) and diff <= 0.02 * span,
    f"an FP32 input built from the metadata gives the BYTES input's logits (max diff {diff:.4g} of {span:.4g})")

# ---- binary tensor data extension: binary BYTES in, binary classification out ----
head = json.dumps({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                               "parameters": {"binary_data_size": 4 + len(jpeg)}}],
                   "outputs": [{"name": "probabilities",
                                "parameters": {"binary_data": True, "classification": 2}}]}).encode()
st, hd, data = call("POST", f"/v2/models/{M}/infer", head + struct.pack("<I", len(jpeg)) + jpeg,
                    {"Inference-Header-Content-Length": str(len(head)),
                     "Content-Type": "application/octet-stream"})
hl = int(hd.get("inference-header-content-length", "-1"))
ok = st == 200 and hl > 0
if ok:
    o = json.loads(data[:hl])["outputs"][0]
    blob = data[hl:]
    strs, i = [], 0
    while i + 4 <= len(blob):
        n = struct.unpack("<I", blob[i:i + 4])[0]
        strs.append(blob[i + 4:i + 4 + n].decode())
        i += 4 + n
    ok = (o["datatype"] == "BYTES" and o["shape"] == [1, 2] and i == len(blob)
          and o["parameters"]["binary_data_size"] == len(blob) and len(strs) == 2
          and strs[0].split(":")[1] == str(b.index(max(b))))
tap(ok, "binary BYTES input, binary classification output: lengths and top class agree")

# ---- Content-Encoding ----
for path, body in ((f"/v2/models/{M}/infer", json.dumps({"inputs": [bytes_input()]}).encode()),
                   ("/v1/classify", jpeg), ("/v1/embed", jpeg), ("/v1/inspect", jpeg)):
    st, hd, data = call("POST", path, gzip.compress(body), {"Content-Encoding": "gzip"})
    e = json.loads(data)
    tap(st == 415 and e["code"] == "unsupported_media_type" and "Content-Encoding gzip" in e["error"]
        and hd.get("accept-encoding") == "identity",
        f"{path}, gzip body: 415 naming Content-Encoding, Accept-Encoding: identity ({st} {e.get('error')})")
st, _, _ = call("POST", "/v1/classify", jpeg, {"Content-Encoding": "identity"})
tap(st == 200, "Content-Encoding: identity is read as sent: 200")
sys.exit(1 if failed else 0)
PY
check "the daemon served on" curl -sf "$URL/v2/health/ready" -o /dev/null
check "no 500 in the access log" bash -c "! grep -q '\" 500 ' '$TMP/log'"
kill -TERM "$PID"; wait "$PID"; PID=
tap_done
