#!/usr/bin/env bash
# Which resnetd signal should an autoscaler follow? A closed-loop load
# (bench/loadgen.c, one JPEG per request to /v1/classify) at 1, 2, 4, ... 64
# clients against one daemon, and for each step the latency clients see
# beside the candidate signals read from /metrics while it runs:
#   in_flight  resnetd_requests_in_flight, mean of the samples
#   queue      resnetd_queue_depth, mean of the samples
#   queue_ms   queue time per image over the step: the increase of
#              resnetd_queue_duration_seconds_sum / of its _count (every series)
# A good signal rises before p99 latency does and keeps rising with the load.
#   bench/bench-autoscale.sh [MODEL]   env: BUILD (build), SECONDS_PER_STEP (10),
#       CLIENTS ("1 2 4 8 16 32 64"), RESNETD_FLAGS, LOAD_IMAGE
# Prints one Markdown table row per step (README "Autoscaling").
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
MODEL=${1:-models/resnet50.safetensors}
SECS=${SECONDS_PER_STEP:-10}
CLIENTS=${CLIENTS:-1 2 4 8 16 32 64}
IMAGE=${LOAD_IMAGE:-/usr/share/darknet/data/dog.jpg}
[ -f "$MODEL" ] || { echo "no model $MODEL (make model)" >&2; exit 1; }

TMP=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"' EXIT
cc -O2 -pthread -o "$TMP/loadgen" bench/loadgen.c -lm
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$port
# shellcheck disable=SC2086
"$BUILD/resnetd" --model "$MODEL" --listen 127.0.0.1:$port ${RESNETD_FLAGS:-} 2>"$TMP/log" &
PID=$!
for _ in $(seq 600); do curl -sf "$URL/v2/health/ready" >/dev/null && break; sleep 0.1; done
split=$(grep -o '[0-9]* workers* x [0-9]* threads*' "$TMP/log" | head -1)
"$TMP/loadgen" -a 127.0.0.1:$port -c 2 -d 3 -r "/v1/classify,image/jpeg,$IMAGE" >/dev/null # warm

# metric NAME: the sum of every series of NAME (no suffix added) on /metrics
metric() { curl -s "$URL/metrics" | awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%.6f\n", s }'; }

echo "# $(basename "$MODEL"), $split, $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p')), $SECS s a step"
echo "| clients | images/s | p50 ms | p99 ms | non-200 | in_flight | queue_depth | queue ms/image |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for c in $CLIENTS; do
    s0=$(metric resnetd_queue_duration_seconds_sum)
    n0=$(metric resnetd_queue_duration_seconds_count)
    "$TMP/loadgen" -a 127.0.0.1:$port -c "$c" -d "$SECS" -r "/v1/classify,image/jpeg,$IMAGE" >"$TMP/load" &
    lg=$!
    : >"$TMP/samples"
    sleep 1 # past the ramp
    while kill -0 $lg 2>/dev/null; do
        curl -s "$URL/metrics" | awk '$1 == "resnetd_requests_in_flight" { f = $2 }
            $1 == "resnetd_queue_depth" { q = $2 } END { print f, q }' >>"$TMP/samples"
        sleep 0.5
    done
    wait $lg
    s1=$(metric resnetd_queue_duration_seconds_sum)
    n1=$(metric resnetd_queue_duration_seconds_count)
    kv() { awk -F= -v k="$1" '$1 == k { print $2 }' "$TMP/load"; }
    awk -v c="$c" -v rps="$(kv ok_per_s)" -v p50="$(kv p50_ms)" -v p99="$(kv p99_ms)" \
        -v all="$(kv requests)" -v ok="$(kv status_200)" -v ds="$s1" -v ds0="$s0" \
        -v dn="$n1" -v dn0="$n0" '
        { f += $1; q += $2; k++ }
        END { ds -= ds0; dn -= dn0
              printf "| %d | %.1f | %.0f | %.0f | %d | %.1f | %.1f | %.0f |\n", c, rps, p50, p99,
                     all - ok, k ? f / k : 0, k ? q / k : 0, (dn > 0 ? ds / dn * 1000 : 0) }' "$TMP/samples"
    # let the next step start from an empty queue
    for _ in $(seq 100); do [ "$(metric resnetd_queue_depth)" = 0.000000 ] && break; sleep 0.1; done
done
