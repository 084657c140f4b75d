#!/usr/bin/env bash
# What native TLS costs: classify images/s and p50 over keep-alive HTTPS
# against plain HTTP at 1 and 16 clients (wrk, one raw JPEG per request), and
# the cost of a TLS handshake: GET /v2/health/live with a new connection per
# request (Connection: close), over TLS and plain, and `openssl s_time -new`.
# Two daemons serve the same model, one plain, one with a throw-away EC P-256
# certificate (ECDHE + ECDSA, TLS 1.3); they are measured alternately, REPEAT
# rounds, the order swapped every round, so that drift on a shared machine
# falls on both. Each figure printed is the median over the rounds; the last
# line compares keep-alive TLS with plain at 16 clients (goal: within 5%).
# cpu_ms is the daemon's CPU time (all its threads) per request answered: on a
# shared machine a steadier figure than req/s, which other processes move.
#   bench/bench-tls.sh [MODEL]     env: BUILD (build), SECONDS_PER_RUN (10),
#       REPEAT (3), CLIENTS ("1 16"), LOAD_IMAGE
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
MODEL=${1:-models/resnet50.safetensors}
SECS=${SECONDS_PER_RUN:-10}
REPEAT=${REPEAT:-3}
CLIENTS=${CLIENTS:-1 16}
export LOAD_IMAGE=${LOAD_IMAGE:-/usr/share/darknet/data/dog.jpg}
command -v wrk >/dev/null || { echo "bench/bench-tls.sh needs wrk (apt-get install wrk)" >&2; exit 1; }
[ -f "$MODEL" ] || { echo "no model $MODEL (make model)" >&2; exit 1; }

TMP=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill $p 2>/dev/null; done; wait 2>/dev/null; rm -rf "$TMP"' EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TMP/key.pem" \
    -out "$TMP/cert.pem" -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
# the same result line as bench/load.lua, for GETs
cat >"$TMP/get.lua" <<'EOF'
wrk.headers["Connection"] = "close"
done = function(summary, latency, requests)
    local n = summary.requests
    io.write(string.format("RESULT rps=%.2f p50_ms=%.2f p99_ms=%.2f requests=%d errors=%d non2xx=%d\n",
        n / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000, n,
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
        summary.errors.status))
end
EOF

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P_PLAIN=$(port)
"$BUILD/resnetd" --model "$MODEL" --listen 127.0.0.1:$P_PLAIN 2>"$TMP/plain.log" &
PIDS+=($!)
P_TLS=$(port)
"$BUILD/resnetd" --model "$MODEL" --listen 127.0.0.1:$P_TLS --tls-cert "$TMP/cert.pem" \
    --tls-key "$TMP/key.pem" 2>"$TMP/tls.log" &
PIDS+=($!)
declare -A DPID=([plain]=${PIDS[0]} [tls]=${PIDS[1]})
TICK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$P_PLAIN/v2/health/ready" >/dev/null &&
        curl -sfk "https://127.0.0.1:$P_TLS/v2/health/ready" >/dev/null && break
    sleep 0.1
done
url() { [ "$1" = tls ] && echo "https://127.0.0.1:$P_TLS" || echo "http://127.0.0.1:$P_PLAIN"; }

