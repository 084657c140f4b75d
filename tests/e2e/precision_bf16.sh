#!/usr/bin/env bash
# BF16 mode on the default model: the same top-1 as FP32 on every darknet
# photo and probabilities within 0.02 (on a CPU without avx512_bf16 the
# library falls back to FP32, which passes trivially and logs why).
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
M=models/resnet50.safetensors
[ -f "$M" ] || make -s model BUILD="$BUILD" >/dev/null
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
photos=(/usr/share/darknet/data/*.jpg)
for p in fp32 bf16; do
    "$BUILD/resnet" classify -m "$M" --precision $p --json --topk 1000 "${photos[@]}" \
        >"$T/$p.jsonl" 2>"$T/$p.err"
    check "classify --precision $p exits 0" [ $? -eq 0 ]
done
/usr/bin/python3 - "$T/fp32.jsonl" "$T/bf16.jsonl" <<'PY'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert len(a) == len(b) == 7, (len(a), len(b))
for x, y in zip(a, b):
    name = x["name"].rsplit("/", 1)[-1]
    px = {p["index"]: p["score"] for p in x["predictions"]}
    py = {p["index"]: p["score"] for p in y["predictions"]}
    same = x["predictions"][0]["index"] == y["predictions"][0]["index"]
    print(("ok" if same else "not ok") + f" - {name}: bf16 top-1 {y['predictions'][0]['label']} equals fp32's")
    d = max(abs(px[i] - py[i]) for i in px)
    print(("ok" if d <= 0.02 else "not ok") + f" - {name}: max |dprob| {d:.4f} <= 0.02")
PY
check "the comparison ran" [ $? -eq 0 ]
tap_done
