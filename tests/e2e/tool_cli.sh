#!/usr/bin/env bash
# The `resnet` command as a user runs it: info, infer against the PyTorch
# fixtures, and its answers to bad arguments and bad files.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
R=$BUILD/resnet
FX=tests/fixtures/parity
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

out=$($R info $FX/bottleneck.safetensors --json 2>"$T/err")
check "info --json exits 0" [ $? -eq 0 ]
got=$(printf '%s' "$out" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d["block"], d["blocks"], d["classes"], d["embed_dim"], d["variant"], d["labels"])')
check_eq "info --json describes the bottleneck fixture" "$got" "bottleneck [2, 2, 1, 1] 12 128 v1.5 True"
got=$($R info $FX/v1.safetensors --json | /usr/bin/python3 -c '
import json, sys; d = json.load(sys.stdin); print(d["variant"], d["bn_eps"], d["stem_channels"])')
check_eq "info --json reads variant and eps from metadata" "$got" "v1 0.0010000000474974513 12"
check "info text names the architecture" bash -c "$R info $FX/resnext.safetensors | grep -q 'groups:       4'"

# infer: every fixture case through the command line, against torch
for model in basic v1 resnext; do
    for case in "1 64 64" "3 72 56"; do
        set -- $case
        base=$FX/$model.n$1.${2}x$3
        [ "$2" = "$3" ] || continue
        $R infer -m $FX/$model.safetensors --input $base.in.f32 --batch $1 --size $2 \
            --output "$T/logits.f32" --threads 2 2>/dev/null
        check "infer $model n=$1 exits 0" [ $? -eq 0 ]
        $R infer -m $FX/$model.safetensors --input $base.in.f32 --batch $1 --size $2 \
            --output "$T/embed.f32" --embed 2>/dev/null
        err=$(/usr/bin/python3 - "$T/logits.f32" "$base.logits.f32" "$T/embed.f32" "$base.embed.f32" <<'PY'
import struct, sys
def load(p):
    b = open(p, "rb").read(); return struct.unpack("<%df" % (len(b) // 4), b)
worst = 0
for ours, ref in ((sys.argv[1], sys.argv[2]), (sys.argv[3], sys.argv[4])):
    a, r = load(ours), load(ref)
    assert len(a) == len(r), (len(a), len(r))
    worst = max(worst, max(abs(x - y) for x, y in zip(a, r)) / max(abs(y) for y in r))
print(worst)
PY
)
        check "infer $model n=$1 logits and embeddings within 1e-4 of torch ($err)" \
            /usr/bin/python3 -c "import sys; sys.exit(0 if float('$err') <= 1e-4 else 1)"
    done
done

# bad arguments: exit 2 with a message
$R infer -m $FX/basic.safetensors --input $FX/basic.n1.64x64.in.f32 --batch 0 --output "$T/x" 2>"$T/err"
check_eq "infer --batch 0 exits 2" "$?" "2"
check "and says why" grep -q -- "--batch: expected an integer" "$T/err"
$R infer -m $FX/basic.safetensors --input $FX/basic.n1.64x64.in.f32 --batch 2 --size 64 --output "$T/x" 2>"$T/err"
check_eq "infer with a short input exits 1" "$?" "1"
check "and names the expected size" grep -q "expected 98304" "$T/err"
$R frobnicate 2>/dev/null
check_eq "unknown command exits 2" "$?" "2"
printf 'not a model at all' >"$T/bad.safetensors"
$R info "$T/bad.safetensors" 2>"$T/err"
check_eq "info on garbage exits 1" "$?" "1"
check "and names the file and the problem" grep -q "bad.safetensors: header length" "$T/err"
$R bench -m $FX/basic.safetensors --batch 2 --threads 1 --seconds 1 --size 64 >"$T/bench" 2>/dev/null
check "bench ends with a JSON line" /usr/bin/python3 -c "
import json; d = json.loads(open('$T/bench').read().splitlines()[-1])
assert d['batch'] == 2 and d['threads'] == 1 and d['images_per_s'] > 0 and d['openblas_core']"

# bench --layers: one row per op, whose convolutions are the file's own
# (shapes read from the safetensors header here, not by the library)
$R bench -m $FX/resnext.safetensors --batch 2 --threads 2 --seconds 1 --size 64 --layers >"$T/layers" 2>/dev/null
check_eq "bench --layers exits 0" "$?" 0
check "bench --layers prints a table with a row per op before the JSON line" \
    grep -qE '^ +[0-9]+  layer1\.0 +conv 3x3/1 16->16 groups 4 ' "$T/layers"
got=$(/usr/bin/python3 - "$FX/resnext.safetensors" "$T/layers" <<'PY'
import collections, json, re, struct, sys
raw = open(sys.argv[1], "rb").read()
hlen = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + hlen])
want = collections.Counter((t["shape"][2], t["shape"][3], t["shape"][1], t["shape"][0])
                           for k, t in header.items() if k != "__metadata__" and len(t["shape"]) == 4)
fc = header["fc.weight"]["shape"]
d = json.loads(open(sys.argv[2]).read().splitlines()[-1])
ops = d["layers"]
got = collections.Counter()
problems = []
for o in ops:
    m = re.match(r"conv (\d+)x(\d+)/\d (\d+)->(\d+)(?: groups (\d+))? ", o["what"])
    if m:
        kh, kw, i, out, g = (int(x) if x else 1 for x in m.groups())
        got[(kh, kw, i // g, out)] += 1
        if o["gflop_per_image"] <= 0 or o["ms_per_batch"] <= 0:
            problems.append("conv without time or flops: %s" % o)
    if o["calls"] < 3:
        problems.append("op %d ran %d times" % (o["op"], o["calls"]))
    if not o["layer"]:
        problems.append("op %d has no layer" % o["op"])
fco = [o for o in ops if o["what"] == "fc"]
if len(fco) != 1 or abs(fco[0]["gflop_per_image"] * 1e9 - 2 * fc[0] * fc[1]) > 1:
    problems.append("fc: %s, want %d FLOP" % (fco, 2 * fc[0] * fc[1]))
if got != want:
    problems.append("convolutions %s, the file has %s" % (sorted(got.items()), sorted(want.items())))
print("; ".join(problems) or "ok")
PY
)
check_eq "bench --layers: the file's convolutions, each timed, and the fc's FLOPs" "$got" ok
$R bench -m $FX/basic.safetensors --layerz 2>"$T/err"
check_eq "bench with an unknown flag exits 2" "$?" 2
check "and prints the usage with --layers" grep -q "usage: resnet bench .*\[--layers\]" "$T/err"
tap_done
