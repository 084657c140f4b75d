#!/usr/bin/env bash
# Named layer outputs through the daemon: /v1/models lists every layer a
# model offers with its shape; POST /v1/embed?layer=NAME answers for each of
# them with that shape (pooled, or the whole map with pool=none); the
# embedding and logits layers equal /v1/embed and /v1/classify; an unknown
# layer is a 400 that lists the valid names; and batched and multipart
# replies are the bytes of the single-request replies. Models: timm's
# pre-activation ResNet v2 and ResNet-D fixtures (tests/fixtures/parity).
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
BIN=$RESNETD
P=tests/fixtures/parity
IMGS=/usr/share/darknet/data
daemon_scratch

PORT=$(free_port)
URL=http://127.0.0.1:$PORT
"$BIN" --model v2=$P/resnetv2.safetensors --model d=$P/timm_resnet_d.safetensors \
    --listen 127.0.0.1:$PORT --max-batch 8 --max-delay-us 30000 2>"$TMP/log" &
PID=$!
check "the daemon starts with a v2 and a ResNet-D model" wait_ready "$URL"
curl -s "$URL/v1/models" >"$TMP/models"

for m in v2 d; do
    jq -c ".models[] | select(.name == \"$m\") | .layers[]" "$TMP/models" >"$TMP/layers_$m"
    n=$(wc -l <"$TMP/layers_$m")
    check "$m: /v1/models lists its layers ($n)" test "$n" -gt 8
    bad=0
    while read -r l; do
        name=$(jq -r .name <<<"$l")
        c=$(jq -r '.shape[0]' <<<"$l")
        code=$(curl -s -o "$TMP/r" -w '%{http_code}' --data-binary @$IMGS/dog.jpg \
            "$URL/v1/embed?model=$m&layer=$name")
        got=$(jq -c '[.layer, .pool, .shape, .dim, (.embedding | length)]' "$TMP/r" 2>/dev/null)
        if [ "$code" != 200 ] || [ "$got" != "[\"$name\",\"avg\",[$c],$c,$c]" ]; then
            bad=$((bad + 1))
            echo "# $m layer $name: HTTP $code, $got (want [$c])"
        fi
    done <"$TMP/layers_$m"
    check_eq "$m: every advertised layer answers with its shape, pooled" "$bad" 0
done

# whole maps
l=$(grep '"stages.1.blocks.0"' "$TMP/layers_v2")
want=$(jq -c .shape <<<"$l")
curl -s --data-binary @$IMGS/eagle.jpg "$URL/v1/embed?model=v2&layer=stages.1.blocks.0&pool=none" >"$TMP/full"
check_eq "pool=none: the reply's shape is the advertised one" "$(jq -c .shape "$TMP/full")" "$want"
check_eq "pool=none: channels x height x width values" "$(jq '.embedding | length' "$TMP/full")" \
    "$(jq '.[0] * .[1] * .[2]' <<<"$want")"
curl -s --data-binary @$IMGS/eagle.jpg "$URL/v1/embed?model=v2&layer=stages.1.blocks.0" >"$TMP/avg"
check "pool=none averaged over the map is the pooled output" /usr/bin/python3 - "$TMP/full" "$TMP/avg" <<'PY'
import json, sys
f, a = (json.load(open(p)) for p in sys.argv[1:3])
c, h, w = f["shape"]
e = f["embedding"]
mean = [sum(e[i * h * w:(i + 1) * h * w]) / (h * w) for i in range(c)]
scale = max(abs(v) for v in a["embedding"]) or 1
sys.exit(0 if max(abs(x - y) for x, y in zip(mean, a["embedding"])) <= 1e-5 * scale else 1)
PY

# the embedding and logits layers are /v1/embed and /v1/classify
curl -s --data-binary @$IMGS/dog.jpg "$URL/v1/embed?model=v2" | jq -c .embedding >"$TMP/e1"
curl -s --data-binary @$IMGS/dog.jpg "$URL/v1/embed?model=v2&layer=head.global_pool" | jq -c .embedding >"$TMP/e2"
check "layer=head.global_pool is the embedding" cmp -s "$TMP/e1" "$TMP/e2"
top=$(curl -s --data-binary @$IMGS/dog.jpg "$URL/v1/classify?model=d&topk=1" | jq '.predictions[0].index')
arg=$(curl -s --data-binary @$IMGS/dog.jpg "$URL/v1/embed?model=d&layer=fc" |
    jq '.embedding | to_entries | max_by(.value) | .key')
