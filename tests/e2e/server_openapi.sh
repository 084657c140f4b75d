#!/usr/bin/env bash
# GET /openapi.json: an OpenAPI 3 description of every route, whose $refs all
# resolve, and real replies of every route (successes and errors) match the
# schema it gives for their status and content type (python3-jsonschema).
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
BIN=$RESNETD
PY=/usr/bin/python3
M1=tests/fixtures/parity/bottleneck.safetensors
daemon_scratch

if ! $PY -c 'import jsonschema' 2>/dev/null; then
    not_ok "python3-jsonschema is installed (scripts/install-deps.sh)"
    tap_done
fi
PORT=$(free_port)
"$BIN" --model "$M1" --listen 127.0.0.1:$PORT 2>"$TMP/log" &
PID=$!
wait_ready "http://127.0.0.1:$PORT"
check "daemon becomes ready" curl -sf "http://127.0.0.1:$PORT/v2/health/ready" -o /dev/null
check "/openapi.json is the file in the tree" \
    bash -c "curl -s http://127.0.0.1:$PORT/openapi.json | cmp -s - server/openapi.json"

$PY - "$PORT" <<'PY' || not_ok "the reply checks ran to their end"
import base64, http.client, json, re, sys, uuid
import jsonschema

port = int(sys.argv[1])
dog = open("/usr/share/darknet/data/dog.jpg", "rb").read()
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

def request(method, url, body=None, headers=None):
    global conn
    try:
        conn.request(method, url, body=body, headers=headers or {})
        r = conn.getresponse()
    except (http.client.HTTPException, OSError):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request(method, url, body=body, headers=headers or {})
        r = conn.getresponse()
    data = r.read()
    if r.getheader("Connection", "").lower() == "close":
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    return r.status, r.getheader("Content-Type", ""), data

def tap(ok, desc):
    print(("ok - " if ok else "not ok - ") + desc)

status, ctype, data = request("GET", "/openapi.json")
doc = json.loads(data)
tap(status == 200 and doc.get("openapi", "").startswith("3."), "GET /openapi.json: 200, OpenAPI 3")
refs = set(re.findall(r'"\$ref": *"#/components/schemas/([A-Za-z0-9]+)"', data.decode()))
missing = sorted(r for r in refs if r not in doc["components"]["schemas"])
tap(not missing, "every $ref resolves (missing: %s)" % missing)

def multipart(files):
    b = uuid.uuid4().hex
    out = b""
    for name, content in files:
        out += (b"--%s\r\nContent-Disposition: form-data; name=\"f\"; filename=\"%s\"\r\n"
                b"Content-Type: image/jpeg\r\n\r\n" % (b.encode(), name.encode())) + content + b"\r\n"
    return out + b"--%s--\r\n" % b.encode(), {"Content-Type": "multipart/form-data; boundary=" + b}

mp_body, mp_hdr = multipart([("a.jpg", dog), ("b.jpg", dog)])
mp1_body, mp1_hdr = multipart([("a.jpg", dog)])
v2_bytes = json.dumps({"id": "x", "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                                              "data": [base64.b64encode(dog).decode()]}],
                       "outputs": [{"name": "probabilities", "parameters": {"classification": 3}},
                                   {"name": "logits"}]})
v2_fp32 = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 32, 32],
                                  "data": [0.5] * 3072}]})
