#!/usr/bin/env bash
# API keys per route group (--api-keys): every route of every group refuses a
# request without a key (401, WWW-Authenticate) or with a key of no use there
# (403), answers with the right one sent either way, and health stays open; a
# POST is refused from its headers, before its body; a group without a key is
# open; a key file others may read, an empty one or a malformed one stops the
# daemon with a message; SIGHUP swaps the keys under load without failing a
# request that carries a key kept; no key reaches the log. Then
# --max-connections-per-ip.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
BIN=$RESNETD
PY=/usr/bin/python3
M1=tests/fixtures/parity/bottleneck.safetensors
DOG=/usr/share/darknet/data/dog.jpg
TMP=$(mktemp -d)
PID=
PIDS=()
cleanup() {
    [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

K_INFER=infer-kept-0123456789abcdef
K_DROP=infer-dropped-0123456789ab
K_NEW=infer-new-key-0123456789ab
K_FEAT=features-key-0123456789
K_INSP=inspect-key-0123456789!
K_META=metadata-key-0123456789
K_METR=metrics-key-0123456789
K_WRONG=not-a-key-of-anyone-0123
cat >"$TMP/keys" <<EOF
# two keys for infer, so that one can be rotated out
infer $K_INFER
infer	$K_DROP

features $K_FEAT
inspect  $K_INSP
metadata $K_META
metrics  $K_METR
EOF
chmod 600 "$TMP/keys"

PORT=$(free_port)
URL=http://127.0.0.1:$PORT
"$BIN" --model "$M1" --listen 127.0.0.1:$PORT --api-keys "$TMP/keys" 2>"$TMP/log" &
PID=$!
wait_ready "$URL"
check "daemon with --api-keys becomes ready (health is open)" curl -sf "$URL/v2/health/ready" -o /dev/null

LAYER=$(curl -s -H "X-API-Key: $K_META" "$URL/v1/models" | jq -r '.models[0].layers[0].name')
check "a layer name to ask for" test -n "$LAYER" -a "$LAYER" != null
B64=$(base64 -w0 $DOG)
printf '{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["%s"]}]}' "$B64" >"$TMP/v2"
printf '{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["%s"]}],"outputs":[{"name":"%s"}]}' \
    "$B64" "$LAYER" >"$TMP/v2layer"

# route NAME KEY JQ CURL-ARGS...: the route (CURL-ARGS) without a key is a
# 401 with WWW-Authenticate, with a wrong key and with another group's key a
# 403, with KEY as a Bearer token and as X-API-Key a 200 whose JSON passes JQ
# (or "-" for a body that is not JSON)
OTHER=$K_METR
jqf() { jq -e "$1" "$2" >/dev/null; }
route() {
    local name=$1 key=$2 jqx=$3; shift 3
    local code
    code=$(curl -s -D "$TMP/$name.h" -o "$TMP/$name.b" -w '%{http_code}' "$@")
    check_eq "$name: no key: 401" "$code" 401
    check "$name: no key: WWW-Authenticate: Bearer realm=\"resnetd\"" \
        grep -qi '^WWW-Authenticate: Bearer realm="resnetd"' "$TMP/$name.h"
    check "$name: no key: JSON error unauthorized" jqf '.code=="unauthorized"' "$TMP/$name.b"
    code=$(curl -s -o "$TMP/$name.b" -w '%{http_code}' -H "X-API-Key: $K_WRONG" "$@")
    check_eq "$name: wrong key: 403" "$code" 403
    check "$name: wrong key: JSON error forbidden" jqf '.code=="forbidden"' "$TMP/$name.b"
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $OTHER" "$@")
    check_eq "$name: another group's key: 403" "$code" 403
    for how in "Authorization: Bearer $key" "X-API-Key: $key"; do
        code=$(curl -s -o "$TMP/$name.b" -w '%{http_code}' -H "$how" "$@")
        check_eq "$name: right key as ${how%%:*}: 200" "$code" 200
        [ "$jqx" = - ] || check "$name: right key as ${how%%:*}: the normal reply" \
            jqf "$jqx" "$TMP/$name.b"
    done
}

# infer
route classify "$K_INFER" '.predictions|length==5' --data-binary @$DOG "$URL/v1/classify"
route embed "$K_INFER" '.embedding|length>0' --data-binary @$DOG "$URL/v1/embed"
route v2infer "$K_INFER" '.outputs|length>0' --data-binary @"$TMP/v2" "$URL/v2/models/bottleneck/infer"
OTHER=$K_INFER
# features
route embedlayer "$K_FEAT" ".layer==\"$LAYER\"" --data-binary @$DOG "$URL/v1/embed?layer=$LAYER"
route v2layer "$K_FEAT" ".outputs[0].name==\"$LAYER\"" --data-binary @"$TMP/v2layer" \
    "$URL/v2/models/bottleneck/infer"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-API-Key: $K_FEAT" --data-binary @$DOG "$URL/v1/embed")
check_eq "a features key does not embed without a layer (infer's): 403" "$code" 403
code=$(curl -s -o "$TMP/v2inf.b" -w '%{http_code}' -H "X-API-Key: $K_FEAT" --data-binary @"$TMP/v2" "$URL/v2/models/bottleneck/infer")
check_eq "a features key does not run v2 infer for logits (infer's): 403" "$code" 403
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-API-Key: $K_INFER" --data-binary @"$TMP/v2layer" "$URL/v2/models/bottleneck/infer")
check_eq "an infer key does not get a v2 layer output (features'): 403" "$code" 403
# inspect
route inspect "$K_INSP" '.blocks|length>0' --data-binary @$DOG "$URL/v1/inspect"
for p in / /ui/app.js /ui/style.css /ui/icon.svg; do
    route "page${p//\//_}" "$K_INSP" - "$URL$p"
done
# metadata
route models "$K_META" '.models[0].name=="bottleneck"' "$URL/v1/models"
route v2meta "$K_META" '.name=="resnetd"' "$URL/v2"
route v2model "$K_META" '.name=="bottleneck"' "$URL/v2/models/bottleneck"
route openapi "$K_META" '.openapi|startswith("3")' "$URL/openapi.json"
# metrics
OTHER=$K_META
route metrics "$K_METR" - "$URL/metrics"
# health and readiness: open
for p in /v2/health/live /v2/health/ready /v2/models/bottleneck/ready; do
    check_eq "$p: open without a key" "$(curl -s -o /dev/null -w '%{http_code}' "$URL$p")" 200
done

# ---- refused from the headers: the body is never read ----
# the headers of a 4 MB upload with Expect: 100-continue; the refusal comes
# instead of "100 Continue", and the connection is closed
cat >"$TMP/probe.py" <<'PY'
import socket, sys
port, path, hdr, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(3)
s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: image/jpeg\r\n"
           "Content-Length: 4000000\r\nExpect: 100-continue\r\n\r\n" % (path, hdr)).encode())
data = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
except (socket.timeout, ConnectionResetError):
    pass
open(out, "wb").write(data)
PY
for c in "nokey|/v1/classify||401" "wrongkey|/v2/models/bottleneck/infer|X-API-Key: $K_WRONG\r\n|403"; do
    IFS='|' read -r n p h want <<<"$c"
    $PY "$TMP/probe.py" "$PORT" "$p" "$h" "$TMP/probe_$n"
    check_eq "$n: $p refused $want from the headers alone, no 100 Continue" \
        "$(head -1 "$TMP/probe_$n" | tr -d '\r' | awk '{print $2}')" "$want"
    check "$n: and the connection closed" grep -qai '^Connection: close' "$TMP/probe_$n"
done

# ---- metrics ----
curl -s -H "X-API-Key: $K_METR" "$URL/metrics" >"$TMP/metrics"
metric() { awk -v k="$1" '$1 == k {print $2}' "$TMP/metrics"; }
check "401s counted: resnetd_auth_failures_total{reason=\"missing\",group=\"infer\"} >= 4" \
    test "$(metric 'resnetd_auth_failures_total{reason="missing",group="infer"}')" -ge 4
check "403s counted: resnetd_auth_failures_total{reason=\"invalid\",group=\"metrics\"} = 2" \
    test "$(metric 'resnetd_auth_failures_total{reason="invalid",group="metrics"}')" -eq 2
check "403s counted per group: features" \
    test "$(metric 'resnetd_auth_failures_total{reason="invalid",group="features"}')" -ge 3
check "401 and 403 are codes of resnetd_requests_total" \
    grep -q 'resnetd_requests_total{route="/metrics",code="401"} 1' "$TMP/metrics"

# ---- SIGHUP under load: drop one infer key, add another ----
# two clients classify with the kept key until told to stop; each writes one
# status per request
rm -f "$TMP/stop"
load() {
    while [ ! -e "$TMP/stop" ]; do
        curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $K_INFER" \
            --data-binary @$DOG "$URL/v1/classify"
    done >"$TMP/load$1"
}
load 1 & PIDS+=($!)
load 2 & PIDS+=($!)
sleep 1
sed -e "s/^infer\t$K_DROP\$/infer $K_NEW/" "$TMP/keys" >"$TMP/keys.new"
chmod 600 "$TMP/keys.new"
mv "$TMP/keys.new" "$TMP/keys"
kill -HUP "$PID"
for _ in $(seq 50); do grep -q 'API keys reloaded' "$TMP/log" && break; sleep 0.1; done
check "SIGHUP: the keys are reloaded (logged)" grep -q 'API keys reloaded from .*infer 2 keys' "$TMP/log"
sleep 1
touch "$TMP/stop"
wait "${PIDS[@]}"
PIDS=()
total=$(cat "$TMP/load1" "$TMP/load2" | wc -l)
bad=$(cat "$TMP/load1" "$TMP/load2" | grep -vc '^200$')
check "SIGHUP under load: requests ran throughout ($total)" test "$total" -ge 10
check_eq "SIGHUP under load: no request with the kept key failed" "$bad" 0
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-API-Key: $K_DROP" --data-binary @$DOG "$URL/v1/classify")
check_eq "after SIGHUP: the dropped key is refused (403)" "$code" 403
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-API-Key: $K_NEW" --data-binary @$DOG "$URL/v1/classify")
check_eq "after SIGHUP: the new key works" "$code" 200

