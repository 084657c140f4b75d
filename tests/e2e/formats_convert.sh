#!/usr/bin/env bash
# resnet convert --from pth|onnx on every format fixture (make_format_fixtures.py),
# then the parity test on the safetensors it wrote: the same PyTorch logits
# within 1e-4 after conversion as when loaded directly; resnet info reads all
# three formats; convert refuses a file of the other format.
. "$(dirname "$0")/lib.sh"
cd "$ROOT" || exit 1
RESNET=$BUILD/resnet
FIX=tests/fixtures/parity
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# the fixture folder, each .pth/.onnx replaced by its conversion (same name:
# the format is told from the bytes)
for f in "$FIX"/*; do ln -s "$ROOT/$f" "$TMP/"; done
for m in $(jq -r '.[].model' "$FIX/manifest_formats.json"); do
    from=${m##*.}
    rm "$TMP/$m"
    out=$("$RESNET" convert --from "$from" "$FIX/$m" "$TMP/$m" 2>&1)
    check_eq "convert --from $from $m ($out)" "$?" 0
    check_eq "$m converted is safetensors" "$("$RESNET" info --json "$TMP/$m" | jq -r .format)" safetensors
done
check_eq "info reads a zip .pth" "$("$RESNET" info --json "$FIX/basic.pth" | jq -r .format)" pytorch-zip
check_eq "info reads a legacy .pth" "$("$RESNET" info --json "$FIX/bottleneck_legacy.pth" | jq -r .format)" pytorch-legacy
check_eq "info reads an .onnx" "$("$RESNET" info --json "$FIX/v1_mxnet.onnx" | jq -r '.format + " " + .variant')" "onnx v1"
check_eq "ONNX labels from metadata_props survive convert" \
    "$("$RESNET" info --json "$TMP/v1_mxnet.onnx" | jq -r .labels)" true
msg=$("$RESNET" convert --from onnx "$FIX/basic.pth" "$TMP/wrong.safetensors" 2>&1)
check_eq "convert --from onnx of a .pth fails" "$?" 1
check "and says what the file is ($msg)" grep -q "pytorch-zip file, not --from onnx" <<<"$msg"
check "and leaves no file" test ! -e "$TMP/wrong.safetensors"
# --labels gives class names to a file that has none
/usr/bin/python3 -c 'import json; print(json.dumps(["c%d" % i for i in range(10)]))' >"$TMP/labels.json"
"$RESNET" convert --from pth "$FIX/basic.pth" "$TMP/l.safetensors" --labels "$TMP/labels.json" >/dev/null
check_eq "--labels on convert --from pth" "$("$RESNET" info --json "$TMP/l.safetensors" | jq -r .labels)" true

# parity of the converted files, by the unit test's own checks (cmocka TAP lines)
RN_PARITY_DIR=$TMP/ RN_PARITY_ONLY=manifest_formats.json CMOCKA_MESSAGE_OUTPUT=TAP \
    "$BUILD/tests/test_parity" 2>&1 | grep -E '^(not )?ok ' | sed 's/^\(\(not \)\?ok\) [0-9]* - /\1 - converted: /'
[ "${PIPESTATUS[0]}" -eq 0 ] || not_ok "test_parity on the converted files"
tap_done