# run ROUND KIND CLIENTS WHAT: one wrk run, a line "kind what clients rps p50 p99 errors non2xx"
run() {
    local u t line
    u=$(url "$2")
    t=$(( $3 < 4 ? $3 : 4 ))
    for _ in $(seq 100); do # the previous run's abandoned requests drain first
        curl -sk "$u/metrics" | grep -q '^resnetd_queue_depth 0$' && break
        sleep 0.1
    done
    sleep 1
    local cpu0 cpu1
    cpu0=$(cpu_ticks "${DPID[$2]}")
    if [ "$4" = classify ]; then
        line=$(wrk -t "$t" -c "$3" -d "${SECS}s" --timeout 30s -s bench/load.lua "$u/v1/classify" | grep '^RESULT')
    else
        line=$(wrk -t "$t" -c "$3" -d "${SECS}s" --timeout 30s -s "$TMP/get.lua" "$u/v2/health/live" | grep '^RESULT')
    fi
    cpu1=$(cpu_ticks "${DPID[$2]}")
    eval "${line#RESULT }"
    local cpu_ms
    cpu_ms=$(awk -v d=$((cpu1 - cpu0)) -v t="$TICK" -v n="$requests" 'BEGIN { printf "%.3f", (n > 0 ? d * 1000 / t / n : -1) }')
    echo "$2 $4 $3 $rps $p50_ms $p99_ms $errors $non2xx $cpu_ms" | tee -a "$TMP/runs" |
        awk -v r="$1" '{ printf "# round %s: %s %s, %s clients: %s req/s, p50 %s ms, %s ms of CPU a request\n", r, $1, $2, $3, $4, $5, $9 }'
}

for round in $(seq "$REPEAT"); do
    order="plain tls"
    [ $((round % 2)) = 0 ] && order="tls plain"
    for c in $CLIENTS; do
        for k in $order; do run "$round" "$k" "$c" classify; done
    done
    for c in 1 16; do
        for k in $order; do run "$round" "$k" "$c" newconn; done
    done
done

printf '%-34s %7s %10s %8s %8s %6s %6s %7s\n' what clients req/s p50_ms p99_ms errors non2xx cpu_ms
median_of() { # KIND WHAT CLIENTS FIELD
    awk -v k="$1" -v w="$2" -v c="$3" -v f="$4" '$1 == k && $2 == w && $3 == c { n++; a[n] = $f }
        END { for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
              print n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }' "$TMP/runs"
}
for w in classify newconn; do
    cs=$CLIENTS; [ $w = newconn ] && cs="1 16"
    for c in $cs; do
        for k in plain tls; do
            label="$k, $([ $w = classify ] && echo "classify, keep-alive" || echo "GET, a connection each")"
            e=$(awk -v k=$k -v w=$w -v c=$c '$1 == k && $2 == w && $3 == c { e += $7; x += $8 } END { print e + 0, x + 0 }' "$TMP/runs")
            printf '%-34s %7s %10.2f %8.2f %8.2f %6s %6s %7.3f\n' "$label" "$c" "$(median_of $k $w $c 4)" \
                "$(median_of $k $w $c 5)" "$(median_of $k $w $c 6)" ${e% *} ${e#* } "$(median_of $k $w $c 9)" 
        done
    done
done
# a handshake's cost from the new-connection runs at 1 client: the added time per connection
nc_plain=$(median_of plain newconn 1 4)
nc_tls=$(median_of tls newconn 1 4)
awk -v a="$nc_plain" -v b="$nc_tls" 'BEGIN { if (a > 0 && b > 0)
    printf "TLS handshake (new connection, 1 client): %.3f ms more than a plain connect (%.0f vs %.0f connections/s)\n",
           1000 / b - 1000 / a, b, a }'
stime=$(timeout $((SECS + 10)) openssl s_time -connect "127.0.0.1:$P_TLS" -new -time "$SECS" 2>/dev/null |
        grep -m1 'connections/user sec' || true)
echo "openssl s_time -new (the client's CPU): ${stime:-not available}"
case " $CLIENTS " in *" 16 "*)
    awk -v p="$(median_of plain classify 16 4)" -v t="$(median_of tls classify 16 4)" \
        -v pc="$(median_of plain classify 16 9)" -v tc="$(median_of tls classify 16 9)" 'BEGIN {
        r = t / p; printf "keep-alive TLS / plain at 16 clients: %.3f of the req/s (goal >= 0.95): %s; CPU a request %.3f of plain\n",
                          r, (r >= 0.95 ? "met" : "NOT met"), (pc > 0 ? tc / pc : -1) }' ;;
esac
