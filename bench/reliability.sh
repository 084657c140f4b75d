#!/usr/bin/env bash
# The full-length reliability runs of issue 8, longer than `make test` runs
# them: overload (--max-queue 8, 64 clients) for 30 s on the small test model
# and on the default model, then a 10-minute soak (4 clients) on the default
# model, with the daemon's RSS each minute. Output goes to the terminal and
# bench/out/reliability-*.txt. Knobs: OVERLOAD_SECONDS (30), SOAK_SECONDS (600),
# MODEL (models/resnet50.safetensors).
set -u
cd "$(dirname "$0")/.."
export BUILD=${BUILD:-build}
MODEL=${MODEL:-models/resnet50.safetensors}
mkdir -p bench/out
for m in tests/fixtures/parity/bottleneck.safetensors "$MODEL"; do
    RELIABILITY_SECONDS=${OVERLOAD_SECONDS:-30} RELIABILITY_MODEL=$m \
        bash tests/e2e/reliability_overload.sh | tee "bench/out/reliability-overload-$(basename "$m" .safetensors).txt"
done
SOAK_SECONDS=${SOAK_SECONDS:-600} SOAK_MODEL=$MODEL bash tests/e2e/reliability_soak.sh |
    tee bench/out/reliability-soak.txt
echo "# RSS per minute (kB) during the soak:"
awk '/^# sample: [0-9]/ { t = $3; if (t >= 60 * m) { printf "#   minute %d: %s kB, %s fds\n", m, $4, $5; m++ } }' \
    bench/out/reliability-soak.txt
