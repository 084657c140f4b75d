#!/usr/bin/env bash
# Where a request's time went, as an operator sees it: the X-Request-Id on
# every reply (the client's when valid, else a new one), the JSON access
# line with its ids, W3C trace, route and phase times, and the /metrics
# exposition (linted by promtool) with per-phase histograms by model and
# route and refusals by reason; then the Grafana dashboard and the alert
# rules of deploy/, checked against the metrics this daemon exports.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
BIN=$RESNETD
PY=/usr/bin/python3
M1=tests/fixtures/parity/bottleneck.safetensors
IMG=/usr/share/darknet/data/dog.jpg
daemon_scratch

TRACE=4bf92f3577b34da6a3ce929d0e0e4736
PARENT=00f067aa0ba902b7

# A PNG slow to decode (~0.5 s, every row Paeth-filtered), to hold the only
# worker while the queue (--max-queue 1) fills (as server_refusals.sh does).
$PY - "$TMP/big.png" <<'PY'
import struct, sys, zlib
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
w = h = 6000
row = b"\4" + bytes((x * 7) & 255 for x in range(w * 3))
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                              + chunk(b"IDAT", zlib.compress(row * h, 6)) + chunk(b"IEND", b""))
PY
head -c $((9 * 1024 * 1024)) /dev/zero >"$TMP/huge.bin"

PORT=$(free_port)
URL=http://127.0.0.1:$PORT
"$BIN" --model "$M1" --listen 127.0.0.1:$PORT --workers 1 --threads 1 --max-queue 1 \
    --max-batch 1 --max-body-bytes 8M --log-format json 2>"$TMP/log" &
PID=$!
check "daemon becomes ready" wait_ready "$URL"

# req NAME CURL-ARGS...: the reply's headers in $TMP/NAME.h, its body in $TMP/NAME
req() { local n=$1; shift; curl -s -D "$TMP/$n.h" -o "$TMP/$n" "$@"; }
# rid NAME: the X-Request-Id header of that reply
rid() { tr -d '\r' <"$TMP/$1.h" | sed -n 's/^[Xx]-[Rr]equest-[Ii]d: //p'; }
code() { head -1 "$TMP/$1.h" | awk '{print $2}'; }

# ---- X-Request-Id on every reply ----
req traced -H "X-Request-Id: obs-1.a_b:c" -H "traceparent: 00-$TRACE-$PARENT-01" \
    --data-binary @$IMG "$URL/v1/classify?topk=2"
check_eq "classify: 200" "$(code traced)" 200
check_eq "classify: the client's X-Request-Id echoed" "$(rid traced)" "obs-1.a_b:c"
req plain --data-binary @$IMG "$URL/v1/classify"
check "no X-Request-Id sent: one made up, 32 hex" bash -c "[[ '$(rid plain)' =~ ^[0-9a-f]{32}$ ]]"
req plain2 "$URL/v1/models"
check "two made-up ids differ" test "$(rid plain)" != "$(rid plain2)"
req hostile -H 'X-Request-Id: bad id"<x>' -H "traceparent: 00-${TRACE^^}-$PARENT-01" "$URL/v1/models"
check "invalid X-Request-Id: replaced by a made-up one" bash -c "[[ '$(rid hostile)' =~ ^[0-9a-f]{32}$ ]]"
long=$(printf 'a%.0s' $(seq 129))
req long -H "X-Request-Id: $long" "$URL/v1/models"
check "129-character X-Request-Id: replaced" bash -c "[[ '$(rid long)' =~ ^[0-9a-f]{32}$ ]]"
req e404 -H "X-Request-Id: obs-404" "$URL/nope?x=1"
check_eq "404: X-Request-Id echoed" "$(code e404) $(rid e404)" "404 obs-404"
req e405 -H "X-Request-Id: obs-405" "$URL/v1/classify"
check_eq "405: X-Request-Id echoed" "$(code e405) $(rid e405)" "405 obs-405"
req e415 -H "X-Request-Id: obs-415" -H 'Content-Type: text/plain' --data 'x' "$URL/v1/classify"
check_eq "415 (refused on its headers): X-Request-Id echoed" "$(code e415) $(rid e415)" "415 obs-415"
req e400 -H "X-Request-Id: obs-400" -H 'Transfer-Encoding: gzip' --data 'x' "$URL/v1/classify"
check_eq "400 from the framing checks: X-Request-Id echoed" "$(code e400) $(rid e400)" "400 obs-400"
req e413 -H "X-Request-Id: obs-413" --data-binary @"$TMP/huge.bin" "$URL/v1/classify"
check_eq "413 (Content-Length over --max-body-bytes): X-Request-Id echoed" \
    "$(code e413) $(rid e413)" "413 obs-413"
printf '{"id":"body-id","inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["%s"]}]}' \
    "$(base64 -w0 $IMG)" >"$TMP/v2.json"
