#!/usr/bin/env bash
# Refusals that cost nothing: a request that will be refused (queue full,
# unknown model or route, a Content-Length over the limit) is answered with
# its headers, before its body is read; with Expect: 100-continue the client
# gets the refusal instead of "100 Continue" and never sends the body.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
BIN=$RESNETD
PY=/usr/bin/python3
M1=tests/fixtures/parity/bottleneck.safetensors
daemon_scratch

# A 6000x6000 PNG whose rows all use the Paeth filter, the slowest to undo:
# decoding and resizing it keeps the only worker busy ~0.5 s (~0.15 s with
# unfiltered rows, a window the probes missed on a busy machine).
$PY - "$TMP/big.png" <<'PY'
import struct, sys, zlib
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
w = h = 6000
row = b"\4" + bytes((x * 7) & 255 for x in range(w * 3))
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                              + chunk(b"IDAT", zlib.compress(row * h, 6)) + chunk(b"IEND", b""))
PY

PORT=$(free_port)
URL=http://127.0.0.1:$PORT
"$BIN" --model "$M1" --listen 127.0.0.1:$PORT --workers 1 --threads 1 --max-queue 1 \
    --max-batch 1 --max-body-bytes 8M 2>"$TMP/log" &
PID=$!
wait_ready "$URL"
check "daemon becomes ready" curl -sf "$URL/v2/health/ready" -o /dev/null

# probe NAME PATH: send only the headers of a 4 MB upload with Expect:
# 100-continue, and keep what comes back within 3 s in $TMP/NAME
cat >"$TMP/probe.py" <<'PY'
import socket, sys
port, path, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(3)
s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
           "Content-Length: 4000000\r\nExpect: 100-continue\r\n\r\n" % path).encode())
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
probe() { $PY "$TMP/probe.py" "$PORT" "$2" "$TMP/$1"; }
status() { head -1 "$TMP/$1" | tr -d '\r' | awk '{print $2}'; }
# refused NAME STATUS CODE: the reply to the headers alone is that JSON error,
# no 100 Continue came first, and the connection was closed
refused() {
    check_eq "$1: answered $2 with the headers alone, no 100 Continue" "$(status "$1")" "$2"
    check "$1: JSON error $3" bash -c "tail -n 1 '$TMP/$1' | grep -q '^{' && tail -n 1 '$TMP/$1' | jq -e --arg c '$3' '.code==\$c' >/dev/null"
    check "$1: Connection: close" grep -qai '^Connection: close' "$TMP/$1"
}

probe nomodel "/v1/classify?model=nope"
refused nomodel 404 model_not_found
probe badname "/v2/models/a%00b/infer"
refused badname 400 bad_request
probe noroute "/v1/nope"
refused noroute 404 not_found
probe badtopk "/v1/classify?topk=x"
refused badtopk 400 bad_request
probe v2nomodel "/v2/models/nope/infer"
refused v2nomodel 404 model_not_found

# ---- queue full ----
# One image computing, one queued: the queue (--max-queue 1) is full while the
# first decodes (~0.5 s). Both probes run at once as soon as the queue is seen
# full; on a loaded machine the window can still close first (the probe then
# gets 100 Continue, rightly), so the hold is tried up to 3 times.
for attempt in 1 2 3; do
    curl -s -o "$TMP/a" --data-binary @"$TMP/big.png" "$URL/v1/classify" &
    A=$!
    sleep 0.1
    curl -s -o "$TMP/b" --data-binary @"$TMP/big.png" "$URL/v1/classify" &
    B=$!
    for _ in $(seq 100); do
        curl -s "$URL/metrics" | grep -qx 'resnetd_queue_depth 1' && break
        sleep 0.02
    done
    probe full /v1/classify &
    F1=$!
    probe fullv2 /v2/models/bottleneck/infer &
    F2=$!
    wait $F1 $F2 $A $B
    [ "$(status full)" = 503 ] && [ "$(status fullv2)" = 503 ] && break
    echo "# attempt $attempt: the queue drained before the probes (full $(status full), fullv2 $(status fullv2))"
done
refused full 503 queue_full
check "queue full: Retry-After" grep -qai '^Retry-After: 1' "$TMP/full"
refused fullv2 503 queue_full
check_eq "the two uploads that held the queue were served" \
    "$(jq -r .model "$TMP/a") $(jq -r .model "$TMP/b")" "bottleneck bottleneck"

# ---- over the limit from Content-Length (8M) ----
cat >"$TMP/huge.py" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(3)
s.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 9000000\r\nExpect: 100-continue\r\n\r\n")
open(sys.argv[2], "wb").write(s.recv(65536))
PY
$PY "$TMP/huge.py" "$PORT" "$TMP/huge"
refused huge 413 body_too_large

check "daemon process alive" kill -0 "$PID"
kill -TERM "$PID"; wait "$PID"; PID=
tap_done
