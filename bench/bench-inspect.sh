#!/usr/bin/env bash
# The cost of an inspection (POST /v1/inspect) against one classification of
# the same photo, through the daemon on the default model with every core:
# rounds alternate classify, inspect without lesions (one forward pass plus
# each block's residual branch once more), inspect with the 16 lesions, and
# the heat map; medians of the curl times (BENCH_ROUNDS, default 15).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
MODEL=${BENCH_MODEL:-models/resnet50.safetensors}
ROUNDS=${BENCH_ROUNDS:-15}
PHOTO=/usr/share/darknet/data/dog.jpg
[ -f "$MODEL" ] || { echo "bench-inspect: no $MODEL (make model)"; exit 0; }
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
"$BUILD/resnetd" --model "$MODEL" --listen 127.0.0.1:$PORT --workers 1 2>/dev/null &
PID=$!
trap 'kill $PID 2>/dev/null; wait 2>/dev/null' EXIT
for _ in $(seq 100); do curl -sf "$URL/v2/health/ready" >/dev/null && break; sleep 0.1; done
t() { curl -s -o /dev/null -w '%{time_total}\n' --data-binary @$PHOTO "$URL$1"; }
for p in /v1/classify /v1/inspect; do t $p >/dev/null; done # warm up
TMP=$(mktemp -d)
for _ in $(seq "$ROUNDS"); do
    t /v1/classify >>"$TMP/classify"
    t "/v1/inspect?lesions=0" >>"$TMP/inspect0"
    t /v1/inspect >>"$TMP/inspect"
    t "/v1/inspect?format=png&lesions=0" >>"$TMP/png"
done
lf=$(curl -s --data-binary @$PHOTO "$URL/v1/inspect" | jq .computed.lesion_forwards)
/usr/bin/python3 - "$TMP" "$lf" "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" <<'PY'
import statistics, sys
d, lf, cpu = sys.argv[1], float(sys.argv[2]), sys.argv[3]
med = {k: statistics.median(float(x) for x in open(f"{d}/{k}")) * 1000
       for k in ("classify", "inspect0", "inspect", "png")}
c = med["classify"]
print(f"inspection cost, {cpu}, medians of the round trips (ms):")
print(f"  classify                      {c:8.1f}")
print(f"  inspect, no lesions           {med['inspect0']:8.1f}  x{med['inspect0'] / c:.2f}")
print(f"  inspect, 16 lesions           {med['inspect']:8.1f}  x{med['inspect'] / c:.2f}"
      f"  (the lesions recompute {lf:.2f} forward passes' FLOPs)")
print(f"  heat map PNG, no lesions      {med['png']:8.1f}  x{med['png'] / c:.2f}")
PY
rm -rf "$TMP"
