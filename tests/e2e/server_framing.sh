#!/usr/bin/env bash
# Requests whose framing cannot be trusted get exactly one well-framed 400:
# one status line, one set of headers, a body as long as its Content-Length
# says and nothing after it, a JSON error, and the connection closed. The
# Content-Length values libmicrohttpd cannot read ("abc", "5, 6", "-1", a
# number past 2^64, none at all) once got its own 400 with the status line
# and headers sent twice (server/http_early.c); two different Content-Length
# headers, and Content-Length with Transfer-Encoding (request smuggling), are
# ours to refuse (server/http_body.c).
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
BIN=$RESNETD
PY=/usr/bin/python3
M1=tests/fixtures/parity/bottleneck.safetensors
daemon_scratch

PORT=$(free_port)
URL=http://127.0.0.1:$PORT
"$BIN" --model "$M1" --listen 127.0.0.1:$PORT 2>"$TMP/log" &
PID=$!
wait_ready "$URL"
check "daemon becomes ready" curl -sf "$URL/v2/health/ready" -o /dev/null

# one400 PIECE...: send each piece (a Python bytes literal; a pause of 0.3 s
# between pieces), read until the server closes (3 s at most), and check that
# what came back is N replies where every reply before the last is a 200 and
# the last exactly one well-framed JSON 400. Prints "ok", or what was wrong.
cat >"$TMP/one400.py" <<'PY'
import ast, json, socket, sys, time
port, pieces = int(sys.argv[1]), [ast.literal_eval(p) for p in sys.argv[2:]]
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(3)
for i, p in enumerate(pieces):
    if i:
        time.sleep(0.3)
    s.sendall(p)
data, closed = b"", False
try:
    while True:
        d = s.recv(65536)
        if not d:
            closed = True
            break
        data += d
except socket.timeout:
    pass
except ConnectionResetError:
    closed = True
def fail(why):
    print("%s: %r" % (why, data[:300])); sys.exit(0)
replies = []
while data:
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        fail("a reply without the end of its headers")
    lines = head.split(b"\r\n")
    if not lines[0].startswith(b"HTTP/1.1 "):
        fail("not a status line: %r" % lines[0])
    hdr = {}
    for l in lines[1:]:
        k, c, v = l.partition(b":")
        if not c or l.startswith(b"HTTP/"):
            fail("a header line that is not one: %r" % l)
        if k.strip().lower() in hdr:
            fail("header %r twice" % k)
        hdr[k.strip().lower()] = v.strip()
    if b"content-length" not in hdr:
        fail("no Content-Length in the reply")
    n = int(hdr[b"content-length"])
    if len(rest) < n:
        fail("a body shorter than its Content-Length")
    replies.append((lines[0].split()[1], hdr, rest[:n]))
    data = rest[n:]
if not replies:
    fail("no reply")
if [r[0] for r in replies[:-1]] != [b"200"] * (len(replies) - 1):
    fail("replies before the last that are not 200s")
code, hdr, body = replies[-1]
if code != b"400":
    fail("the last reply is a %s, not a 400" % code.decode())
if hdr.get(b"content-type") != b"application/json":
    fail("the 400 is not JSON")
try:
    j = json.loads(body)
except ValueError:
    fail("the 400's body does not parse as JSON")
if j.get("code") != "bad_request" or not j.get("error"):
    fail("the 400's JSON is not a bad_request error")
if not closed:
    fail("the connection stayed open after the 400")
print("ok")
PY
# one400 DESCRIPTION PIECE...
one400() { local d=$1; shift; check_eq "$d" "$($PY "$TMP/one400.py" "$PORT" "$@")" ok; }

REQ="b'POST /v1/classify HTTP/1.1\r\nHost: x\r\n"
for v in abc "5, 6" -1 99999999999999999999 18446744073709551616 "" 0x10 +5; do
    one400 "Content-Length: '$v': one well-framed JSON 400" "${REQ}Content-Length: $v\r\n\r\n'"
done
one400 "Content-Length: abc on a GET: one well-framed JSON 400" \
    "b'GET /v2 HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'"
one400 "Content-Length: abc with body bytes after the headers: one 400" \
    "${REQ}Content-Length: abc\r\n\r\nGET /v2 HTTP/1.1\r\nHost: x\r\n\r\n'"
one400 "Content-Length: abc, the headers sent in two pieces: one 400" \
    "b'POST /v1/classify HTTP/1.1\r\n'" "b'Host: x\r\nContent-Length: abc\r\n\r\n'"
one400 "Content-Length: abc after a request on the same connection: its 200, then one 400" \
    "b'GET /v2 HTTP/1.1\r\nHost: x\r\n\r\n${REQ:2}Content-Length: abc\r\n\r\n'"
one400 "two different Content-Length headers: one well-framed JSON 400" \
    "${REQ}Content-Length: 5\r\nContent-Length: 6\r\n\r\n12345x'"
one400 "a readable Content-Length, then an unreadable one: one 400" \
    "${REQ}Content-Length: 5\r\nContent-Length: abc\r\n\r\n12345'"
one400 "Content-Length with Transfer-Encoding: chunked: one well-framed JSON 400" \
    "${REQ}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'"
one400 "Transfer-Encoding: chunked with Content-Length: abc: one 400" \
    "${REQ}Transfer-Encoding: chunked\r\nContent-Length: abc\r\n\r\n0\r\n\r\n'"

check "the 400 says what was wrong" \
    grep -q "Content-Length '5, 6' is not a length: decimal digits only, below 2^64" "$TMP/log"
check "the refusals are in the access log, by path" \
    grep -q '"- /v1/classify" 400 .*error="Content-Length .abc. is not a length' "$TMP/log"
check "libmicrohttpd's word of its reply that never went out is not logged" \
    bash -c "! grep -q 'Error processing request' '$TMP/log'"
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/v2/health/ready")
check_eq "still serving afterwards" "$code" 200
curl -s "$URL/metrics" >"$TMP/metrics"
check "the refusals are counted" grep -q 'resnetd_requests_total{route="other",code="400"} [1-9]' "$TMP/metrics"

tap_done