check_eq "layer=fc: its largest logit is classify's top-1" "$arg" "$top"

# errors
code=$(curl -s -o "$TMP/bad" -w '%{http_code}' --data-binary @$IMGS/dog.jpg "$URL/v1/embed?model=v2&layer=layer3")
check_eq "an unknown layer: 400" "$code" 400
check "... whose message lists the valid names ($(jq -r .error "$TMP/bad" | head -c 120)...)" \
    bash -c "jq -r .error '$TMP/bad' | grep -q 'no such layer; it has: stem, stages.0.blocks.0, '"
code=$(curl -s -o /dev/null -w '%{http_code}' --data-binary @$IMGS/dog.jpg "$URL/v1/embed?model=v2&layer=stem&pool=max")
check_eq "pool=max: 400" "$code" 400
code=$(curl -s -o /dev/null -w '%{http_code}' --data-binary @$IMGS/dog.jpg "$URL/v1/embed?model=v2&pool=none")
check_eq "pool=none without a layer: 400" "$code" 400

# batched replies equal single ones
photos=(dog eagle giraffe horses kite person)
for p in "${photos[@]}"; do
    curl -s --data-binary @$IMGS/$p.jpg "$URL/v1/embed?model=d&layer=layer3&pool=none" >"$TMP/s_$p"
done
for p in "${photos[@]}"; do
    curl -s --data-binary @$IMGS/$p.jpg "$URL/v1/embed?model=d&layer=layer3&pool=none" -o "$TMP/c_$p" &
done
wait $(jobs -p | grep -v "^$PID$") 2>/dev/null
check "the concurrent requests ran in batches larger than 1" batched "$URL"
same=0
for p in "${photos[@]}"; do cmp -s "$TMP/s_$p" "$TMP/c_$p" && same=$((same + 1)); done
check_eq "concurrent layer requests (batched) reply the single-request bytes" "$same" "${#photos[@]}"
curl -s -F img=@$IMGS/kite.jpg -F img=@$IMGS/dog.jpg "$URL/v1/embed?model=d&layer=layer3&pool=none" >"$TMP/multi"
check_eq "a multipart batch: each image's layer as its single request" \
    "$(jq -c '[.results[].embedding]' "$TMP/multi")" \
    "$(jq -s -c '[.[].embedding]' "$TMP/s_kite" "$TMP/s_dog")"
# KServe v2: the layers are the extra outputs in the model's metadata
# parameters (outputs lists what a request naming none gets), and answer by name
curl -s "$URL/v2/models/v2" >"$TMP/meta"
check_eq "KServe metadata lists every layer as an extra output" \
    "$(jq -c '[.parameters.extra_outputs | fromjson | .[] | [.name, .shape[1]]]' "$TMP/meta")" \
    "$(jq -c '[.[] | [.name, .shape[0]]]' <(jq -s . "$TMP/layers_v2"))"
B64=$(base64 -w0 $IMGS/kite.jpg)
printf '{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["%s"]}],"outputs":[{"name":"stages.2","parameters":{"pool":"none"}}]}' \
    "$B64" >"$TMP/v2req"
curl -s -H 'Content-Type: application/json' --data-binary @"$TMP/v2req" "$URL/v2/models/v2/infer" >"$TMP/v2out"
want=$(jq -c '[1] + (.shape)' <<<"$(grep '"stages.2"' "$TMP/layers_v2")")
check_eq "KServe: a layer output by name has shape [N, C, H, W]" "$(jq -c '.outputs[0].shape' "$TMP/v2out")" "$want"
curl -s --data-binary @$IMGS/kite.jpg "$URL/v1/embed?model=v2&layer=stages.2&pool=none" >"$TMP/v1out"
check_eq "KServe's layer output equals /v1/embed's" "$(jq -c '.outputs[0].data' "$TMP/v2out")" \
    "$(jq -c .embedding "$TMP/v1out")"
printf '{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["%s"]}],"outputs":[{"name":"layer9"}]}' \
    "$B64" >"$TMP/v2bad"
code=$(curl -s -o "$TMP/v2err" -w '%{http_code}' --data-binary @"$TMP/v2bad" "$URL/v2/models/v2/infer")
check_eq "KServe: an unknown output is a 400 ($(jq -r .error "$TMP/v2err" | head -c 100))" "$code" 400

kill -TERM "$PID"
wait "$PID"
check_eq "SIGTERM: exit 0" "$?" 0
PID=
tap_done
