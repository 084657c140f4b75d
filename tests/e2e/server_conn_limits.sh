#!/usr/bin/env bash
# --max-connections-per-ip: with N=2, two idle keep-alive connections from
# 127.0.0.1 are served and a third one is closed unanswered; once they close,
# new connections are served again. The flag is validated like the others.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
BIN=$RESNETD
M1=tests/fixtures/parity/bottleneck.safetensors
daemon_scratch

for bad in -1 x 1000001; do
    rc=0; "$BIN" --model "$M1" --max-connections-per-ip "$bad" 2>"$TMP/bad" || rc=$?
    check_eq "--max-connections-per-ip $bad: refused (exit 2)" "$rc" 2
    check "--max-connections-per-ip $bad: the message gives the range" \
        grep -q -- "--max-connections-per-ip $bad: expected an integer from 0 to 1000000" "$TMP/bad"
done

PORT=$(free_port)
URL=http://127.0.0.1:$PORT
# --http-threads 2: the count is the daemon's, not one polling thread's
"$BIN" --model "$M1" --listen 127.0.0.1:$PORT --max-connections-per-ip 2 --http-threads 2 \
    2>"$TMP/log" &
PID=$!
wait_ready "$URL"
check "one connection at a time is served" curl -sf "$URL/v2/health/ready" -o /dev/null

# get FD: one GET on an open connection; prints its status
get() {
    printf 'GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n' >&"$1"
    local line
    IFS= read -r -t 3 line <&"$1" && echo "${line%$'\r'}" | awk '{print $2}'
    # the rest of the reply: headers and the small JSON body
    while IFS= read -r -t 0.3 line <&"$1"; do :; done
}
exec 3<>/dev/tcp/127.0.0.1/$PORT
exec 4<>/dev/tcp/127.0.0.1/$PORT
check_eq "first connection open and served" "$(get 3)" 200
check_eq "second connection open and served" "$(get 4)" 200
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/v2/health/live"); rc=$?
check "a third connection from 127.0.0.1 is refused while two are open (curl rc $rc, status $code)" \
    test "$code" = 000
check "the first two are still served" test "$(get 3) $(get 4)" = "200 200"
exec 3<&- 4<&-
code=000
for _ in $(seq 30); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/v2/health/live") && [ "$code" = 200 ] && break
    sleep 0.1
done
check_eq "once they close, a new connection is served" "$code" 200

kill "$PID"; wait "$PID" 2>/dev/null; PID=
tap_done
