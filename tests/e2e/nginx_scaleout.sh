#!/usr/bin/env bash
# Scale-out: nginx with deploy/nginx.conf in front of two resnetd replicas on
# loopback. Requests reach both; killing one mid-load (SIGKILL, then a graceful
# SIGTERM of the other after the first is back) loses no request that nginx
# accepted: every reply is a 200.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
BIN=$RESNETD
MODEL=$ROOT/tests/fixtures/parity/bottleneck.safetensors
DOG=/usr/share/darknet/data/dog.jpg
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
TMP=$(mktemp -d)
declare -A PID
NGINX_PID=
LOADERS=()
cleanup() {
    for p in "${LOADERS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PID[@]}"; do kill -9 "$p" 2>/dev/null; done
    # TERM, not KILL: the master takes its worker processes down with it
    [ -n "$NGINX_PID" ] && kill -TERM "$NGINX_PID" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

if [ ! -x "$NGINX" ]; then
    not_ok "nginx is installed (scripts/install-deps.sh installs Debian's nginx)"
    tap_done
fi

P1=$(free_port); P2=$(free_port); PN=$(free_port)
while [ "$P2" = "$P1" ]; do P2=$(free_port); done
while [ "$PN" = "$P1" ] || [ "$PN" = "$P2" ]; do PN=$(free_port); done
URL=http://127.0.0.1:$PN

start() { # port
    "$BIN" --model "$MODEL" --listen 127.0.0.1:$1 --workers 1 --threads 1 \
        2>>"$TMP/resnetd.$1.log" &
    PID[$1]=$!
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$1/v2/health/ready" -o /dev/null && return 0
        sleep 0.1
    done
    return 1
}
check "replica 1 ready on 127.0.0.1:$P1" start "$P1"
check "replica 2 ready on 127.0.0.1:$P2" start "$P2"

# deploy/nginx.conf as shipped, but for the test's ports and paths; wrapped in
# a main configuration of its own (prefix, pid, temp and log files in $TMP).
sed -e "s|127\.0\.0\.1:8081|127.0.0.1:$P1|; s|127\.0\.0\.1:8082|127.0.0.1:$P2|" \
    -e "s|^\( *\)listen 80;|\1listen 127.0.0.1:$PN;|; /listen \[::\]:80;/d" \
    -e "s|/var/log/nginx/|$TMP/|g" deploy/nginx.conf >"$TMP/resnetd.conf"
check "the replicas and the port were substituted" \
    grep -q "server 127.0.0.1:$P2 max_fails" "$TMP/resnetd.conf"
cat >"$TMP/nginx.conf" <<EOF
# nginx runs as root in the test container: the workers may stay root.
user root;
worker_processes 1;
pid $TMP/nginx.pid;
error_log $TMP/error.log warn;
events { worker_connections 512; }
http {
    client_body_temp_path $TMP/client_body;
    proxy_temp_path $TMP/proxy;
    fastcgi_temp_path $TMP/fastcgi;
    uwsgi_temp_path $TMP/uwsgi;
    scgi_temp_path $TMP/scgi;
    access_log off;
    include $TMP/resnetd.conf;
}
EOF
check "nginx -t accepts deploy/nginx.conf" \
    "$NGINX" -t -q -p "$TMP" -c "$TMP/nginx.conf"
"$NGINX" -p "$TMP" -c "$TMP/nginx.conf" -g 'daemon off;' >>"$TMP/error.log" 2>&1 &
NGINX_PID=$!
for _ in $(seq 50); do curl -sf "$URL/v2/health/ready" -o /dev/null && break; sleep 0.1; done
check "ready through nginx" curl -sf "$URL/v2/health/ready" -o /dev/null

# ---- both replicas serve ----
for _ in $(seq 20); do
    curl -s -o /dev/null -w '%{http_code}\n' --data-binary @$DOG "$URL/v1/classify" >>"$TMP/codes0" &
    c=$!
    curl -s -o /dev/null -w '%{http_code}\n' --data-binary @$DOG "$URL/v1/classify" >>"$TMP/codes0"
    wait $c
done
check_eq "40 classify requests through nginx, all 200" "$(grep -c '^200$' "$TMP/codes0")" 40
n1=$(grep "POST /v1/classify" "$TMP/resnetd.access.log" | grep -c "upstream=127.0.0.1:$P1 upstream_status=200")
n2=$(grep "POST /v1/classify" "$TMP/resnetd.access.log" | grep -c "upstream=127.0.0.1:$P2 upstream_status=200")
check "both replicas answered ($n1 and $n2 of 40)" [ "$n1" -gt 0 -a "$n2" -gt 0 ]
images() { # port: images the replica computed, from its own /metrics
    curl -s "http://127.0.0.1:$1/metrics" | awk '/^resnetd_images_total/ {s += $NF} END {print s + 0}'
}
i1=$(images "$P1"); i2=$(images "$P2")
check "each replica's /metrics counts its share ($i1 and $i2 images)" [ "$i1" -gt 0 -a "$i2" -gt 0 ]
check_eq "/metrics is not proxied (one replica's numbers would mislead)" \
    "$(curl -s -o /dev/null -w '%{http_code}' "$URL/metrics")" 404

# ---- a replica dies mid-load ----
load() { # codes file, seconds: 4 clients in a loop
    local end=$((SECONDS + $2))
    LOADERS=()
    for _ in 1 2 3 4; do
        ( while [ $SECONDS -lt $end ]; do
              curl -s -o /dev/null -w '%{http_code}\n' --data-binary @$DOG \
                  "$URL/v1/classify?topk=1" >>"$1"
          done ) &
        LOADERS+=($!)
    done
}
load_wait() { for p in "${LOADERS[@]}"; do wait "$p"; done; LOADERS=(); }
summary() { # codes file: "N requests, M not 200"
    echo "$(wc -l <"$1") requests, $(grep -vc '^200$' "$1") not 200"
}

load "$TMP/codes1" 4
sleep 1.5
kill -9 "${PID[$P1]}"; wait "${PID[$P1]}" 2>/dev/null; unset "PID[$P1]"
load_wait
s=$(summary "$TMP/codes1")
check "SIGKILL of replica 1 under load: $s" grep -q ' 0 not 200$' <<<"$s"
retried=$(grep -c "upstream=127.0.0.1:$P1, 127.0.0.1:$P2" "$TMP/resnetd.access.log")
echo "# $retried of them were retried from the dead replica on the other"

# replica 1 comes back; once nginx sends it requests again, replica 2 stops
# gracefully (SIGTERM: it stops accepting and finishes what it holds)
check "replica 1 restarted" start "$P1"
for _ in $(seq 60); do
    curl -s -o /dev/null --data-binary @$DOG "$URL/v1/classify"
    [ "$(images "$P1")" -gt 0 ] && break
    sleep 0.1
done
check "nginx sends requests to the restarted replica" [ "$(images "$P1")" -gt 0 ]
load "$TMP/codes2" 3
sleep 1
kill -TERM "${PID[$P2]}"
wait "${PID[$P2]}"
check_eq "replica 2 drained and exited 0 on SIGTERM" "$?" 0
unset "PID[$P2]"
load_wait
s=$(summary "$TMP/codes2")
check "SIGTERM of replica 2 under load: $s" grep -q ' 0 not 200$' <<<"$s"
check "nginx logged no 5xx to a client" \
    bash -c "! grep -E '\" 5[0-9][0-9] ' '$TMP/resnetd.access.log'"
tap_done
