#!/usr/bin/env bash
# The micro-kernel tables (enum rn_isa): RN_ISA chooses one, a CPU that lacks
# it is refused with a message, and what runs is reported by `resnet info`,
# `resnet bench`'s JSON, the daemon's log, /v1/models, KServe metadata and
# /metrics. Then, on every table this CPU runs, the daemon's answers do not
# depend on batching: concurrent requests of different photos (batched by
# --max-delay-us) and a multipart request of several photos give, for each
# photo, the bytes of its single-request reply.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
BIN=$RESNETD
TOOL=$ROOT/$BUILD/resnet
case $BUILD in /*) TOOL=$BUILD/resnet ;; esac
MODEL=tests/fixtures/parity/bottleneck.safetensors
IMGS=/usr/share/darknet/data
daemon_scratch

# What this CPU runs, from /proc/cpuinfo (the library reads cpuid itself).
flags=$(grep -m1 -E '^(flags|Features)' /proc/cpuinfo)
has() { for f in "$@"; do [[ " $flags " == *" $f "* ]] || return 1; done; }
TABLES=(c)
BEST=c
case $(uname -m) in
x86_64)
    if has avx2 fma; then TABLES+=(avx2); BEST=avx2; fi
    if has avx2 fma avx512f avx512bw avx512dq avx512vl; then TABLES+=(avx512); BEST=avx512; fi
    ABSENT=neon ;;
aarch64) TABLES+=(neon); BEST=neon; ABSENT=avx512 ;;
esac
TABLES+=(blas)
echo "# tables this CPU runs: ${TABLES[*]}; the default should be $BEST"

isa_of() { "$TOOL" info "$MODEL" --json | jq -r .isa; }
check_eq "resnet info: the default table is $BEST" "$(env -u RN_ISA "$TOOL" info "$MODEL" --json | jq -r .isa)" "$BEST"
check "resnet info (text) names the kernels" bash -c "env -u RN_ISA '$TOOL' info '$MODEL' | grep -q '^kernels: *$BEST '"
for t in "${TABLES[@]}"; do
    check_eq "RN_ISA=$t: resnet info reports $t" "$(RN_ISA=$t isa_of)" "$t"
done
check_eq "RN_ISA=auto is the default" "$(RN_ISA=auto isa_of)" "$BEST"
check_eq "resnet bench's JSON says the table" \
    "$(RN_ISA=c "$TOOL" bench -m "$MODEL" --seconds 1 --size 64 2>/dev/null | tail -1 | jq -r .isa)" c

RN_ISA=$ABSENT "$TOOL" info "$MODEL" >/dev/null 2>"$TMP/absent.err"
check "RN_ISA=$ABSENT on this CPU: refused" test $? -ne 0
check "RN_ISA=$ABSENT: the message says what it needs ($(head -c 200 "$TMP/absent.err"))" \
    grep -q "RN_ISA $ABSENT: this CPU cannot run it (it needs " "$TMP/absent.err"
RN_ISA=sse9 "$TOOL" info "$MODEL" >/dev/null 2>"$TMP/bogus.err"
check "RN_ISA=sse9: refused" test $? -ne 0
check "RN_ISA=sse9: the message lists the names ($(head -c 200 "$TMP/bogus.err"))" \
    grep -q "RN_ISA=sse9: expected auto, avx512, avx2, neon, c or blas" "$TMP/bogus.err"
RN_ISA=$ABSENT timeout 20 "$BIN" --model "$MODEL" --listen 127.0.0.1:$(free_port) 2>"$TMP/d.err"
check "resnetd under RN_ISA=$ABSENT exits non-zero, naming RN_ISA" \
    bash -c "[ $? -ne 0 ] && grep -q 'RN_ISA $ABSENT' '$TMP/d.err'"

start() { # ISA
    PORT=$(free_port)
    URL=http://127.0.0.1:$PORT
    RN_ISA=$1 "$BIN" --model "m=$MODEL" --listen 127.0.0.1:$PORT --max-batch 8 --max-delay-us 30000 \
        --workers 1 2>"$TMP/log_$1" &
    PID=$!
    wait_ready "$URL"
}
stop() { kill -TERM "$PID"; wait "$PID"; local rc=$?; PID=; return $rc; }

photos=(dog eagle giraffe horses kite person scream)
for t in "${TABLES[@]}"; do
    check "$t: the daemon starts" start "$t"
    check_eq "$t: /v1/models reports the table" "$(curl -s "$URL/v1/models" | jq -r '.models[0].isa')" "$t"
    check_eq "$t: KServe metadata reports it" "$(curl -s "$URL/v2/models/m" | jq -r .parameters.isa)" "$t"
    check "$t: /metrics has resnetd_model_info with isa=\"$t\"" \
        bash -c "curl -s '$URL/metrics' | grep -q '^resnetd_model_info{model=\"m\",.*isa=\"$t\"'"
    check "$t: the log line names the kernels" grep -q "model m: .*kernels $t" "$TMP/log_$t"
    for p in "${photos[@]}"; do
        curl -s --data-binary @$IMGS/$p.jpg "$URL/v1/classify?topk=1000" >"$TMP/single_$p"
    done
    for p in "${photos[@]}"; do
        curl -s --data-binary @$IMGS/$p.jpg "$URL/v1/classify?topk=1000" -o "$TMP/conc_$p" &
    done
    wait $(jobs -p | grep -v "^$PID$") 2>/dev/null
    check "$t: the concurrent photos ran in batches larger than 1" batched "$URL"
    same=0
    for p in "${photos[@]}"; do cmp -s "$TMP/conc_$p" "$TMP/single_$p" && same=$((same + 1)); done
    check_eq "$t: ${#photos[@]} concurrent photos, each reply the bytes of its single reply" "$same" "${#photos[@]}"
    args=()
    for p in horses dog scream eagle; do args+=(-F "img=@$IMGS/$p.jpg"); done
    curl -s "${args[@]}" "$URL/v1/classify?topk=1000" >"$TMP/multi"
    same=0 i=0
    for p in horses dog scream eagle; do
        [ "$(jq -c ".results[$i].predictions" "$TMP/multi")" == "$(jq -c .predictions "$TMP/single_$p")" ] &&
            same=$((same + 1))
        i=$((i + 1))
    done
    check_eq "$t: a multipart batch of 4 photos scores each as its single request" "$same" 4
    check "$t: SIGTERM exits 0" stop
done
tap_done
