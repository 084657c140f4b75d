#!/usr/bin/env bash
# resnetd under concurrency: batching is real (16 concurrent clients form
# batches larger than 1, and every reply equals the single-request reply),
# overload answers only 200 or 503 with Retry-After, queue deadlines answer
# 504, and SIGTERM finishes the requests in flight before exiting 0.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
BIN=$RESNETD
IMGS=/usr/share/darknet/data
daemon_scratch

# The real model makes batches form at the default --max-delay-us 0; the
# tiny test model is so fast that the test gives it a short delay instead.
if [ -n "${RESNETD_TEST_MODEL:-}" ]; then
    MODEL=$RESNETD_TEST_MODEL DELAY=20000
elif [ -f models/resnet50.safetensors ]; then
    MODEL=models/resnet50.safetensors DELAY=0
else
    MODEL=tests/fixtures/parity/bottleneck.safetensors DELAY=20000
fi

start() { # flags...
    PORT=$(free_port)
    URL=http://127.0.0.1:$PORT
    "$BIN" --model "$MODEL" --listen 127.0.0.1:$PORT "$@" 2>>"$TMP/log" &
    PID=$!
    for _ in $(seq 200); do curl -sf "$URL/v2/health/ready" >/dev/null && return 0; sleep 0.1; done
    return 1
}
stop() { kill -TERM "$PID"; wait "$PID"; local rc=$?; PID=; return $rc; }

# ---- batching ----
check "start (max-delay-us $DELAY)" start --max-delay-us $DELAY --max-batch 8
photos=(dog eagle giraffe horses)
for p in "${photos[@]}"; do
    curl -s --data-binary @$IMGS/$p.jpg "$URL/v1/classify?topk=5" >"$TMP/single_$p"
done
curl -s "$URL/metrics" >"$TMP/m0"
for i in $(seq 0 15); do
    p=${photos[$((i % 4))]}
    curl -s --data-binary @$IMGS/$p.jpg "$URL/v1/classify?topk=5" -o "$TMP/conc_$i" &
done
wait $(jobs -p | grep -v "^$PID$") 2>/dev/null
same=0
for i in $(seq 0 15); do
    p=${photos[$((i % 4))]}
    cmp -s "$TMP/conc_$i" "$TMP/single_$p" && same=$((same + 1))
done
check_eq "16 concurrent replies equal the single-request replies" "$same" 16
curl -s "$URL/metrics" >"$TMP/m1"
b1() { awk -v f="$2" '$1==f {print $2}' "$1"; }
ones=$(( $(b1 "$TMP/m1" 'resnetd_batch_size_bucket{le="1"}') - $(b1 "$TMP/m0" 'resnetd_batch_size_bucket{le="1"}') ))
all=$(( $(b1 "$TMP/m1" resnetd_batch_size_count) - $(b1 "$TMP/m0" resnetd_batch_size_count) ))
echo "# 16 concurrent requests ran as $all batches, $ones of size 1"
check "batch-size histogram shows batches larger than 1" test "$all" -gt "$ones"
check_eq "images counted" "$(( $(b1 "$TMP/m1" resnetd_images_total) - $(b1 "$TMP/m0" resnetd_images_total) ))" 16
check "SIGTERM: exit 0" stop

# ---- overload: --max-queue 4, 32 concurrent clients ----
check "start (max-queue 4)" start --max-queue 4 --max-batch 4 --workers 1
for i in $(seq 1 32); do
    curl -s --data-binary @$IMGS/dog.jpg -D "$TMP/ov_$i.h" -o "$TMP/ov_$i" -w '%{http_code}\n' \
        "$URL/v1/classify" >"$TMP/ov_$i.code" &
done
wait $(jobs -p | grep -v "^$PID$") 2>/dev/null
n200=0 n503=0 other=0 retry=0
for i in $(seq 1 32); do
    case $(cat "$TMP/ov_$i.code") in
    200) n200=$((n200 + 1)) ;;
    503) n503=$((n503 + 1))
         grep -qi '^Retry-After: ' "$TMP/ov_$i.h" && jq -e '.code=="queue_full"' "$TMP/ov_$i" >/dev/null &&
             retry=$((retry + 1)) ;;
    *) other=$((other + 1)) ;;
    esac
done
echo "# overload: $n200 x 200, $n503 x 503, $other other"
check_eq "overload: only 200 and 503 (no dropped connection)" "$other" 0
check "overload: some requests served" test "$n200" -gt 0
check_eq "overload: every 503 has Retry-After and code queue_full" "$retry" "$n503"
if [ "$MODEL" = models/resnet50.safetensors ]; then
    check "overload: the queue bound is enforced (some 503s)" test "$n503" -gt 0
fi
check "still serving after overload" curl -sf --data-binary @$IMGS/dog.jpg "$URL/v1/classify" -o /dev/null
check "SIGTERM: exit 0" stop

# ---- deadline: waited too long in the queue -> 504, not computed ----
check "start (request-timeout-ms 1)" start --request-timeout-ms 1 --workers 1 --max-batch 1
for i in $(seq 1 8); do
    curl -s --data-binary @$IMGS/dog.jpg -o "$TMP/to_$i" -w '%{http_code}\n' "$URL/v1/classify" >"$TMP/to_$i.code" &
done
wait $(jobs -p | grep -v "^$PID$") 2>/dev/null
codes=$(cat "$TMP"/to_*.code | sort | uniq -c | tr -s ' \n' ' ')
echo "# deadline: $codes"
check "deadline: only 200 and 504" bash -c "! cat '$TMP'/to_*.code | grep -vqE '^(200|504)$'"
check "deadline: some 504 with code timeout" bash -c "grep -l timeout '$TMP'/to_? | head -1 | grep -q ."
check "SIGTERM: exit 0" stop

# ---- SIGTERM with requests in flight: all answered, then exit 0 ----
check "start" start --workers 1
for i in 1 2 3; do
    curl -s -F a=@$IMGS/dog.jpg -F b=@$IMGS/eagle.jpg -F c=@$IMGS/horses.jpg -F d=@$IMGS/kite.jpg \
        -o "$TMP/term_$i" -w '%{http_code}\n' "$URL/v1/classify" >"$TMP/term_$i.code" &
done
sleep 0.3
kill -TERM "$PID"
sleep 0.05
curl -s -o /dev/null -w '%{http_code}\n' "$URL/v2/health/live" >"$TMP/after_term.code" 2>/dev/null
rc=0; wait "$PID" || rc=$?
PID=
wait
check_eq "SIGTERM in flight: exit 0" "$rc" 0
check_eq "SIGTERM in flight: every accepted request answered 200" "$(cat "$TMP"/term_?.code | sort -u)" 200
check "SIGTERM: new connections refused" bash -c "grep -qE '^(000|503)$' '$TMP/after_term.code'"
check "no 500 in the access log" bash -c "! grep -q '\" 500 ' '$TMP/log'"
tap_done
