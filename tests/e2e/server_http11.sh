#!/usr/bin/env bash
# HTTP/1.1 as RFC 9112 has it: every route keeps the connection alive, a
# malformed multipart body gets a JSON 400, ambiguous framing (two
# Content-Length values, Transfer-Encoding with Content-Length) a 400 and a
# closed connection with nothing after it run as a request, a chunked body over
# the cap a 413, and names and numbers in the URL are checked as sent.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
BIN=$RESNETD
PY=/usr/bin/python3
M1=tests/fixtures/parity/bottleneck.safetensors
DOG=/usr/share/darknet/data/dog.jpg
daemon_scratch

PORT=$(free_port)
URL=http://127.0.0.1:$PORT
"$BIN" --model "$M1" --listen 127.0.0.1:$PORT --max-body-bytes 2M 2>"$TMP/log" &
PID=$!
wait_ready "$URL"
check "daemon becomes ready" curl -sf "$URL/v2/health/ready" -o /dev/null

# jerr FILE CODE: FILE holds a JSON error with that code
jerr() { [ -s "$1" ] && jq -e --arg c "$2" '(.error|type=="string") and .code==$c' "$1" >/dev/null; }

# ---- keep-alive on every route ----
# curl reuses its connection when the server lets it: num_connects is 1 for
# the first transfer and 0 for each later one.
gets="/v2/health/ready /v2/health/live /v2 /v1/models /metrics /v2/models/bottleneck /v2/models/bottleneck/ready /nope"
args=()
for p in $gets; do args+=(-o /dev/null "$URL$p"); done
conns=$(curl -s -w '%{num_connects}\n' "${args[@]}" | awk '{s += $1} END {print s}')
check_eq "8 GETs (one a 404) over one connection" "$conns" 1
curl -s -D "$TMP/ready.h" -o /dev/null "$URL/v2/health/ready"
check "a GET reply does not close the connection" bash -c "! grep -qi '^Connection: *close' '$TMP/ready.h'"
conns=$(curl -s -w '%{num_connects}\n' -o /dev/null "$URL/v1/models" --next \
        -s -w '%{num_connects}\n' -o /dev/null --data-binary @$DOG "$URL/v1/classify" --next \
        -s -w '%{num_connects}\n' -o /dev/null "$URL/metrics" | awk '{s += $1} END {print s}')
check_eq "GET, POST, GET over one connection" "$conns" 1

# ---- malformed multipart: a JSON 400, and the connection goes on ----
# mp NAME BODY_FILE: POST it as multipart with boundary xx, then GET
# /v1/models on the same connection; the status of both in $TMP/NAME.st
mp() {
    curl -s -w '%{http_code} %{num_connects}\n' -o "$TMP/$1" \
        -H 'Content-Type: multipart/form-data; boundary=xx' --data-binary @"$2" "$URL/v1/classify" \
        --next -s -w '%{http_code} %{num_connects}\n' -o /dev/null "$URL/v1/models" >"$TMP/$1.st"
    check_eq "$1: 400, then a GET answered on the same connection" "$(xargs <"$TMP/$1.st")" "400 1 200 0"
    check "$1: JSON error bad_request" jerr "$TMP/$1" bad_request
}
printf -- '--xx\r\nContent-Type: image/jpeg\r\n\r\nabc\r\n--xx--\r\n' >"$TMP/nodisp"
mp nodisp "$TMP/nodisp"
check "nodisp: the message says why" grep -q 'without a Content-Disposition' "$TMP/nodisp"
printf -- '--xx\r\nContent-Disposition: form-data; name="a"; filename="a.jpg"\r\nno colon here\r\n\r\nabc\r\n--xx--\r\n' >"$TMP/nocolon"
mp nocolon "$TMP/nocolon"
check "nocolon: the message says why" grep -q "no ':'" "$TMP/nocolon"
{ printf -- '--xx\r\nContent-Disposition: form-data; name="a"; filename="a.jpg"\r\nX-Pad: '
  head -c 9000 /dev/zero | tr '\0' a; printf '\r\n\r\nabc\r\n--xx--\r\n'; } >"$TMP/longhdr"
mp longhdr "$TMP/longhdr"
check "longhdr: the message says why" grep -q 'part headers too long' "$TMP/longhdr"

# ---- framing (RFC 9112 6.1, 6.3): raw requests ----
# raw NAME: send stdin as it is, read until the server closes (3 s at most);
# the replies in $TMP/NAME, "closed" or "open" in $TMP/NAME.conn
cat >"$TMP/raw.py" <<'PY'
import socket, sys
port, out = int(sys.argv[1]), sys.argv[2]
req = sys.stdin.buffer.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(3)
s.sendall(req)
data, state = b"", "open"
try:
    while True:
        d = s.recv(65536)
        if not d:
            state = "closed"
            break
        data += d
except socket.timeout:
    pass
except ConnectionResetError:
    state = "closed"
