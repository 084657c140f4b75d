#!/usr/bin/env bash
# HTTP load benchmark of resnetd: images/s and p50/p99 latency at 1, 4, 16 and
# 64 concurrent clients (wrk, one raw JPEG per request), for the default
# workers x threads and the old default (--workers 2 --threads 1 on 2 cores),
# side by side with the engine on the same model in the same run:
#   lat = p50 / `resnet bench --batch 1 --threads <cores>` median (goal at 1 client: <= 1.1)
#   thr = images/s / `resnet bench --batch 8` images/s         (goal at 16 clients: >= 0.9)
#   bench/bench-load.sh [MODEL]       env: BUILD (build), SECONDS_PER_RUN (10),
#       CLIENTS ("1 4 16 64"), CONFIGS ("old=--workers 2 --threads 1;new="),
#       RESNETD_FLAGS (added to every config), LOAD_IMAGE
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
MODEL=${1:-models/resnet50.safetensors}
SECS=${SECONDS_PER_RUN:-10}
CLIENTS=${CLIENTS:-1 4 16 64}
CONFIGS=${CONFIGS:-old=--workers 2 --threads 1;new=}
CORES=$(nproc)
export LOAD_IMAGE=${LOAD_IMAGE:-/usr/share/darknet/data/dog.jpg}
command -v wrk >/dev/null || { echo "bench/bench-load.sh needs wrk (apt-get install wrk)" >&2; exit 1; }
[ -f "$MODEL" ] || { echo "no model $MODEL (make model)" >&2; exit 1; }

# the engine alone: field NAME of `resnet bench ARGS...`'s JSON line
engine() {
    local field=$1; shift
    "$BUILD/resnet" bench -m "$MODEL" --seconds "$SECS" "$@" 2>/dev/null | tail -1 |
        sed -n "s/.*\"$field\":\([0-9.]*\).*/\1/p"
}
b1_ms=$(engine ms_per_batch_median --batch 1 --threads "$CORES")
b8_ips=$(engine images_per_s --batch 8)
echo "# engine: batch 1, $CORES threads: ${b1_ms:-?} ms median; batch 8: ${b8_ips:-?} images/s"

LOG=/tmp/resnetd-load.$$.log
PID=
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; wait 2>/dev/null; rm -f $LOG' EXIT
printf '%-44s %7s %9s %8s %8s %6s %6s %5s %5s\n' config clients images/s p50_ms p99_ms errors non2xx lat thr
IFS=';' read -ra configs <<<"$CONFIGS"
for cfg in "${configs[@]}"; do
    name=${cfg%%=*} flags=${cfg#*=}
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    # shellcheck disable=SC2086
    "$BUILD/resnetd" --model "$MODEL" --listen 127.0.0.1:$PORT $flags ${RESNETD_FLAGS:-} 2>$LOG &
    PID=$!
    for _ in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/v2/health/ready" >/dev/null && break; sleep 0.1; done
    # the start-up line says the workers x threads that run
    split=$(grep -o '[0-9]* workers* x [0-9]* threads*' $LOG | head -1 || true)
    label="$name (${flags:-defaults}${split:+: $split})"
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
        lat=$(awk -v a="$p50_ms" -v b="${b1_ms:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }')
        thr=$(awk -v a="$rps" -v b="${b8_ips:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }')
        printf '%-44s %7s %9s %8s %8s %6s %6s %5s %5s\n' "$label" "$c" "$rps" "$p50_ms" "$p99_ms" \
            "$errors" "$non2xx" "$lat" "$thr"
    done
    kill $PID; wait $PID 2>/dev/null || true; PID=
done
