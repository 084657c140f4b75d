#!/usr/bin/env bash
# What a flood of refused uploads costs the daemon: its CPU time (utime +
# stime from /proc/PID/task/*/stat) around N uploads of a 4 MB body that will
# be refused (unknown model; Content-Length over the limit; queue full, held
# full by three clients uploading a 6000x6000 PNG to the one worker, whose
# thread, the busiest, is left out of the sum), sent by curl as it does by
# default (Expect: 100-continue) and with the body pushed at once (Expect
# disabled), for each daemon binary given (side by side, one run).
#   bench/bench-refusals.sh [RESNETD...]   env: N (200), MODEL (a test fixture)
set -eu
cd "$(dirname "$0")/.."
N=${N:-200}
MODEL=${MODEL:-tests/fixtures/parity/bottleneck.safetensors}
BINS=("$@")
[ ${#BINS[@]} -gt 0 ] || BINS=(build/resnetd)
TMP=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"' EXIT
head -c 4000000 /dev/urandom >"$TMP/body"
TCK=$(getconf CLK_TCK)
# per thread: "TID ms", utime + stime
threads_ms() {
    for f in /proc/$1/task/*/stat; do
        awk -v t="$TCK" '{print $1, ($14 + $15) * 1000 / t}' "$f" 2>/dev/null
    done
}
# cpu_delta BEFORE AFTER SKIP_BUSIEST: ms used between two threads_ms lists
cpu_delta() {
    awk -v skip="$3" 'NR == FNR { a[$1] = $2; next } { d = $2 - a[$1]; s += d; if (d > m) m = d }
                      END { print skip ? s - m : s }' "$1" "$2"
}
python3 - "$TMP/big.png" <<'PY'
import struct, sys, zlib
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
w = h = 6000
row = b"\0" + bytes((x * 7) & 255 for x in range(w * 3))
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                              + chunk(b"IDAT", zlib.compress(row * h, 6)) + chunk(b"IEND", b""))
PY

printf '%-28s %-22s %8s %8s %12s %10s\n' binary case uploads refused daemon_cpu_ms wall_s
for bin in "${BINS[@]}"; do
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$bin" --model "$MODEL" --listen 127.0.0.1:$PORT --max-body-bytes 8M --workers 1 \
        --threads 1 --max-queue 1 --max-batch 1 2>/dev/null &
    PID=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/v2/health/ready" >/dev/null && break; sleep 0.1; done
    for c in "nomodel expect" "nomodel push" "toolarge expect" "toolarge push" \
             "queuefull expect" "queuefull push"; do
        set -- $c
        url="http://127.0.0.1:$PORT/v1/classify?model=nope"
        [ "$1" = nomodel ] || url="http://127.0.0.1:$PORT/v1/classify"
        hdr=()
        [ "$2" = push ] && hdr=(-H 'Expect:')
        size=()
        [ "$1" = toolarge ] && size=(-H 'Content-Length: 9000000')
        holders=()
        if [ "$1" = queuefull ]; then
            for _ in 1 2 3; do
                ( while :; do curl -s -o /dev/null --data-binary @"$TMP/big.png" \
                      "http://127.0.0.1:$PORT/v1/classify"; done ) &
                holders+=($!)
            done
        fi
        sleep 1
        threads_ms $PID >"$TMP/c0"; t0=$(date +%s.%N)
        refused=0
        for _ in $(seq "$N"); do
            code=$(curl -s -o /dev/null -w '%{http_code}' "${hdr[@]}" "${size[@]}" \
                   -H 'Content-Type: image/jpeg' --data-binary @"$TMP/body" "$url" || true)
            case $code in 404|413|503) refused=$((refused + 1)) ;; esac
        done
        threads_ms $PID >"$TMP/c1"; t1=$(date +%s.%N)
        skip=0
        [ "$1" = queuefull ] && skip=1
        printf '%-28s %-22s %8s %8s %12.0f %10.2f\n' "$bin" "$1 ($2)" "$N" "$refused" \
            "$(cpu_delta "$TMP/c0" "$TMP/c1" $skip)" "$(awk "BEGIN {print $t1 - $t0}")"
        if [ ${#holders[@]} -gt 0 ]; then
            kill "${holders[@]}" 2>/dev/null || true
            wait "${holders[@]}" 2>/dev/null || true
        fi
    done
    kill $PID; wait $PID 2>/dev/null || true; PID=
done