open(out, "wb").write(data)
open(out + ".conn", "w").write(state)
PY
raw() { $PY "$TMP/raw.py" "$PORT" "$TMP/$1"; }
# replies NAME: the status codes of the replies in $TMP/NAME
replies() { grep -ao '^HTTP/1\.[01] [0-9]*' "$TMP/$1" | awk '{print $2}' | xargs; }

raw twocl <<'EOF'
POST /v1/classify HTTP/1.1
Host: x
Content-Length: 5
Content-Length: 60

hello
EOF
check_eq "two different Content-Length: one 400" "$(replies twocl)" 400
check_eq "two different Content-Length: connection closed" "$(cat "$TMP/twocl.conn")" closed
check "two different Content-Length: JSON error" \
    bash -c "tail -n 1 '$TMP/twocl' | grep -q . && tail -n 1 '$TMP/twocl' | jq -e '.code==\"bad_request\"' >/dev/null"

# A chunked body whose chunk holds a whole request: a reader going by
# Content-Length (0) would run it as a second request.
printf 'GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n' >"$TMP/inner"
{ printf 'POST /v1/classify HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\nContent-Length: 0\n\n'
  printf '%x\n' "$(wc -c <"$TMP/inner")"; cat "$TMP/inner"; printf '\n0\n\n'; } >"$TMP/smuggle.req"
raw tecl <"$TMP/smuggle.req"
check_eq "Transfer-Encoding with Content-Length: one reply, a 400" "$(replies tecl)" 400
check_eq "Transfer-Encoding with Content-Length: connection closed" "$(cat "$TMP/tecl.conn")" closed
check "Transfer-Encoding with Content-Length: the message says why" \
    grep -aq 'both Transfer-Encoding and Content-Length' "$TMP/tecl"
raw same2 <<'EOF'
GET /v2/health/live HTTP/1.1
Host: x
Content-Length: 0
Content-Length: 0

GET /v2/health/live HTTP/1.1
Host: x
Connection: close

EOF
check_eq "two equal Content-Length values are one: both requests answered" "$(replies same2)" "200 200"

# ---- a chunked body over --max-body-bytes: 413 ----
head -c 3000000 /dev/zero >"$TMP/big.bin"
got=$(curl -s -o "$TMP/chunked" -w '%{http_code}' -H 'Transfer-Encoding: chunked' \
      --data-binary @"$TMP/big.bin" "$URL/v1/classify")
check_eq "chunked body over the limit: 413" "$got" 413
check "chunked body over the limit: JSON body_too_large" jerr "$TMP/chunked" body_too_large

# ---- names and numbers in the URL, as sent ----
# st NAME WANT_STATUS WANT_CODE CURL_ARGS...
st() {
    local name=$1 want=$2 code=$3; shift 3
    check_eq "$name: status" "$(curl -s -o "$TMP/$name" -w '%{http_code}' "$@")" "$want"
    check "$name: JSON code $code" jerr "$TMP/$name" "$code"
}
st nulquery 400 bad_request --data-binary @$DOG "$URL/v1/classify?model=bottleneck%00junk"
check "nulquery: the message shows the name as sent" grep -q 'bottleneck%00junk' "$TMP/nulquery"
st nulpath 400 bad_request "$URL/v2/models/bottleneck%00junk"
st nulready 400 bad_request "$URL/v2/models/bottleneck%00junk/ready"
st badchar 400 bad_request "$URL/v2/models/a%20b"
st longname 400 bad_request "$URL/v2/models/$(head -c 64 /dev/zero | tr '\0' a)"
st unknown 404 model_not_found "$URL/v2/models/nope"
st nulroute 404 not_found "$URL/v1/models%00"
st topkabc 400 bad_request --data-binary @$DOG "$URL/v1/classify?topk=abc"
check "topkabc: the message is true" grep -q 'expected an integer of at least 1' "$TMP/topkabc"
st topk0 400 bad_request --data-binary @$DOG "$URL/v1/classify?topk=0"
st topknul 400 bad_request --data-binary @$DOG "$URL/v1/classify?topk=3%00"
for k in 1000000 1000001 99999999999999999999999; do
    got=$(curl -s -w '%{http_code}' -o "$TMP/topk$k" --data-binary @$DOG "$URL/v1/classify?topk=$k")
    check_eq "topk=$k: clamped to the 12 classes" "$got $(jq '.predictions|length' "$TMP/topk$k")" "200 12"
done
printf '{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["%s"]}],"outputs":[{"name":"probabilities","parameters":{"classification":2000000}}]}' \
    "$(base64 -w0 $DOG)" >"$TMP/cls.json"
got=$(curl -s -w '%{http_code}' -o "$TMP/cls" --data-binary @"$TMP/cls.json" "$URL/v2/models/bottleneck/infer")
check_eq "v2 classification=2000000: cut to the 12 classes as topk is" "$got $(jq -c '.outputs[0].shape' "$TMP/cls")" "200 [1,12]"

check "daemon process alive" kill -0 "$PID"
check "no 500 in the access log" bash -c "! grep -q '\" 500 ' '$TMP/log'"
kill -TERM "$PID"; wait "$PID"; PID=
tap_done
