#!/usr/bin/env bash
# A short session under valgrind memcheck: resnetd serves the small model,
# answers one request of each kind (every route, raw, multipart, v2 JSON and
# binary) and a set of bad ones, sees a client hang up mid-upload, and exits
# on SIGTERM; memcheck must report no invalid access and no definite leak.
# tests/e2e/valgrind.supp holds the suppressions (OpenBLAS, glibc only).
# Skipped when valgrind is missing or the build uses AddressSanitizer.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/reliability_common.bash"
if ! command -v valgrind >/dev/null; then
    ok "valgrind session # SKIP valgrind is not installed"
    tap_done
fi
if is_asan; then
    ok "valgrind session # SKIP the build uses AddressSanitizer"
    tap_done
fi
MODEL=$SMALL_MODEL
NAME=$(basename $MODEL .safetensors)
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite \
    --errors-for-leak-kinds=definite --error-exitcode=99 --num-callers=30 \
    --suppressions=tests/e2e/valgrind.supp --log-file="$TMP/vg" \
    "$BIN" --model $MODEL --listen 127.0.0.1:$PORT --workers 1 --threads 1 --http-threads 1 \
    --max-body-bytes 1M 2>"$TMP/log" &
PID=$!
up=0
for _ in $(seq 1200); do
    curl -sf "$URL/v2/health/ready" -o /dev/null && { up=1; break; }
    kill -0 $PID 2>/dev/null || break
    sleep 0.1
done
if [ $up = 0 ]; then
    not_ok "resnetd starts under valgrind"
    tail -20 "$TMP/vg" "$TMP/log" | sed 's/^/# /'
    tap_done
fi
ok "resnetd starts under valgrind"

# code EXPECTED CURL_ARGS...: the status of one request.
code() {
    local want=$1; shift
    local got
    got=$(curl -s -o "$TMP/body" -w '%{http_code}' --max-time 60 "$@")
    [ "$got" = "$want" ] || { echo "# $* -> $got, want $want: $(head -c 200 "$TMP/body")"; return 1; }
}
make_bodies
printf '{"inputs":[{"name":"input","datatype":"FP32","shape":[1,3,32,32],"data":[%s0]}]}' \
    "$(printf '0.5,%.0s' $(seq 3071))" >"$TMP/fp32.json"
printf '{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":%d}}]}' \
    $(( $(stat -c %s $IMGS/dog.jpg) + 4 )) >"$TMP/bin.json"
hl=$(stat -c %s "$TMP/bin.json")
{ cat "$TMP/bin.json"; python3 -c "import struct,sys; sys.stdout.buffer.write(struct.pack('<I', $(stat -c %s $IMGS/dog.jpg)))"; cat $IMGS/dog.jpg; } >"$TMP/bin.body"
head -c 3000 $IMGS/dog.jpg >"$TMP/trunc.jpg"
head -c 1200000 /dev/zero >"$TMP/big"

good=0 n=0
for req in \
    "200 $URL/v1/models" "200 $URL/v2" "200 $URL/v2/health/live" "200 $URL/v2/models/$NAME" \
    "200 $URL/v2/models/$NAME/ready" "200 $URL/metrics" \
    "200 --data-binary @$IMGS/dog.jpg $URL/v1/classify?topk=3" \
    "200 --data-binary @$IMGS/eagle.jpg $URL/v1/embed" \
    "200 -F a=@$IMGS/dog.jpg -F b=@$IMGS/horses.jpg $URL/v1/classify" \
    "200 --data-binary @$TMP/fp32.json $URL/v2/models/$NAME/infer" \
    "200 --data-binary @$TMP/v2_bytes.json $URL/v2/models/$NAME/infer" \
    "200 -H Inference-Header-Content-Length:$hl --data-binary @$TMP/bin.body $URL/v2/models/$NAME/infer" \
    "411 -X POST $URL/v1/classify" \
    "415 -H Content-Type:text/plain --data-binary hello $URL/v1/classify" \
    "400 --data-binary @$TMP/trunc.jpg $URL/v1/classify" \
    "400 --data-binary @$IMGS/dog.jpg $URL/v1/classify?topk=0" \
    "404 --data-binary @$IMGS/dog.jpg $URL/v1/classify?model=nope" \
    "404 $URL/nowhere" "405 $URL/v1/classify" \
    "413 --data-binary @$TMP/big $URL/v1/classify" \
    "400 -H Content-Type:multipart/form-data --data-binary x $URL/v1/classify" \
    "400 --data-binary {nope $URL/v2/models/$NAME/infer" \
    "400 --data-binary {\"inputs\":[{\"datatype\":\"FP32\",\"shape\":[1,3,8,8],\"data\":[1]}]} $URL/v2/models/$NAME/infer"; do
    n=$((n + 1))
    # shellcheck disable=SC2086
    code $req && good=$((good + 1))
done
check_eq "each request answered with its status under valgrind" "$good" "$n"
python3 - "$PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n\r\n" + b"\xff" * 1000)
s.close()
PY
sleep 1
check "still ready after a client hung up mid-upload" curl -sf --max-time 30 "$URL/v2/health/ready" -o /dev/null
kill -TERM $PID
wait $PID
rc=$?
PID=
grep -E "ERROR SUMMARY|definitely lost|indirectly lost|possibly lost|still reachable" "$TMP/vg" | sed 's/^==[0-9]*== /# /'
check_eq "memcheck: exit status 0 (99 would mean errors or definite leaks)" "$rc" 0
check "memcheck: no errors" grep -q "ERROR SUMMARY: 0 errors" "$TMP/vg"
check "memcheck: nothing definitely lost" \
    bash -c "! grep -q 'definitely lost: [1-9]' '$TMP/vg'"
[ $rc = 0 ] || sed -n '/Invalid\|definitely lost in/,+25p' "$TMP/vg" | head -80 | sed 's/^/# /'
tap_done
