#!/usr/bin/env bash
# Parallelism that follows the load: by default a batch that is the only work
# runs on every core (--lone-threads, the idle workers' threads lent to it),
# while batches run side by side on their workers' own threads when there is
# more work than one; explicit --workers/--threads run exactly that.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
BIN=$RESNETD
PY=/usr/bin/python3
M1=tests/fixtures/parity/bottleneck.safetensors
DOG=/usr/share/darknet/data/dog.jpg
CORES=$(nproc)
daemon_scratch

# A 6000x6000 PNG: decoding it keeps a worker busy ~0.4 s, so requests overlap.
$PY - "$TMP/big.png" <<'PY'
import struct, sys, zlib
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
w = h = 6000
row = b"\0" + bytes((x * 7) & 255 for x in range(w * 3))
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                              + chunk(b"IDAT", zlib.compress(row * h, 6)) + chunk(b"IEND", b""))
PY

# start FLAGS...: the daemon on a free port, $URL set
start() {
    PORT=$(free_port)
    URL=http://127.0.0.1:$PORT
    "$BIN" --model "$M1" --listen 127.0.0.1:$PORT "$@" 2>"$TMP/log" &
    PID=$!
    wait_ready "$URL"
}
stop() { kill -TERM "$PID"; wait "$PID"; PID=; }
# batches KIND: resnetd_batches_total{threads="KIND"}
batches() { curl -s "$URL/metrics" | sed -n "s/^resnetd_batches_total{threads=\"$1\"} //p"; }

# ---- defaults ----
start --max-batch 1
check "defaults: the start-up line says a lone batch runs on all $CORES cores" \
    grep -q "a lone batch on $CORES\$" "$TMP/log"
for _ in 1 2 3 4 5; do curl -s -o /dev/null --data-binary @$DOG "$URL/v1/classify"; done
if [ "$CORES" -gt 1 ]; then
    check_eq "5 requests one after another: 5 lone batches, none on a worker's threads" \
        "$(batches lone) $(batches worker)" "5 0"
    # Four at once, one image per batch: the first runs alone, the other three
    # wait for it and then run side by side (as do those after them).
    for i in 1 2 3 4; do
        curl -s -o "$TMP/c$i" --data-binary @"$TMP/big.png" "$URL/v1/classify" &
        sleep 0.05
    done
    wait $(jobs -p | grep -vx "$PID")
    check_eq "four at once: all served" "$(cat "$TMP"/c[1-4] | jq -r .model | sort -u)" bottleneck
    check "four at once: some batches ran side by side on their workers' threads ($(batches worker))" \
        [ "$(batches worker)" -ge 1 ]
    lone=$(batches lone) worker=$(batches worker)
    check_eq "four at once: every batch counted once" "$(( ${lone:-0} + ${worker:-0} ))" 9
else
    ok "# SKIP lending: one core, nothing to lend"
fi
check "no 500 in the access log" bash -c "! grep -q '\" 500 ' '$TMP/log'"
stop

# ---- explicit --workers x --threads: exactly that, nothing lent ----
start --workers 2 --threads 1
check "explicit --workers 2 --threads 1: a lone batch on 1 thread" grep -q "a lone batch on 1\$" "$TMP/log"
for _ in 1 2 3; do curl -s -o /dev/null --data-binary @$DOG "$URL/v1/classify"; done
check_eq "explicit --workers 2 --threads 1: no lone batch" "$(batches lone) $(batches worker)" "0 3"
stop
start --workers 1 --threads 1 --lone-threads 2
check "--lone-threads 2 lends to one worker too" grep -q "1 worker x 1 thread, a lone batch on 2\$" "$TMP/log"
curl -s -o /dev/null --data-binary @$DOG "$URL/v1/classify"
check_eq "--lone-threads 2: the lone batch ran on it" "$(batches lone)" 1
stop
tap_done
