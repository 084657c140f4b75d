# Helpers shared by tests/e2e/reliability_*.sh (sourced after lib.sh; not a
# test itself, hence not *.sh): the daemon's start and stop, the load client,
# and /proc readings of the daemon's memory and descriptors.
cd "$ROOT"
BIN=$RESNETD
IMGS=/usr/share/darknet/data
SMALL_MODEL=tests/fixtures/parity/bottleneck.safetensors
TMP=$(mktemp -d)
PID=
BG_PIDS=()
cleanup() {
    for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

# Whether $BIN was built with AddressSanitizer (make asan): its quarantine
# holds freed memory, so RSS figures mean nothing there.
is_asan() { nm -a "$BIN" 2>/dev/null | grep -q __asan_init; }

# The load client (bench/loadgen.c), built once per test run.
LOADGEN=$TMP/loadgen
build_loadgen() {
    cc -O2 -pthread -o "$LOADGEN" bench/loadgen.c -lm
}

# start MODEL FLAGS...: run the daemon on a free port until it is ready;
# sets PID, PORT, URL; its stderr goes to $TMP/log.
start() {
    local model=$1; shift
    PORT=$(free_port)
    URL=http://127.0.0.1:$PORT
    "$BIN" --model "$model" --listen 127.0.0.1:$PORT "$@" 2>>"$TMP/log" &
    PID=$!
    for _ in $(seq 600); do
        curl -sf "$URL/v2/health/ready" -o /dev/null && return 0
        kill -0 "$PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
# start_or_quit MODEL FLAGS...: start, or report and end the test with the log.
start_or_quit() {
    if start "$@"; then ok "start ($*)"; return 0; fi
    not_ok "start ($*)"
    sed 's/^/# /' "$TMP/log" | tail -20
    tap_done
}
# stop: SIGTERM and the daemon's exit status.
stop() { kill -TERM "$PID"; wait "$PID"; local rc=$?; PID=; return $rc; }

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
fd_count() { ls "/proc/$1/fd" | wc -l; }
# kv FILE KEY: a value of the load client's key=value output (0 if absent).
kv() { local v; v=$(awk -F= -v k="$2" '$1==k {print $2}' "$1"); echo "${v:-0}"; }

# A multipart body of two photos and a KServe v2 BYTES request of one, for
# load mixes; written to $TMP/multipart.body and $TMP/v2_bytes.json.
make_bodies() {
    local b=reliabilityboundary
    {
        printf -- '--%s\r\nContent-Disposition: form-data; name="img"; filename="dog.jpg"\r\nContent-Type: image/jpeg\r\n\r\n' $b
        cat $IMGS/dog.jpg
        printf -- '\r\n--%s\r\nContent-Disposition: form-data; name="img"; filename="eagle.jpg"\r\nContent-Type: image/jpeg\r\n\r\n' $b
        cat $IMGS/eagle.jpg
        printf -- '\r\n--%s--\r\n' $b
    } >"$TMP/multipart.body"
    MULTIPART_CT="multipart/form-data; boundary=$b"
    printf '{"id":"soak","inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["%s"]}],"outputs":[{"name":"probabilities","parameters":{"classification":3}}]}' \
        "$(base64 -w0 $IMGS/giraffe.jpg)" >"$TMP/v2_bytes.json"
}
