#!/usr/bin/env bash
# resnetd serves a .pth and an .onnx file as it serves safetensors: the same
# weights in three formats (basic.safetensors, basic.pth, basic_folded.onnx)
# answer a photo with the same classes and scores; SIGHUP reloads each from
# its path (a legacy .pth, an ONNX graph that keeps its batch norms); a
# broken file keeps the previous model serving; --labels names the classes of
# a graph without labels, and is read again on SIGHUP.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
FX=tests/fixtures/parity
DOG=/usr/share/darknet/data/dog.jpg
TMP=$(mktemp -d)
PID=
cleanup() {
    [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

cp $FX/basic.pth "$TMP/m.pth"
cp $FX/basic_folded.onnx "$TMP/m.onnx"
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
"$RESNETD" --model st=$FX/basic.safetensors --model pth="$TMP/m.pth" --model onnx="$TMP/m.onnx" \
    --listen 127.0.0.1:$PORT 2>"$TMP/log" &
PID=$!
check "resnetd serves a .pth and an .onnx beside safetensors" wait_ready "$URL"
scores() { curl -s --data-binary @$DOG "$URL/v1/classify?model=$1&topk=10" | jq -c '[.predictions[] | [.index, .score]]'; }
classes() { curl -s "$URL/v1/models" | jq -r --arg m "$1" '.models[] | select(.name == $m) | .classes'; }
st=$(scores st)
check "the safetensors model answers the photo ($st)" [ -n "$st" ] && [ "$st" != "[]" ]
check_eq "the .pth answers it exactly as the safetensors of the same weights" "$(scores pth)" "$st"
# torch folded batch norm into the ONNX convolutions in float: scores agree to 1e-5
same=$(jq -n --argjson a "$st" --argjson b "$(scores onnx)" \
    '[range(0; $a|length) | ($a[.][0] == $b[.][0]) and (($a[.][1] - $b[.][1]) | fabs < 1e-5)] | all')
check_eq "the .onnx answers it as the safetensors (same order, scores within 1e-5)" "$same" "true"

cp $FX/bottleneck_legacy.pth "$TMP/new" && mv "$TMP/new" "$TMP/m.pth"
cp $FX/bottleneck_bn.onnx "$TMP/new" && mv "$TMP/new" "$TMP/m.onnx"
kill -HUP $PID
for _ in $(seq 100); do grep -q "reload done" "$TMP/log" && break; sleep 0.1; done
check "SIGHUP reloads" grep -q "reload done" "$TMP/log"
check_eq "the .pth path now serves the legacy bottleneck file (12 classes)" "$(classes pth)" "12"
check_eq "the .onnx path now serves the graph with batch-norm nodes (12 classes)" "$(classes onnx)" "12"
got=$(curl -s --data-binary @$DOG "$URL/v1/classify?model=onnx&topk=1" | jq -r '.predictions[0] | (.index|tostring) == .label')
check_eq "an ONNX graph without labels answers class indices" "$got" "true"

cp tests/fixtures/formats/evil_os_system.pth "$TMP/m.pth"
kill -HUP $PID
for _ in $(seq 100); do grep -q "reload failed" "$TMP/log" && break; sleep 0.1; done
check "a reload from a pickle that calls os.system fails, naming it" \
    grep -q "reload failed, still serving the previous models: .*os.system (not run)" "$TMP/log"
check_eq "the previous .pth model serves on" "$(classes pth)" "12"
kill -TERM $PID
wait $PID
check_eq "SIGTERM exits 0" "$?" "0"
PID=

# --labels: class names for a graph that has none, read again on SIGHUP
cp $FX/basic_folded.onnx "$TMP/m.onnx"
for i in $(seq 0 9); do echo "class number $i"; done >"$TMP/labels.txt"
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
"$RESNETD" --model onnx="$TMP/m.onnx" --labels onnx="$TMP/labels.txt" --listen 127.0.0.1:$PORT 2>"$TMP/log" &
PID=$!
check "resnetd serves an .onnx with --labels" wait_ready "$URL"
got=$(curl -s --data-binary @$DOG "$URL/v1/classify?topk=1" | jq -r '.predictions[0] | .label == "class number \(.index)"')
check_eq "its replies name the classes from the labels file (one per line)" "$got" "true"
printf '[%s]' "$(seq 0 9 | sed 's/.*/"n&"/' | paste -sd,)" >"$TMP/labels.txt"
kill -HUP $PID
for _ in $(seq 100); do grep -q "reload done" "$TMP/log" && break; sleep 0.1; done
got=$(curl -s --data-binary @$DOG "$URL/v1/classify?topk=1" | jq -r '.predictions[0] | .label == "n\(.index)"')
check_eq "SIGHUP reads the labels file again (now a JSON array)" "$got" "true"
kill -TERM $PID
wait $PID
PID=
seq 1 9 >"$TMP/nine.txt"
"$RESNETD" --model "$TMP/m.onnx" --labels "$TMP/nine.txt" --listen 127.0.0.1:$(free_port) 2>"$TMP/log9"
check_eq "nine labels for ten classes: resnetd exits 2 (a bad model)" "$?" 2
check "... saying so with the file's name" grep -q "labels $TMP/nine.txt: 9 class names, the model has 10 classes" "$TMP/log9"
"$RESNETD" --model "$TMP/m.onnx" --labels "$TMP/none.txt" --listen 127.0.0.1:$(free_port) 2>"$TMP/log0"
check "a missing labels file is an error naming it" grep -q "labels $TMP/none.txt: No such file" "$TMP/log0"
tap_done
