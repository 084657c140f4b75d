#!/usr/bin/env bash
# The systemd notify protocol, driven as systemd drives it: NOTIFY_SOCKET names
# a datagram socket this test listens on, WATCHDOG_USEC/WATCHDOG_PID turn the
# watchdog on. READY=1 after the model is loaded and warmed up; WATCHDOG=1
# while serving; RELOADING=1 (with MONOTONIC_USEC) then READY=1 on SIGHUP, with
# requests answered throughout; a failed reload keeps serving and still ends
# with READY=1; STOPPING=1 on SIGTERM, an in-flight request still answered 200
# and exit status 0.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
BIN=$RESNETD
FX=tests/fixtures/parity
DOG=/usr/share/darknet/data/dog.jpg
TMP=$(mktemp -d)
PID=
LISTENER=
LOADER=
cleanup() {
    [ -n "$LOADER" ] && kill "$LOADER" 2>/dev/null
    [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
    [ -n "$LISTENER" ] && kill "$LISTENER" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

# The listener: one line per datagram, newlines inside shown as '|'.
/usr/bin/python3 - "$TMP/notify.sock" "$TMP/msgs" <<'PY' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        out.write(s.recv(4096).decode(errors="replace").replace("\n", "|") + "\n")
PY
LISTENER=$!
for _ in $(seq 50); do [ -S "$TMP/notify.sock" ] && break; sleep 0.1; done
touch "$TMP/msgs"

cp $FX/bottleneck.safetensors "$TMP/m.safetensors"
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
( export NOTIFY_SOCKET=$TMP/notify.sock WATCHDOG_USEC=1000000 WATCHDOG_PID=$BASHPID
  exec "$BIN" --model "$TMP/m.safetensors" --listen 127.0.0.1:$PORT ) 2>"$TMP/log" &
PID=$!
wait_msg() { # regex, [count]: wait until the regex has matched count lines
    local n=${2:-1}
    for _ in $(seq 150); do
        [ "$(grep -cE "$1" "$TMP/msgs")" -ge "$n" ] && return 0
        sleep 0.1
    done
    return 1
}
check "READY=1" wait_msg '^READY=1$'
check "ready over HTTP by the time READY=1 was sent" curl -sf "$URL/v2/health/ready" -o /dev/null
check "the log says loaded and warmed before READY=1" grep -q "ready on http" "$TMP/log"
check "STATUS= says what is served" grep -qE '^STATUS=.+' "$TMP/msgs"
check "WATCHDOG=1 pings (WatchdogSec=1s: every 0.5 s)" wait_msg '^WATCHDOG=1$' 3

# requests all through the reloads
( while :; do
      curl -s -o /dev/null -w '%{http_code}\n' --data-binary @$DOG "$URL/v1/classify" >>"$TMP/codes"
  done ) &
LOADER=$!
sleep 0.3
cp $FX/basic.safetensors "$TMP/m.new" && mv "$TMP/m.new" "$TMP/m.safetensors"
kill -HUP $PID
check "SIGHUP: RELOADING=1 with MONOTONIC_USEC" wait_msg '^RELOADING=1\|MONOTONIC_USEC=[0-9]+$'
check "then READY=1 again" wait_msg '^READY=1$' 2
check "after RELOADING=1" bash -c "grep -nE '^(RELOADING|READY)=1' '$TMP/msgs' | tail -2 | cut -d: -f2 | tr '\n' ' ' | grep -q '^RELOADING=1|MONOTONIC_USEC=[0-9]* READY=1 $'"
check_eq "the new model serves (10 classes)" "$(curl -s "$URL/v1/models" | jq '.models[0].classes')" 10

head -c 1000 $FX/resnext.safetensors >"$TMP/m.safetensors"
kill -HUP $PID
check "a failed reload: RELOADING=1..." wait_msg '^RELOADING=1' 2
check "...then READY=1, still serving" wait_msg '^READY=1$' 3
check "STATUS= tells the reload failed" wait_msg '^STATUS=.*fail'
check_eq "the previous model serves on" "$(curl -s "$URL/v1/models" | jq '.models[0].classes')" 10
kill "$LOADER"; wait "$LOADER" 2>/dev/null; LOADER=
n=$(wc -l <"$TMP/codes")
bad=$(grep -vc '^200$' "$TMP/codes")
check "$n requests during the reloads, all 200 ($bad not)" [ "$n" -gt 0 -a "$bad" -eq 0 ]

# SIGTERM with a request in flight: a photo uploaded slowly (about 1 s)
curl -s -o "$TMP/last" -w '%{http_code}' --limit-rate 160k --data-binary @$DOG \
    "$URL/v1/classify" >"$TMP/last_code" &
CURL=$!
sleep 0.3
kill -TERM $PID
wait $PID
check_eq "SIGTERM exits 0" "$?" 0
PID=
wait $CURL
check_eq "the request in flight was answered 200" "$(cat "$TMP/last_code")" 200
check "STOPPING=1" wait_msg '^STOPPING=1$'
tap_done