req v2 -H "X-Request-Id: hdr-id" --data-binary @"$TMP/v2.json" "$URL/v2/models/bottleneck/infer"
check_eq "v2 infer: 200, the header's id in the header, the body's id in the body" \
    "$(code v2) $(rid v2) $(jq -r .id "$TMP/v2")" "200 hdr-id body-id"

# ---- a 503: the queue (--max-queue 1) full while the worker decodes ----
# One upload decoding, one queued, then the probe; on a loaded machine the
# window can close first (the probe is then served), so up to 3 tries.
n503=0
for attempt in 1 2 3; do
    curl -s -o /dev/null --data-binary @"$TMP/big.png" "$URL/v1/classify" &
    A=$!
    sleep 0.1
    curl -s -o /dev/null --data-binary @"$TMP/big.png" "$URL/v1/classify" &
    B=$!
    for _ in $(seq 100); do
        curl -s "$URL/metrics" | grep -qx 'resnetd_queue_depth 1' && break
        sleep 0.02
    done
    req e503 -H "X-Request-Id: obs-503-$attempt" --data-binary @$IMG "$URL/v1/classify"
    wait $A $B
    [ "$(code e503)" = 503 ] && { n503=1; break; }
    echo "# attempt $attempt: the queue drained before the probe ($(code e503))"
done
check_eq "503 queue full: X-Request-Id echoed" "$(code e503) $(rid e503)" "503 obs-503-$attempt"

# ---- /metrics ----
curl -s "$URL/metrics" >"$TMP/metrics"
promtool check metrics <"$TMP/metrics" >"$TMP/lint" 2>&1
rc=$?
check "promtool check metrics: no lint problem" bash -c "[ $rc = 0 ] && [ ! -s '$TMP/lint' ]"
sed 's/^/# promtool: /' "$TMP/lint"
# val SAMPLE: the value of that exact sample ("" when absent)
val() { awk -v k="$1" '$1 == k {print $2}' "$TMP/metrics"; }
L='model="bottleneck",route="/v1/classify"'
for h in resnetd_request_read_seconds resnetd_preprocess_seconds resnetd_queue_duration_seconds \
         resnetd_inference_image_seconds resnetd_reply_seconds resnetd_request_duration_seconds; do
    check "$h{$L} moved" bash -c "[ '$(val "${h}_count{$L}")' -ge 2 ] 2>/dev/null"
    check "$h{$L}: +Inf bucket is the count" \
        test "$(val "${h}_bucket{$L,le=\"+Inf\"}")" = "$(val "${h}_count{$L}")"
done
check "resnetd_inference_duration_seconds{model=\"bottleneck\"} moved (per batch)" \
    bash -c "[ '$(val 'resnetd_inference_duration_seconds_count{model="bottleneck"}')' -ge 3 ] 2>/dev/null"
check "v2 infer has its own route label" \
    bash -c "[ '$(val 'resnetd_preprocess_seconds_count{model="bottleneck",route="/v2/models/{m}/infer"}')' = 1 ]"
check_eq "rejected: the one 413" "$(val 'resnetd_rejected_total{reason="too_large"}')" 1
check_eq "rejected: the 503 queue full" "$(val 'resnetd_rejected_total{reason="queue_full"}')" "$n503"
check_eq "rejected: the 415" "$(val 'resnetd_rejected_total{reason="unsupported_media_type"}')" 1
check_eq "rejected: the 404" "$(val 'resnetd_rejected_total{reason="not_found"}')" 1
check_eq "rejected: the 405" "$(val 'resnetd_rejected_total{reason="method_not_allowed"}')" 1
check_eq "rejected: the 400" "$(val 'resnetd_rejected_total{reason="bad_request"}')" 1
check_eq "in flight: the /metrics request itself" "$(val resnetd_requests_in_flight)" 1
cp "$TMP/metrics" "$TMP/metrics.live"

kill -TERM "$PID"; wait "$PID"; PID=

# ---- the JSON access lines ----
check "every log line is JSON; the access lines have what an operator needs" \
    $PY - "$TMP/log" "$TRACE" "$PARENT" <<'PY'
import json, re, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
trace, parent = sys.argv[2], sys.argv[3]
acc = [l for l in lines if "status" in l]
by_id = {l["request_id"]: l for l in acc}
phases = ["read_ms", "preprocess_ms", "queue_ms", "inference_ms", "reply_ms", "total_ms"]
for l in acc:
    for k in ["request_id", "method", "route", "path", "status", "bytes", "images"] + phases:
        assert k in l, (k, l)
    assert all(isinstance(l[p], (int, float)) and l[p] >= 0 for p in phases), l
# a classify with the client's id and trace
c = by_id["obs-1.a_b:c"]
assert (c["method"], c["route"], c["path"], c["model"], c["status"], c["images"]) == \
    ("POST", "/v1/classify", "/v1/classify", "bottleneck", 200, 1), c