# a reload with a bad file keeps the keys in force, and says why
chmod 644 "$TMP/keys"
kill -HUP "$PID"
for _ in $(seq 50); do grep -q 'API keys not reloaded' "$TMP/log" && break; sleep 0.1; done
check "SIGHUP with a world-readable file: not reloaded, logged with the reason" \
    grep -q 'API keys not reloaded, the previous ones stay in force: .*keys: mode 0644' "$TMP/log"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-API-Key: $K_NEW" --data-binary @$DOG "$URL/v1/classify")
check_eq "after a failed reload: the keys in force still work" "$code" 200
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/models")
check_eq "after a failed reload: still closed without a key" "$code" 401
chmod 600 "$TMP/keys"

kill "$PID"; wait "$PID" 2>/dev/null; PID=
leaked=0
for k in "$K_INFER" "$K_DROP" "$K_NEW" "$K_FEAT" "$K_INSP" "$K_META" "$K_METR" "$K_WRONG"; do
    grep -qF -- "$k" "$TMP/log" && leaked=1 && echo "# key in the log: $k"
done
check_eq "no key, right or wrong, in the daemon's log" "$leaked" 0

# ---- a group without a key is open ----
printf 'metrics %s\n' "$K_METR" >"$TMP/only"
chmod 600 "$TMP/only"
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
"$BIN" --model "$M1" --listen 127.0.0.1:$PORT --api-keys "$TMP/only" 2>"$TMP/log2" &
PID=$!
wait_ready "$URL"
check_eq "only metrics keyed: /metrics still needs it" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/metrics")" 401
check_eq "only metrics keyed: classify open" \
    "$(curl -s -o /dev/null -w '%{http_code}' --data-binary @$DOG "$URL/v1/classify")" 200
check_eq "only metrics keyed: /v1/models open" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/models")" 200
check_eq "only metrics keyed: the page open" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/")" 200
check "start-up log says which groups are open" \
    grep -q 'API keys from .*infer open, features open, inspect open, metadata open, metrics 1 key' "$TMP/log2"
kill "$PID"; wait "$PID" 2>/dev/null; PID=

# ---- key files refused at start ----
# refused NAME WANT: the daemon given $TMP/NAME exits 2, its message holds WANT
refused() {
    timeout 20 "$BIN" --model "$M1" --listen 127.0.0.1:$(free_port) --api-keys "$TMP/$1" 2>"$TMP/$1.log"
    local rc=$?
    check_eq "$1 key file: refused at start (exit 2)" "$rc" 2
    check "$1 key file: the message says '$2'" grep -qF -- "$2" "$TMP/$1.log"
}
printf 'infer %s\n' "$K_INFER" >"$TMP/readable"; chmod 644 "$TMP/readable"
refused readable "$TMP/readable: mode 0644 lets group or others read or write it"
printf 'infer %s\n' "$K_INFER" >"$TMP/groupread"; chmod 640 "$TMP/groupread"
refused groupread "$TMP/groupread: mode 0640"
printf '# nothing but comments\n\n' >"$TMP/empty"; chmod 600 "$TMP/empty"
refused empty "$TMP/empty: no key in it"
printf 'infer %s\nadmin %s\n' "$K_INFER" "$K_WRONG" >"$TMP/badgroup"; chmod 600 "$TMP/badgroup"
refused badgroup "$TMP/badgroup:2: unknown group"
check "badgroup: the message does not quote the key" bash -c "! grep -qF -- '$K_WRONG' '$TMP/badgroup.log'"
printf '\ninfer short\n' >"$TMP/short"; chmod 600 "$TMP/short"
refused short "$TMP/short:2: key of group infer is shorter than 16 characters"
{ printf 'infer '; head -c 600 /dev/zero | tr '\0' k; echo; } >"$TMP/long"; chmod 600 "$TMP/long"
refused long "$TMP/long:1: line longer than 512 characters"
mkdir "$TMP/dir"
refused dir "$TMP/dir: not a regular file"

# ---- no keys on an address others can reach: a warning ----
PORT=$(free_port)
timeout 20 "$BIN" --model "$M1" --listen 0.0.0.0:$PORT 2>"$TMP/log3" &
PID=$!
wait_ready "http://127.0.0.1:$PORT"
check "0.0.0.0 without --api-keys: a warning at start" \
    grep -q 'warn: listening on 0.0.0.0 without API keys' "$TMP/log3"
kill "$PID"; wait "$PID" 2>/dev/null; PID=

tap_done
