#!/usr/bin/env bash
# resnetd --precision: a bf16 daemon says, in each model's log line, /v1/models
# and KServe v2 metadata, the precision the model runs in (bf16 where the CPU
# has avx512_bf16, fp32 elsewhere; ResNeXt's grouped convolutions alike), and
# says it truly: a model reported fp32 scores exactly as under --precision fp32
# and one reported bf16 does not, yet keeps fp32's top-1. SIGHUP reloads at the
# same precision. A bad --precision or RESNETD_PRECISION exits 2 naming it.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
BIN=$RESNETD
PY=/usr/bin/python3
M1=tests/fixtures/parity/bottleneck.safetensors
M2=tests/fixtures/parity/resnext.safetensors
IMGS=/usr/share/darknet/data
TMP=$(mktemp -d)
P32= P16=
cleanup() {
    for p in $P32 $P16; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

# What a bf16 model should run in here: the library needs avx512_bf16 and the
# AVX-512 kernels (RN_ISA unset, auto or avx512).
WANT=fp32
grep -qw avx512_bf16 /proc/cpuinfo && WANT=bf16
case ${RN_ISA:-auto} in auto | avx512) ;; *) WANT=fp32 ;; esac
echo "# bf16 models should run in $WANT on this machine"

check "--help lists --precision fp32|bf16" bash -c "'$BIN' --help | grep -qE '^  --precision fp32\|bf16 '"

# ---- bad values: exit 2 before loading anything, the message names the setting ----
# (timeout: a daemon that accepted the value would serve on and never exit)
timeout 10 "$BIN" --model "$M1" --listen 127.0.0.1:$(free_port) --precision fp64 2>"$TMP/bad.err"
check_eq "--precision fp64: exit status 2" "$?" 2
check "--precision fp64: the error names --precision and the accepted values ($(cat "$TMP/bad.err"))" \
    grep -q -- "--precision fp64: expected fp32 or bf16" "$TMP/bad.err"
RESNETD_PRECISION=fp64 timeout 10 "$BIN" --model "$M1" --listen 127.0.0.1:$(free_port) 2>"$TMP/bad.err"
check_eq "RESNETD_PRECISION=fp64: exit status 2" "$?" 2
check "RESNETD_PRECISION=fp64: the error names RESNETD_PRECISION ($(cat "$TMP/bad.err"))" \
    grep -q "RESNETD_PRECISION fp64: expected fp32 or bf16" "$TMP/bad.err"

# ---- an fp32 and a bf16 daemon on the same models ----
# One worker of one thread each: the same FP32 code on the same batches then
# gives bit-identical scores, which the truth check below relies on.
start() { # PRECISION: starts a daemon, sets URL_<PRECISION> and P<bits>
    local port
    port=$(free_port)
    "$BIN" --model "$M1" --model "$M2" --listen 127.0.0.1:$port --workers 1 --threads 1 \
        --precision "$1" 2>"$TMP/$1.log" &
    if [ "$1" = fp32 ]; then P32=$!; else P16=$!; fi
    printf -v "URL_$1" '%s' "http://127.0.0.1:$port"
    wait_ready "http://127.0.0.1:$port"
}
start fp32
check "the fp32 daemon becomes ready" curl -sf "$URL_fp32/v2/health/ready" -o /dev/null
start bf16
check "the bf16 daemon becomes ready" curl -sf "$URL_bf16/v2/health/ready" -o /dev/null

# ---- what each model runs in, in the metadata and the log ----
prec() { curl -s "$1/v1/models" | jq -c '[.models[] | {(.name): .precision}] | add'; }
check_eq "/v1/models, --precision fp32: every model fp32" "$(prec "$URL_fp32")" \
    '{"bottleneck":"fp32","resnext":"fp32"}'
check_eq "/v1/models, --precision bf16: bottleneck and resnext (grouped) $WANT" \
    "$(prec "$URL_bf16")" "{\"bottleneck\":\"$WANT\",\"resnext\":\"$WANT\"}"
curl -s "$URL_bf16/v2/models/bottleneck" >"$TMP/v2meta"
check_eq "KServe v2 metadata, --precision bf16: parameters.precision" \
    "$(jq -r '.parameters.precision' "$TMP/v2meta")" "$WANT"
check "KServe v2 metadata keeps its fields" jq -e '.name=="bottleneck" and .platform=="resnetd_safetensors"
    and .versions==["1"] and .inputs[0].shape==[-1,3,224,224] and .outputs[0].shape==[-1,12]' \
    "$TMP/v2meta" >/dev/null
