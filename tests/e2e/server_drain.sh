#!/usr/bin/env bash
# SIGTERM drains as a replica behind a load balancer needs: new connections
# are refused, /v2/health/ready answers 503 on a connection already open, a
# request in flight is answered 200, every reply from then on carries
# Connection: close and the connection ends after it (keep-alive clients go
# to another replica instead of queueing here), and the daemon exits 0.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
BIN=$RESNETD
M1=tests/fixtures/parity/bottleneck.safetensors
IMG=tests/fixtures/images/dog_progressive.jpg
daemon_scratch

PORT=$(free_port)
URL=http://127.0.0.1:$PORT
"$BIN" --model "$M1" --listen 127.0.0.1:$PORT 2>"$TMP/log" &
PID=$!
check "daemon becomes ready" wait_ready "$URL"

# get FD PATH: one GET on the open connection FD; prints "STATUS close" when
# the reply says Connection: close, "STATUS keep" otherwise, "none" without one.
get() {
    local line status len=0 conn=keep
    printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&"$1"
    IFS= read -r -t 5 line <&"$1" || { echo none; return; }
    status=$(echo "$line" | cut -d' ' -f2)
    while IFS= read -r -t 5 line <&"$1"; do
        line=${line%$'\r'}
        [ -z "$line" ] && break
        case ${line,,} in
        content-length:*) len=${line#*:}; len=${len// /} ;;
        connection:*close*) conn=close ;;
        esac
    done
    [ "$len" -gt 0 ] && IFS= read -r -t 5 -N "$len" _ <&"$1"
    echo "$status $conn"
}

# a keep-alive connection, open before the signal
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
check_eq "before SIGTERM: ready, and the connection kept alive" "$(get 3 /v2/health/ready)" "200 keep"

# a request in flight: its body trickles in for about 6 s
curl -s -o "$TMP/a.json" -D "$TMP/a.h" -w '%{http_code}' --limit-rate 20k \
    --data-binary @"$IMG" "$URL/v1/classify" >"$TMP/a.code" &
CURL=$!
for _ in $(seq 50); do
    [ "$(curl -s "$URL/metrics" | awk '$1 == "resnetd_requests_in_flight" {print $2}')" = 2 ] && break
    sleep 0.1
done
kill -TERM "$PID"
for _ in $(seq 50); do grep -q "stopping" "$TMP/log" && break; sleep 0.1; done

check_eq "draining: ready answers 503 and closes the connection" "$(get 3 /v2/health/ready)" "503 close"
# at once, not when the daemon stops after the request in flight
IFS= read -r -t 1 -N 1 _ <&3
check_eq "draining: the connection ends after that reply (EOF)" "$?" 1
exec 3<&-
curl -s -o /dev/null "$URL/v2/health/live"
check_eq "draining: a new connection is refused" "$?" 7

wait "$CURL"
check_eq "the request in flight at SIGTERM is answered 200" "$(cat "$TMP/a.code")" 200
check "its reply is a classification" \
    bash -c "jq -e '.predictions | length == 5' '$TMP/a.json' >/dev/null"
check "its reply says Connection: close" grep -qi '^Connection: *close' "$TMP/a.h"
wait "$PID"
check_eq "the daemon then exits 0" "$?" 0
PID=
tap_done