# (method, url, path template, body, headers, expected status)
cases = [
    ("POST", "/v1/classify?topk=3", "/v1/classify", dog, {"Content-Type": "image/jpeg"}, 200),
    ("POST", "/v1/classify", "/v1/classify", mp_body, mp_hdr, 200),
    ("POST", "/v1/classify?model=nope", "/v1/classify", dog, {}, 404),
    ("POST", "/v1/classify?topk=0", "/v1/classify", dog, {}, 400),
    ("POST", "/v1/classify", "/v1/classify", b"hello", {}, 415),
    ("POST", "/v1/classify", "/v1/classify", b"", {}, 411),
    ("POST", "/v1/classify", "/v1/classify", b"x", {"Content-Type": "text/plain"}, 415),
    ("GET", "/v1/classify", "/v1/classify", None, {}, 405),
    ("POST", "/v1/embed", "/v1/embed", dog, {}, 200),
    ("POST", "/v1/embed", "/v1/embed", mp_body, mp_hdr, 200),
    ("POST", "/v1/embed?layer=layer2.0", "/v1/embed", dog, {}, 200),
    ("POST", "/v1/embed?layer=layer2&pool=none", "/v1/embed", mp_body, mp_hdr, 200),
    ("POST", "/v1/embed?layer=nope", "/v1/embed", dog, {}, 400),
    ("POST", "/v1/embed?model=a%00", "/v1/embed", dog, {}, 400),
    ("POST", "/v1/inspect?topk=2", "/v1/inspect", dog, {}, 200),
    ("POST", "/v1/inspect?lesions=0", "/v1/inspect", mp1_body, mp1_hdr, 200),
    ("POST", "/v1/inspect?format=png&class=1", "/v1/inspect", dog, {}, 200),
    ("POST", "/v1/inspect?format=bmp", "/v1/inspect", dog, {}, 400),
    ("POST", "/v1/inspect", "/v1/inspect", mp_body, mp_hdr, 400),
    ("GET", "/v1/inspect", "/v1/inspect", None, {}, 405),
    ("GET", "/", "/", None, {}, 200),
    ("GET", "/ui/app.js", "/ui/{asset}", None, {}, 200),
    ("GET", "/ui/style.css", "/ui/{asset}", None, {}, 200),
    ("GET", "/ui/icon.svg", "/ui/{asset}", None, {}, 200),
    ("GET", "/v1/models", "/v1/models", None, {}, 200),
    ("DELETE", "/v1/models", "/v1/models", None, {}, 405),
    ("GET", "/metrics", "/metrics", None, {}, 200),
    ("GET", "/openapi.json", "/openapi.json", None, {}, 200),
    ("GET", "/v2", "/v2", None, {}, 200),
    ("GET", "/v2/health/live", "/v2/health/live", None, {}, 200),
    ("GET", "/v2/health/ready", "/v2/health/ready", None, {}, 200),
    ("GET", "/v2/models/bottleneck", "/v2/models/{model}", None, {}, 200),
    ("GET", "/v2/models/nope", "/v2/models/{model}", None, {}, 404),
    ("GET", "/v2/models/a%20b", "/v2/models/{model}", None, {}, 400),
    ("GET", "/v2/models/bottleneck/versions/1", "/v2/models/{model}/versions/{version}", None, {}, 200),
    ("GET", "/v2/models/bottleneck/ready", "/v2/models/{model}/ready", None, {}, 200),
    ("GET", "/v2/models/bottleneck/versions/1/ready", "/v2/models/{model}/versions/{version}/ready", None, {}, 200),
    ("POST", "/v2/models/bottleneck/infer", "/v2/models/{model}/infer", v2_bytes, {}, 200),
    ("POST", "/v2/models/bottleneck/infer", "/v2/models/{model}/infer", v2_fp32, {}, 200),
    ("POST", "/v2/models/bottleneck/infer", "/v2/models/{model}/infer", '{"inputs":[', {}, 400),
    ("POST", "/v2/models/nope/infer", "/v2/models/{model}/infer", v2_fp32, {}, 404),
    ("POST", "/v2/models/bottleneck/versions/1/infer", "/v2/models/{model}/versions/{version}/infer", v2_fp32, {}, 200),
]
served = set()
for method, url, tmpl, body, hdr, want in cases:
    status, ctype, data = request(method, url, body, hdr)
    desc = "%s %s -> %d" % (method, url, want)
    if status != want:
        tap(False, desc + " (got %d: %s)" % (status, data[:200]))
        continue
    op = doc["paths"].get(tmpl, {}).get(method.lower())
    if op is None:  # a 405: the route is described, this method is not
        op = next(iter(doc["paths"][tmpl].values()))
    resp = op["responses"].get(str(status))
    if resp is None:
        tap(False, desc + ": status not described")
        continue
    media = ctype.split(";")[0].strip()
    content = resp.get("content", {})
    if media not in content:
        tap(False, desc + ": content type %s not described (%s)" % (media, list(content)))
        continue
    served.add(tmpl)
    if media != "application/json":
        tap(len(data) > 0, desc + ": %s body" % media)
        continue
    schema = {"allOf": [content[media]["schema"]], "components": doc["components"]}
    errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(json.loads(data))]
    tap(not errors, desc + ": the reply matches its schema" + (" (%s)" % errors[:2] if errors else ""))
undescribed = sorted(set(doc["paths"]) - served)
tap(not undescribed, "every described path was exercised (left: %s)" % undescribed)
# the schemas are strict enough to catch a wrong reply
bad = {"allOf": [{"$ref": "#/components/schemas/ClassifyResponse"}], "components": doc["components"]}
tap(not jsonschema.Draft7Validator(bad).is_valid({"model": "m", "predictions": [{"index": 1}]}),
    "a classify reply missing label and score fails its schema")
PY
check "daemon process alive" kill -0 "$PID"
kill -TERM "$PID"; wait "$PID"; PID=
tap_done