check_eq "KServe v2 metadata, --precision fp32: parameters.precision" \
    "$(curl -s "$URL_fp32/v2/models/resnext" | jq -r '.parameters.precision')" fp32
check "fp32 log: 'model bottleneck: ... precision fp32,'" \
    grep -q "model bottleneck: .*, precision fp32, .*(default)$" "$TMP/fp32.log"
for m in bottleneck resnext; do
    if [ $WANT = bf16 ]; then
        check "bf16 log: 'model $m: ... precision bf16,'" \
            grep -q "model $m: .*, precision bf16, " "$TMP/bf16.log"
    else
        check "bf16 log: 'model $m: ... precision fp32 (bf16 requested: why)'" \
            grep -q "model $m: .*, precision fp32 (bf16 requested: [^)]*), " "$TMP/bf16.log"
    fi
done

# ---- classification: the same top-1, and the reported precision is what ran ----
photos=("$IMGS"/*.jpg)
form=()
for p in "${photos[@]}"; do form+=(-F "img=@$p"); done
classify() { # URL MODEL OUT: every photo, every class
    curl -s -o "$3" -w '%{http_code}' "${form[@]}" "$1/v1/classify?model=$2&topk=1000"
}
for m in bottleneck resnext; do
    check_eq "$m: fp32 daemon classifies ${#photos[@]} photos" \
        "$(classify "$URL_fp32" $m "$TMP/$m.fp32")" 200
    check_eq "$m: bf16 daemon classifies ${#photos[@]} photos" \
        "$(classify "$URL_bf16" $m "$TMP/$m.bf16")" 200
    reported=$(prec "$URL_bf16" | jq -r ".$m")
    # prints: the photos whose top-1 differ, whether every score is
    # bit-identical, and the largest probability difference
    read -r diff same dmax < <($PY - "$TMP/$m.fp32" "$TMP/$m.bf16" <<'PY'
import json, sys
a, b = (json.load(open(f))["results"] for f in sys.argv[1:3])
assert len(a) == len(b) > 0
diff = [x["name"] for x, y in zip(a, b) if x["predictions"][0]["index"] != y["predictions"][0]["index"]]
same = all(x["predictions"] == y["predictions"] for x, y in zip(a, b))
dmax = max(abs(p["score"] - {q["index"]: q["score"] for q in y["predictions"]}[p["index"]])
           for x, y in zip(a, b) for p in x["predictions"])
print(",".join(diff) or "none", "identical" if same else "different", "%.2g" % dmax)
PY
)
    check_eq "$m: bf16 top-1 equals fp32's on every photo" "$diff" none
    check "$m: probabilities within 0.02 of fp32's (max $dmax)" \
        awk -v d="$dmax" 'BEGIN { exit !(d != "" && d <= 0.02) }'
    want_same=different
    [ "$reported" = fp32 ] && want_same=identical
    check_eq "$m: reported $reported, so its scores and fp32's are $want_same" "$same" "$want_same"
done
jq -r '"# bottleneck dog.jpg top-1: class \(.results[] | select(.name=="dog.jpg") | .predictions[0] | "\(.index) \(.score)")"' \
    "$TMP/bottleneck.bf16"

# ---- SIGHUP reloads at the same precision ----
kill -HUP $P16
for _ in $(seq 100); do grep -q "reload done" "$TMP/bf16.log" && break; sleep 0.1; done
check "bf16 daemon: the reload is done" grep -q "reload done" "$TMP/bf16.log"
check_eq "after SIGHUP, /v1/models still reports bottleneck $WANT" "$(prec "$URL_bf16" | jq -r .bottleneck)" \
    "$WANT"
check_eq "after SIGHUP, the reload logs each model again with its precision" \
    "$(grep -c "model bottleneck: .*, precision $WANT[ ,]" "$TMP/bf16.log")" 2
classify "$URL_bf16" bottleneck "$TMP/reloaded" >/dev/null
check "after SIGHUP, the scores equal those before it (the same precision)" \
    cmp -s "$TMP/reloaded" "$TMP/bottleneck.bf16"

for v in fp32 bf16; do
    pid=$P32
    [ $v = bf16 ] && pid=$P16
    kill -TERM $pid
    wait $pid
    check_eq "the $v daemon exits 0 on SIGTERM" "$?" 0
done
P32= P16=
tap_done