assert (c["trace_id"], c["parent_id"]) == (trace, parent), c
assert c["bytes"] > 0 and c["preprocess_ms"] > 0 and c["inference_ms"] > 0 and c["read_ms"] > 0, c
# one image: its phases follow each other, so they fit in the total
assert sum(c[p] for p in phases[:-1]) <= c["total_ms"] + 0.01, c
# an error: no model, the route it fell to, the error said
e = by_id["obs-404"]
assert (e["status"], e["route"], e["path"], e["images"]) == (404, "other", "/nope", 0), e
assert "no route" in e["error"] and "model" not in e and "trace_id" not in e, e
assert by_id["obs-413"]["status"] == 413 and "over the limit" in by_id["obs-413"]["error"]
# v2 infer: the route's template, the path as sent
v = by_id["hdr-id"]
assert (v["route"], v["path"], v["status"]) == ("/v2/models/{m}/infer", "/v2/models/bottleneck/infer", 200), v
# the replaced id and the ignored traceparent are logged as such
r = [l for l in acc if "bad id" not in json.dumps(l) and "request_id_note" in l and "character 4 (0x20)" in l["request_id_note"]]
assert len(r) == 1 and re.fullmatch(r"[0-9a-f]{32}", r[0]["request_id"]), r
assert "trace_id" not in r[0] and "trace-id" in r[0]["trace_note"], r
assert any("longer than 128" in l.get("request_id_note", "") for l in acc)
# a request without X-Request-Id gets no note
assert sum("request_id_note" in l for l in acc) == 2, [l for l in acc if "request_id_note" in l]
PY

# ---- deploy/: the alert rules and the Grafana dashboard ----
RULES=deploy/prometheus/resnetd-alerts.yml
DASH=deploy/grafana/resnetd.json
check "promtool check rules $RULES" promtool check rules "$RULES"
# Every metric the dashboard and the rules name must be one this daemon
# exports (its # TYPE lines; a histogram's _bucket, _sum and _count too).
# Two are exported only by features that are not part of every build yet:
# resnetd_auth_failures_total (API keys) and
# resnetd_tls_cert_expiry_timestamp_seconds (native TLS). They may appear
# only in the dashboard row and the rule group kept for those features, and
# are checked like the others as soon as /metrics has them.
check "the dashboard and the rules use only metrics resnetd exports" \
    $PY - "$TMP/metrics.live" "$DASH" "$RULES" <<'PY'
import json, re, sys
types = {}
for l in open(sys.argv[1]):
    if l.startswith("# TYPE "):
        _, _, n, t = l.split()
        types[n] = t
def exported(n):
    if n in types:
        return True
    base = re.sub(r"_(bucket|sum|count)$", "", n)
    return base != n and types.get(base) == "histogram"
LATER = {"resnetd_auth_failures_total": "API keys", "resnetd_tls_cert_expiry_timestamp_seconds": "native TLS"}
BUILTIN = {"up"}  # Prometheus's own: a scrape that failed
names = re.compile(r"\bresnetd_[a-zA-Z0-9_:]+")
bad = []
def check(where, expr, later_ok):
    assert expr.strip(), where
    for n in names.findall(expr):
        if exported(n):
            continue
        if n in LATER and later_ok:
            print("# skipped until %s exports it: %s (%s)" % (LATER[n], n, where))
            continue
        bad.append("%s: %s" % (where, n))
    # a selector of any other metric than resnetd's and Prometheus's own
    for tok in re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{\[]", expr):
        if not tok.startswith("resnetd_") and tok not in BUILTIN and tok not in ("by", "without"):
            bad.append("%s: unknown metric %s" % (where, tok))
dash = json.load(open(sys.argv[2]))
later_row = False
n_exprs = 0
for p in dash["panels"]:
    if p["type"] == "row":
        later_row = "TLS" in p["title"] or "API keys" in p["title"]
        continue
    assert p.get("targets"), p["title"]
    for t in p["targets"]:
        check("panel " + p["title"], t["expr"], later_row); n_exprs += 1
for v in dash["templating"]["list"]:
    if v["type"] == "query":
        check("variable " + v["name"], v["query"]["query"], False); n_exprs += 1
# the rules file, read without a YAML library: each "expr:" and its block
group, lines = None, open(sys.argv[3]).read().splitlines()
for i, l in enumerate(lines):
    m = re.match(r"\s*- name: (\S+)", l)
    if m:
        group = m.group(1)
    m = re.match(r"(\s*)expr: ?(.*)", l)
    if m:
        expr, ind = m.group(2), len(m.group(1))
        if expr.strip() == "|":
            expr = ""
            for k in lines[i + 1:]:
                if k.strip() and len(k) - len(k.lstrip()) <= ind:
                    break
                expr += k + "\n"
        check("rule group " + group, expr, group == "resnetd-tls"); n_exprs += 1
assert n_exprs >= 20, n_exprs
# the panels an operator asks for are there
titles = " | ".join(p["title"] for p in dash["panels"])
for want in ["Requests/s", "Images/s", "Read", "Decode", "Queue wait", "Inference", "Reply", "Total",
             "Batch size distribution", "Refusals/s by reason", "Queue depth", "in flight"]:
    assert want in titles, want
assert not bad, bad
PY
tap_done
