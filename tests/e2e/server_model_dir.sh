#!/usr/bin/env bash
# --model-dir: every weights file of a folder served, named by its file name;
# KServe's storage-initializer layouts (/mnt/models holding one file, or a
# folder holding one) with --model-name; a file that does not load is logged
# and skipped while the others serve; SIGHUP scans the folder again, under
# load with no request failed: a file added is served, one removed is a 404,
# one replaced is served anew, one replaced by a broken file stays as it was.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
FX=tests/fixtures/parity
DOG=/usr/share/darknet/data/dog.jpg
daemon_scratch

# serve LOG ARGS...: the daemon on a free port until ready; sets PID and URL.
serve() {
    local log=$1; shift
    local port; port=$(free_port)
    URL=http://127.0.0.1:$port
    "$RESNETD" --listen 127.0.0.1:$port "$@" 2>"$log" &
    PID=$!
    wait_ready "$URL"
}
stop() { kill -TERM "$PID"; wait "$PID"; local rc=$?; PID=; return $rc; }
names() { curl -s "$URL/v1/models" | jq -c '[.models[].name] | sort'; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

# ---- KServe layout 1: /mnt/models holding the one file ----
mkdir -p "$TMP/k1" && cp $FX/bottleneck.safetensors "$TMP/k1/model.safetensors"
serve "$TMP/log1" --model-dir "$TMP/k1" --model-name flowers
check_eq "a folder holding one file, --model-name: served under that name" "$(names)" '["flowers"]'
check_eq "its v2 readiness" "$(code "$URL/v2/models/flowers/ready")" 200
check_eq "its v2 metadata names it" "$(curl -s "$URL/v2/models/flowers" | jq -r .name)" flowers
check_eq "the file's own name is not served" "$(code "$URL/v2/models/model/ready")" 404
stop

# ---- KServe layout 2: a folder with the one file inside ----
mkdir -p "$TMP/k2/resnet" && cp $FX/basic.safetensors "$TMP/k2/resnet/weights.safetensors"
ln -s resnet "$TMP/k2/..data" # Kubernetes' hidden links are passed over
serve "$TMP/log2" --model-dir "$TMP/k2" --model-name isvc
check_eq "a folder holding a folder with one file: served under --model-name" "$(names)" '["isvc"]'
check_eq "it classifies" "$(curl -s --data-binary @$DOG "$URL/v1/classify?topk=1" | jq '.predictions|length')" 1
stop
serve "$TMP/log2b" --model-dir "$TMP/k2"
check_eq "without --model-name: named by the file" "$(names)" '["weights"]'
stop

# ---- start-up refusals: exit 2, saying why ----
cp $FX/basic.safetensors "$TMP/k1/other.safetensors"
rc=0; "$RESNETD" --model-dir "$TMP/k1" --model-name x --listen 127.0.0.1:1 2>"$TMP/e1" || rc=$?
check "--model-name with two files: exit 2 naming both" \
    bash -c "[ $rc = 2 ] && grep -q 'model.safetensors' '$TMP/e1' && grep -q 'other.safetensors' '$TMP/e1'"
mkdir -p "$TMP/empty" && echo notes >"$TMP/empty/README.md"
rc=0; "$RESNETD" --model-dir "$TMP/empty" --listen 127.0.0.1:1 2>"$TMP/e2" || rc=$?
check "a folder without weights: exit 2 saying so" \
    bash -c "[ $rc = 2 ] && grep -q 'no .safetensors, .pth, .pt or .onnx file' '$TMP/e2'"
rc=0; "$RESNETD" --model-dir "$TMP/k1" --model $FX/basic.safetensors 2>"$TMP/e3" || rc=$?
check "--model with --model-dir: exit 2" bash -c "[ $rc = 2 ] && grep -q 'give one of them' '$TMP/e3'"
RESNETD_MODEL_DIR=$TMP/k2 RESNETD_MODEL_NAME=fromenv serve "$TMP/log2c"
check_eq "RESNETD_MODEL_DIR and RESNETD_MODEL_NAME, from the environment" "$(names)" '["fromenv"]'
stop

# ---- several models, a bad file skipped ----
D=$TMP/models
mkdir -p "$D/sub"
cp $FX/bottleneck.safetensors "$D/keep.safetensors"
cp $FX/bottleneck.safetensors "$D/swap.safetensors"
cp $FX/basic.pth "$D/sub/gone.pth"
head -c 1000 $FX/resnext.safetensors >"$D/broken.safetensors"
serve "$TMP/log" --model-dir "$D"
check_eq "every loadable file served, by name, the folder's one level down too" \
    "$(names)" '["gone","keep","swap"]'
check "the bad file is logged as skipped, with the reason" \
    grep -q "model-dir: skipping $D/broken.safetensors: model broken: .*past the end" "$TMP/log"
check_eq "the skipped file is no model" "$(code "$URL/v2/models/broken/ready")" 404
classes() { curl -s "$URL/v1/models" | jq ".models[] | select(.name==\"$1\") | .classes"; }
check_eq "swap serves the bottleneck fixture (12 classes)" "$(classes swap)" 12

# ---- SIGHUP rescans, under load ----
LOADGEN=$TMP/loadgen
cc -O2 -pthread -o "$LOADGEN" bench/loadgen.c -lm
printf '{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["%s"]}]}' \
    "$(base64 -w0 $DOG)" >"$TMP/v2.json"
"$LOADGEN" -a "${URL#http://}" -c 4 -d 6 -r "/v2/models/keep/infer,application/json,$TMP/v2.json" \
    -r "/v1/classify?model=swap,image/jpeg,$DOG" >"$TMP/load" &
LOAD=$!
sleep 1
cp $FX/basic.safetensors "$D/added.safetensors"
rm "$D/sub/gone.pth"
cp $FX/basic.safetensors "$D/swap.new" && mv "$D/swap.new" "$D/swap.safetensors"
kill -HUP $PID
for _ in $(seq 100); do grep -q "reload done" "$TMP/log" && break; sleep 0.1; done
check "the rescan is logged as done" grep -q "reload done" "$TMP/log"
wait $LOAD
kv() { awk -F= -v k="$2" '$1==k {print $2}' "$1"; }
n=$(kv "$TMP/load" requests); n200=$(kv "$TMP/load" status_200)
check "$n requests across the rescan, every one a 200 ($n200)" [ "$n" -gt 20 -a "$n" = "$n200" ]
check_eq "after it: the models of the folder now" "$(names)" '["added","keep","swap"]'
check_eq "the removed model: 404" "$(code "$URL/v2/models/gone/ready")" 404
check_eq "the added model is served" "$(curl -s --data-binary @$DOG "$URL/v1/classify?model=added&topk=1" | jq '.predictions|length')" 1
check_eq "the replaced file is served anew (10 classes)" "$(classes swap)" 10

# a broken file in place of a served one: that model stays as it was
head -c 1000 $FX/resnext.safetensors >"$D/swap.new" && mv "$D/swap.new" "$D/swap.safetensors"
kill -HUP $PID
for _ in $(seq 100); do [ "$(grep -c "reload done" "$TMP/log")" = 2 ] && break; sleep 0.1; done
check "a replacement that does not load is logged, the model staying as it was" \
    grep -q "model-dir: $D/swap.safetensors does not load, model swap stays as it was" "$TMP/log"
check_eq "swap still serves the previous file (10 classes)" "$(classes swap)" 10
check_eq "the metrics know the added model" \
    "$(curl -s "$URL/metrics" | grep -c 'resnetd_request_duration_seconds_count{model="added"')" 1
stop
check_eq "SIGTERM exits 0" "$?" 0
tap_done
