#!/usr/bin/env bash
# HTTP load benchmark of resnetd: images/s and p50/p99 latency at 1, 4, 16 and
# 64 concurrent clients (wrk, one raw JPEG per request), for the default
# workers x threads and the old default (--workers 2 --threads 1 on 2 cores),
# side by side with the engine on the same model in the same run:
#   lat = p50 / `resnet bench --batch 1 --threads <cores>` median (goal at 1 client: <= 1.1)
#   thr = images/s / `resnet bench --batch 8` images/s         (goal at 16 clients: >= 0.9,
#         >= 0.85 for an INT8 model: decoding then weighs 3x as much against inference)
#   cpu_ms = the daemon's CPU time (all its threads) per image answered: on a
#         shared machine a steadier figure than images/s, which other
#         processes' load moves; compare it with the engine's ~ threads x
#         ms/batch / batch
# The engine runs the model as the daemon does: an INT8 file (`resnet quantize`)
# in INT8, so the ratio is INT8's; the last line says the precision and each
# config's 16-client ratio.
# On a shared machine the speed drifts within minutes, so the configurations
# run interleaved (every daemon started once, idle while another is measured),
# REPEAT rounds, each with its own engine references; each figure printed is
# the median over the rounds, each ratio the median of the per-round ratios
# (each round's figures are printed as it ends: on a shared machine the
# rounds where the engine reference ran at full speed are the ones to read).
#   bench/bench-load.sh [MODEL]       env: BUILD (build), SECONDS_PER_RUN (10),
#       REPEAT (3), CLIENTS ("1 4 16 64"), CONFIGS ("old=--workers 2 --threads 1;new="),
#       RESNETD_FLAGS (added to every config), LOAD_IMAGE
# A config NAME@DIR=FLAGS runs DIR/resnetd (another build, e.g. the commit
# before a change) instead of $BUILD's, beside the others in the same rounds:
#   CLIENTS=16 CONFIGS="before@/tmp/old/build=;after=" bench/bench-load.sh /tmp/r50-int8.safetensors
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
MODEL=${1:-models/resnet50.safetensors}
SECS=${SECONDS_PER_RUN:-10}
REPEAT=${REPEAT:-3}
CLIENTS=${CLIENTS:-1 4 16 64}
CONFIGS=${CONFIGS:-old=--workers 2 --threads 1;new=}
CORES=$(nproc)
export LOAD_IMAGE=${LOAD_IMAGE:-/usr/share/darknet/data/dog.jpg}
command -v wrk >/dev/null || { echo "bench/bench-load.sh needs wrk (apt-get install wrk)" >&2; exit 1; }
[ -f "$MODEL" ] || { echo "no model $MODEL (make model)" >&2; exit 1; }

TMP=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill $p 2>/dev/null; done; wait 2>/dev/null; rm -rf "$TMP"' EXIT

# the engine alone: field NAME of `resnet bench ARGS...`'s JSON line (kept
# in $TMP/engine.json for the precision)
engine() {
    local field=$1; shift
    "$BUILD/resnet" bench -m "$MODEL" --seconds "$SECS" "$@" 2>/dev/null | tail -1 |
        tee "$TMP/engine.json" | sed -n "s/.*\"$field\":\([0-9.]*\).*/\1/p"
}

