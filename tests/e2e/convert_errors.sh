#!/usr/bin/env bash
# resnet convert --from tfjs on tiny fake Keras models (tests/e2e/tfjs_fake_model.py):
# a whole one converts exactly (names, transpositions, bias folding, metadata);
# each broken one fails with a clear message and leaves no output file behind.
. "$(dirname "$0")/lib.sh"
cd "$ROOT" || exit 1
RESNET=$BUILD/resnet
GEN=tests/e2e/tfjs_fake_model.py
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# convert_case NAME -> runs the converter on a model with that mutation; sets
# $rc, $msg, and $left (files in the output folder afterwards)
convert_case() {
    local dir=$TMP/$1
    /usr/bin/python3 "$GEN" "$dir/in" "$1" || return 1
    mkdir -p "$dir/out"
    msg=$("$RESNET" convert --from tfjs "$dir/in/model.json" -o "$dir/out/m.safetensors" 2>&1)
    rc=$?
    msg=${msg//$'\n'/ }
    left=$(ls -A "$dir/out")
}

# --- a whole model converts, exactly
convert_case none
check_eq "tiny model converts (exit status; $msg)" "$rc" 0
/usr/bin/python3 - "$TMP/none/out/m.safetensors" "$TMP/none/in/reference.json" <<'PY'
import json, struct, sys
data = open(sys.argv[1], "rb").read()
ref = json.load(open(sys.argv[2]))
n = struct.unpack("<Q", data[:8])[0]
head = json.loads(data[8:8 + n])
meta = head.pop("__metadata__")
def ok(cond, what):
    print(("ok - " if cond else "not ok - ") + what)
ok(n % 8 == 0 and data[8 + n - 1:8 + n] in (b" ", b"}"), "header padded to 8 bytes")
def tensor(name):
    e = head[name]
    a, b = e["data_offsets"]
    assert e["dtype"] == "F32"
    return e["shape"], struct.unpack("<%df" % ((b - a) // 4), data[8 + n + a:8 + n + b])
want = ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"]
for i, conv in ((1, "2a"), (2, "2b"), (3, "2c")):
    want += ["layer1.0.conv%d.weight" % i] + ["layer1.0.bn%d.%s" % (i, p) for p in
             ("weight", "bias", "running_mean", "running_var")]
want += ["layer1.0.downsample.0.weight"] + ["layer1.0.downsample.1." + p for p in
         ("weight", "bias", "running_mean", "running_var")] + ["fc.weight", "fc.bias"]
ok(list(head) == want, "torchvision names in state_dict order")
shape, w = tensor("conv1.weight")
(kh, kw, ci, co), k = ref["conv1/kernel"]
ok(shape == [co, ci, kh, kw], "conv kernel HWIO -> OIHW shape")
f32 = lambda v: struct.unpack("<f", struct.pack("<f", v))[0]
ok(all(w[((o * ci + i) * kh + y) * kw + x] == f32(k[((y * kw + x) * ci + i) * co + o])
       for o in range(co) for i in range(ci) for y in range(kh) for x in range(kw)),
   "conv kernel HWIO -> OIHW values")
_, rm = tensor("layer1.0.bn2.running_mean")
mean, bias = ref["bn2a_branch2b/moving_mean"][1], ref["res2a_branch2b/bias"][1]
ok(all(abs(rm[j] - struct.unpack("<f", struct.pack("<f", mean[j] - bias[j]))[0]) < 1e-6
       for j in range(len(mean))), "conv bias folded into running_mean")
_, rv = tensor("layer1.0.downsample.1.running_var")
ok(list(rv) == [struct.unpack("<f", struct.pack("<f", v))[0] for v in ref["bn2a_branch1/moving_variance"][1]],
   "moving_variance -> downsample.1.running_var")
shape, fw = tensor("fc.weight")
(fi, fo), fk = ref["fc1000/kernel"]
ok(shape == [fo, fi] and all(abs(fw[o * fi + i] - fk[i * fo + o]) < 1e-7
                             for o in range(fo) for i in range(fi)), "dense kernel [in,out] -> [out,in]")
ok(not any(k.endswith(".bias") and k.startswith(("conv", "layer1.0.conv")) for k in head),
   "no conv biases in the output")
ok(meta.get("resnet.bn_eps") == "0.001" and meta.get("resnet.variant") == "v1",
   "metadata: bn_eps from the Keras config, variant v1")
pre = json.loads(meta.get("resnet.preprocess", "{}"))
ok(pre.get("order") == "BGR" and pre.get("mean") == [103.939, 116.779, 123.68],
   "metadata: caffe preprocessing")
ok("resnet.source" in meta, "metadata: source")
PY

convert_case tfkeras
if [ "$rc" -eq 0 ] && /usr/bin/python3 -c '
import json, struct, sys
d = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", d[:8])[0]
h = json.loads(d[8:8 + n]); sys.exit(0 if "layer1.0.downsample.1.running_var" in h and "fc.bias" in h else 1)
' "$TMP/tfkeras/out/m.safetensors"; then
    ok "tf.keras 2.x layer names (conv2_block1_1_conv, predictions) convert too"
else
    not_ok "tf.keras 2.x layer names: exit $rc, $msg"
fi

# --- each broken model: non-zero exit, a message naming the problem, no file left
expect_error() { # MUTATION DESCRIPTION GREP-PATTERN
    convert_case "$1" || { not_ok "$2: could not generate the model"; return; }
    if [ "$rc" -ne 0 ] && grep -qE "$3" <<<"$msg" && [ -z "$left" ]; then
        ok "$2 ($msg)"
    else
        not_ok "$2: exit $rc, message '$msg', left behind '$left'"
    fi
}
expect_error missing_shard "missing shard" "group1-shard2of2.bin: No such file"
expect_error short_shard "short shard" "shard2of2.bin: 725 bytes; .* hold 1456 bytes but the manifest needs 1460: a shard is short"
expect_error shape_mismatch "manifest shape larger than the shards" "hold 1460 bytes but the manifest needs 1492: .*shape in the manifest is wrong"
expect_error shape_smaller "manifest shape smaller than the shards" "hold 1460 bytes but the manifest needs only 1428"
expect_error shape_overflow "manifest shape overflowing size_t" "fc1000/kernel': shape too large"
expect_error bn_channels "batch-norm shape inconsistent with its conv" "bn2a_branch2a/gamma.*shape \[3\].*2 output channels"
expect_error unknown_layer "unknown layer name" "unknown layer 'dense_7'"
expect_error unknown_class "unknown layer class" "layer 'dw': Keras layer class DepthwiseConv2D"
expect_error missing_layer "missing layer" "missing layer 'bn2a_branch2b'"
expect_error quantized "quantized weights" "res2a_branch2b/kernel': quantized weights \(uint8\)"
expect_error int32 "non-float32 dtype" "fc1000/bias': dtype int32 is not supported"
expect_error invalid_json "invalid JSON" "not valid JSON"
expect_error eps_mismatch "two batch-norm epsilons" "epsilon .* differs"
expect_error path_escape "shard path outside the model folder" "shard path 2 must be a relative file name"

# --- output that cannot be written: no temporary file left either
/usr/bin/python3 "$GEN" "$TMP/ro/in"
mkdir -p "$TMP/ro/out" && chmod 555 "$TMP/ro/out"
if [ "$(id -u)" -eq 0 ]; then
    out=/proc/resnet-no-such-dir/m.safetensors   # root writes anywhere else
else
    out=$TMP/ro/out/m.safetensors
fi
msg=$("$RESNET" convert --from tfjs "$TMP/ro/in/model.json" -o "$out" 2>&1); rc=$?
msg=${msg//$'\n'/ }
if [ "$rc" -ne 0 ] && grep -q "cannot create a temporary file" <<<"$msg" && [ -z "$(ls -A "$TMP/ro/out")" ]; then
    ok "unwritable output: clear error ($msg)"
else
    not_ok "unwritable output: exit $rc, '$msg'"
fi

# --- usage errors exit 2
"$RESNET" convert --from keras x.h5 -o y >/dev/null 2>&1
check_eq "unsupported --from exits 2" "$?" 2
"$RESNET" convert --from tfjs x.json >/dev/null 2>&1
check_eq "missing -o exits 2" "$?" 2
tap_done
