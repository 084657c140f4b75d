#!/usr/bin/env bash
# HTTP load benchmark of resnetd: images/s and p50/p99 latency at 1, 4, 16 and
# 64 concurrent clients (wrk, one raw JPEG per request), next to the engine's
# own batch-8 throughput (`resnet bench --batch 8`) on the same model.
#   bench/bench-load.sh [MODEL]       env: BUILD (build), SECONDS_PER_RUN (10),
#                               CLIENTS ("1 4 16 64"), RESNETD_FLAGS, LOAD_IMAGE
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
MODEL=${1:-models/resnet50.safetensors}
SECS=${SECONDS_PER_RUN:-10}
CLIENTS=${CLIENTS:-1 4 16 64}
export LOAD_IMAGE=${LOAD_IMAGE:-/usr/share/darknet/data/dog.jpg}
command -v wrk >/dev/null || { echo "bench/bench-load.sh needs wrk (apt-get install wrk)" >&2; exit 1; }
[ -f "$MODEL" ] || { echo "no model $MODEL (make model)" >&2; exit 1; }

engine=$("$BUILD/resnet" bench -m "$MODEL" --batch 8 --seconds "$SECS" 2>/dev/null | tail -1 |
         sed -n 's/.*"images_per_s":\([0-9.]*\).*/\1/p')

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BUILD/resnetd" --model "$MODEL" --listen 127.0.0.1:$PORT ${RESNETD_FLAGS:-} 2>/tmp/resnetd-load.$$.log &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -f /tmp/resnetd-load.$$.log' EXIT
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/v2/health/ready" >/dev/null && break; sleep 0.1; done
head -1 /tmp/resnetd-load.$$.log | sed 's/^/# /'

printf '%-8s %10s %10s %10s %8s %8s\n' clients images/s p50_ms p99_ms errors non2xx
for c in $CLIENTS; do
    # let requests abandoned by the previous run drain out of the queue
    for _ in $(seq 100); do
        curl -s "http://127.0.0.1:$PORT/metrics" | grep -q '^resnetd_queue_depth 0$' && break
        sleep 0.1
    done
    sleep 1
    t=$(( c < 4 ? c : 4 ))
    line=$(wrk -t "$t" -c "$c" -d "${SECS}s" --timeout 30s -s bench/load.lua \
           "http://127.0.0.1:$PORT/v1/classify" | grep '^RESULT')
    eval "${line#RESULT }"
    printf '%-8s %10s %10s %10s %8s %8s\n' "$c" "$rps" "$p50_ms" "$p99_ms" "$errors" "$non2xx"
done
echo "engine (resnet bench --batch 8): ${engine:-?} images/s"