IFS=';' read -ra configs <<<"$CONFIGS"
names=() ports=() labels=() dpids=()
for cfg in "${configs[@]}"; do
    name=${cfg%%=*} flags=${cfg#*=} dir=$BUILD
    case $name in *@*) dir=${name#*@} name=${name%%@*} ;; esac
    [ -x "$dir/resnetd" ] || { echo "config $name: no $dir/resnetd" >&2; exit 1; }
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    # shellcheck disable=SC2086
    "$dir/resnetd" --model "$MODEL" --listen 127.0.0.1:$port $flags ${RESNETD_FLAGS:-} \
        2>"$TMP/$name.log" &
    PIDS+=($!) dpids+=($!)
    for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/v2/health/ready" >/dev/null && break; sleep 0.1; done
    # the start-up line says the workers x threads that run
    split=$(grep -o '[0-9]* workers* x [0-9]* threads*, a lone batch on [0-9]*' "$TMP/$name.log" | head -1 || true)
    [ "$dir" = "$BUILD" ] || flags="$dir/resnetd${flags:+ $flags}"
    names+=("$name") ports+=("$port") labels+=("$name (${flags:-defaults}${split:+: $split})")
done

TICK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# one line per measurement: config clients rps p50 p99 errors non2xx lat thr cpu_ms
for round in $(seq "$REPEAT"); do
    b1_ms=$(engine ms_per_batch_median --batch 1 --threads "$CORES")
    b8_ips=$(engine images_per_s --batch 8)
    echo "# round $round: engine batch 1, $CORES threads: ${b1_ms:-?} ms median; batch 8: ${b8_ips:-?} images/s"
    for c in $CLIENTS; do
        for i in "${!names[@]}"; do
            url=http://127.0.0.1:${ports[$i]}
            # let requests abandoned by the previous run drain out of the queue
            for _ in $(seq 100); do
                curl -s "$url/metrics" | grep -q '^resnetd_queue_depth 0$' && break
                sleep 0.1
            done
            sleep 1
            t=$(( c < 4 ? c : 4 ))
            cpu0=$(cpu_ticks "${dpids[$i]}")
            line=$(wrk -t "$t" -c "$c" -d "${SECS}s" --timeout 30s -s bench/load.lua \
                   "$url/v1/classify" | grep '^RESULT')
            cpu1=$(cpu_ticks "${dpids[$i]}")
            eval "${line#RESULT }"
            awk -v n="$i" -v c="$c" -v r="$rps" -v p="$p50_ms" -v q="$p99_ms" -v e="$errors" \
                -v x="$non2xx" -v b1="${b1_ms:-0}" -v b8="${b8_ips:-0}" -v k="$requests" \
                -v cpu="$(( cpu1 - cpu0 ))" -v tick="$TICK" 'BEGIN {
                printf "%s %s %s %s %s %s %s %s %s %s\n", n, c, r, p, q, e, x,
                       (b1 > 0 ? p / b1 : -1), (b8 > 0 ? r / b8 : -1),
                       (k > 0 ? cpu * 1000 / tick / k : -1) }' | tee -a "$TMP/runs" |
                awk -v r="$round" -v name="${names[$i]}" '{ printf "# round %s: %s, %s clients: %s images/s, thr %.2f, %.2f ms of CPU an image\n", r, name, $2, $3, $9, $10 }' 
        done
    done
done

printf '%-60s %7s %9s %8s %8s %6s %6s %5s %5s %6s\n' config clients images/s p50_ms p99_ms errors non2xx lat thr cpu_ms
for i in "${!names[@]}"; do
    for c in $CLIENTS; do
        awk -v n="$i" -v c="$c" -v label="${labels[$i]}" '
            function median(a, k,   i, j, t) {
                for (i = 2; i <= k; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
                return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
            }
            $1 == n && $2 == c { k++; r[k] = $3; p[k] = $4; q[k] = $5; e += $6; x += $7; l[k] = $8; t[k] = $9; u[k] = $10 }
            END { printf "%-60s %7s %9.2f %8.1f %8.1f %6d %6d %5.2f %5.2f %6.2f\n", label, c, median(r, k),
                         median(p, k), median(q, k), e, x, median(l, k), median(t, k), median(u, k) }' "$TMP/runs"
    done
done
precision=$(sed -n 's/.*"precision":"\([a-z0-9]*\)".*/\1/p' "$TMP/engine.json")
case " $CLIENTS " in *" 16 "*)
    goal=$([ "$precision" = int8 ] && echo 0.85 || echo 0.9)
    for i in "${!names[@]}"; do
        awk -v n="$i" -v name="${names[$i]}" -v p="${precision:-?}" -v g="$goal" '
            function median(a, k,   i, j, t) {
                for (i = 2; i <= k; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
                return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
            }
            $1 == n && $2 == 16 { k++; t[k] = $9; u[k] = $10 }
            END { printf "# 16 clients, %s: %.2f of resnet bench --batch 8 (%s; goal >= %s), %.2f ms of CPU an image\n",
                         name, median(t, k), p, g, median(u, k) }' "$TMP/runs"
    done
esac
