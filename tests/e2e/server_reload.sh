#!/usr/bin/env bash
# SIGHUP: resnetd loads the model again from its path beside the old one and
# swaps it in; requests keep being answered throughout; a reload from a broken
# file fails cleanly and the previous model serves on.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
BIN=$RESNETD
FX=tests/fixtures/parity
DOG=/usr/share/darknet/data/dog.jpg
TMP=$(mktemp -d)
PID=
LOADER=
cleanup() {
    [ -n "$LOADER" ] && kill "$LOADER" 2>/dev/null
    [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

cp $FX/bottleneck.safetensors "$TMP/m.safetensors"
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
"$BIN" --model "$TMP/m.safetensors" --listen 127.0.0.1:$PORT 2>"$TMP/log" &
PID=$!
wait_ready "$URL"
classes() { curl -s "$URL/v1/models" | jq '.models[0].classes'; }
check_eq "serves the bottleneck fixture (12 classes)" "$(classes)" "12"

# a steady stream of requests through both reloads: every one must be a 200
( while :; do
      curl -s -o /dev/null -w '%{http_code}\n' --data-binary @$DOG "$URL/v1/classify" >>"$TMP/codes"
  done ) &
LOADER=$!
sleep 0.5

cp $FX/basic.safetensors "$TMP/m.new" && mv "$TMP/m.new" "$TMP/m.safetensors"
kill -HUP $PID
for _ in $(seq 100); do grep -q "reload done" "$TMP/log" && break; sleep 0.1; done
check "the reload is logged as done" grep -q "reload done" "$TMP/log"
check_eq "the new model is served (10 classes)" "$(classes)" "10"
got=$(curl -s --data-binary @$DOG "$URL/v1/classify?topk=1" | jq -r '.predictions[0] | (.index|tostring) == .label')
check_eq "its replies label classes by index (the basic fixture has no names)" "$got" "true"

head -c 1000 $FX/resnext.safetensors >"$TMP/m.safetensors" # truncated on disk
kill -HUP $PID
for _ in $(seq 100); do grep -q "reload failed" "$TMP/log" && break; sleep 0.1; done
check "a reload from a truncated file fails with a reason" \
    grep -q "reload failed, still serving the previous models: model m: .*m.safetensors" "$TMP/log"
check_eq "the previous model serves on" "$(classes)" "10"
check "the daemon is still ready" curl -sf "$URL/v2/health/ready" -o /dev/null
sleep 0.3
kill "$LOADER"; wait "$LOADER" 2>/dev/null; LOADER=

n=$(wc -l <"$TMP/codes")
non200=$(grep -vc '^200$' "$TMP/codes")
check "$n requests during the reloads, all answered 200 ($non200 not)" [ "$n" -gt 0 -a "$non200" -eq 0 ]
kill -TERM $PID
wait $PID
check_eq "SIGTERM exits 0" "$?" "0"
PID=
tap_done
