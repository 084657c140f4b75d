#!/usr/bin/env bash
# Native TLS (--tls-cert/--tls-key): classify and metrics over TLS 1.2 and
# 1.3, TLS 1.1 and plain HTTP refused, a chain verified with the root CA
# only, every bad certificate or key refused at start with a message naming
# the file, and the certificate rotated on SIGHUP under load without one
# failed request. Certificates are made here with openssl, in a temp dir.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
BIN=$RESNETD
MODEL=tests/fixtures/parity/bottleneck.safetensors
DOG=/usr/share/darknet/data/dog.jpg
TMP=$(mktemp -d)
PIDS=()
LOADERS=()
cleanup() {
    for p in "${LOADERS[@]}" "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    [ -n "${KEEP:-}" ] && echo "kept $TMP" || rm -rf "$TMP"
}
trap cleanup EXIT
cd "$TMP"

# ---- certificates: a root CA, an intermediate, leaves, bad ones ----
EC=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >leaf.ext
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n' >ca.ext
openssl req -x509 "${EC[@]}" -keyout ca.key -out ca.crt -days 3 -subj "/CN=resnetd test CA" 2>/dev/null
# newleaf NAME SERIAL ISSUER: NAME.key, NAME.crt for 127.0.0.1, signed by ISSUER
newleaf() {
    openssl req -new "${EC[@]}" -keyout "$1.key" -out "$1.csr" -subj "/CN=$1" 2>/dev/null
    openssl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" -set_serial "$2" -days 2 \
        -extfile leaf.ext -out "$1.crt" 2>/dev/null
}
newleaf one 0x1001 ca
newleaf two 0x1002 ca
newleaf three 0x1003 ca
openssl req -new "${EC[@]}" -keyout inter.key -out inter.csr -subj "/CN=resnetd test intermediate" 2>/dev/null
openssl x509 -req -in inter.csr -CA ca.crt -CAkey ca.key -set_serial 0x2001 -days 2 -extfile ca.ext \
    -out inter.crt 2>/dev/null
newleaf chained 0x3001 inter
cat chained.crt inter.crt >chain.pem
cat inter.crt chained.crt >unordered.pem
# expired and not yet valid: `openssl ca` takes explicit dates (OpenSSL 3.0's
# x509 has no -not_before)
mkdir ca.db && touch ca.db/index.txt && echo 4001 >ca.db/serial
cat >ca.cnf <<EOF
[ca]
default_ca = d
[d]
dir = $TMP/ca.db
database = \$dir/index.txt
new_certs_dir = \$dir
serial = \$dir/serial
default_md = sha256
policy = p
unique_subject = no
[p]
commonName = supplied
EOF
dated() { # NAME START END
    openssl req -new "${EC[@]}" -keyout "$1.key" -out "$1.csr" -subj "/CN=$1" 2>/dev/null
    openssl ca -batch -notext -config ca.cnf -cert ca.crt -keyfile ca.key -in "$1.csr" -out "$1.crt" \
        -startdate "$2" -enddate "$3" -extfile leaf.ext 2>/dev/null
}
dated expired 20200101000000Z 20200102000000Z
dated future 20990101000000Z 20991231000000Z
openssl pkey -in one.key -aes256 -passout pass:secret -out encrypted.key
head -c 3000 /dev/urandom >garbage.pem
check "test certificates made (leaf, chain, expired, not yet valid)" \
    test -s one.crt -a -s chain.pem -a -s expired.crt -a -s future.crt -a -s encrypted.key

# ---- start-up refusals, each naming the file ----
# refused DESCRIPTION PATTERN ARGS...: exit 2 and PATTERN in the log
refused() {
    local d=$1 pat=$2; shift 2
    timeout 20 "$BIN" --model "$ROOT/$MODEL" --listen 127.0.0.1:$(free_port) "$@" >out 2>err
    local rc=$?
    if [ $rc -eq 2 ] && grep -q -- "$pat" err; then ok "$d"; else not_ok "$d (exit $rc: $(tail -1 err))"; fi
}
refused "a missing certificate file is refused, named" "--tls-cert $TMP/none.crt: No such file" \
    --tls-cert "$TMP/none.crt" --tls-key one.key
refused "a missing key file is refused, named" "--tls-key $TMP/none.key: No such file" \
    --tls-cert one.crt --tls-key "$TMP/none.key"
refused "a directory as certificate is refused" "--tls-cert $TMP: is a directory" \
    --tls-cert "$TMP" --tls-key one.key
if [ "$(id -u)" -ne 0 ]; then
    cp one.key noread.key && chmod 000 noread.key
    refused "an unreadable key is refused" "--tls-key noread.key: Permission denied" \
        --tls-cert one.crt --tls-key noread.key
fi
refused "garbage as certificate is refused" "--tls-cert garbage.pem: no PEM certificate" \
    --tls-cert garbage.pem --tls-key one.key
refused "garbage as key is refused" "--tls-key garbage.pem: no usable PEM private key" \
    --tls-cert one.crt --tls-key garbage.pem
refused "a key of another certificate is refused" \
    "--tls-key two.key: this private key does not match the certificate of --tls-cert one.crt" \
    --tls-cert one.crt --tls-key two.key
refused "an expired certificate is refused, with its date" \
    "--tls-cert expired.crt: certificate 1 of the chain (CN=expired) expired on 2020-01-02T00:00:00Z" \
    --tls-cert expired.crt --tls-key expired.key
refused "a certificate not yet valid is refused" \
    "--tls-cert future.crt: certificate 1 of the chain (CN=future) is not valid before 2099-01-01" \
    --tls-cert future.crt --tls-key future.key
refused "an encrypted key is refused: it must be unencrypted" \
    "--tls-key encrypted.key: the private key is encrypted; resnetd needs it unencrypted" \
    --tls-cert one.crt --tls-key encrypted.key
refused "a chain out of order (intermediate first) is refused" \
    "--tls-cert unordered.pem: the certificates are out of order" \
    --tls-cert unordered.pem --tls-key chained.key
refused "--tls-cert alone is refused" "--tls-cert given without --tls-key" --tls-cert one.crt
RESNETD_TLS_KEY=one.key refused "RESNETD_TLS_KEY alone is refused" "--tls-key given without --tls-cert"

# ---- a daemon on TLS ----
# start NAME ARGS...: a daemon on a free port, URL in $URL, log in NAME.log
start() {
    local name=$1; shift
    PORT=$(free_port)
    URL=https://127.0.0.1:$PORT
    "$BIN" --model "$ROOT/$MODEL" --listen 127.0.0.1:$PORT "$@" 2>"$name.log" &
    PIDS+=($!)
    PID=$!
    for _ in $(seq 100); do
        curl -sfk "$URL/v2/health/ready" -o /dev/null && return 0
        sleep 0.1
    done
    return 1
}
cp one.crt cur.crt && cp one.key cur.key
check "the daemon starts on TLS" start cur --tls-cert cur.crt --tls-key cur.key
check "its log says https and names the certificate" \
    grep -q "TLS 1.2 and 1.3, certificate CN=one, serial 1001" cur.log
# tlsv VERSION CURL-ARGS...: classify and metrics with curl; both 200 on TLS VERSION
tlsv() {
    local v=$1; shift
    local c m
    c=$(curl -sv --cacert ca.crt "$@" --data-binary @$DOG "$URL/v1/classify?topk=1" 2>c.err |
        jq -r '.predictions | length')
    m=$(curl -s --cacert ca.crt "$@" -w '%{http_code}' -o metrics.txt "$URL/metrics")
    grep -q "SSL connection using TLSv$v" c.err && [ "$c" = 1 ] && [ "$m" = 200 ] &&
        grep -q '^resnetd_requests_total{route="/v1/classify",code="200"}' metrics.txt
}
check "classify and metrics over TLS 1.2" tlsv 1.2 --tlsv1.2 --tls-max 1.2
check "classify and metrics over TLS 1.3" tlsv 1.3 --tlsv1.3
check "the chain is not trusted without the CA (curl verifies)" \
    test "$(curl -s -o /dev/null -w '%{http_code}' "$URL/v2/health/ready")" = 000

# TLS 1.1 with the cipher floor lowered, so that the client does offer it:
# the same command must connect to a server that allows 1.1.
s_client11() { timeout 10 openssl s_client -connect "127.0.0.1:$1" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' </dev/null >s11.out 2>&1; }
P11=$(free_port)
openssl s_server -accept "$P11" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' -cert one.crt -key one.key -quiet \
    </dev/null >/dev/null 2>&1 &
PIDS+=($!)
sleep 0.5
check "the TLS 1.1 client does connect to a server allowing 1.1 (openssl s_server)" \
    bash -c "$(declare -f s_client11); s_client11 $P11 && grep -q 'Protocol *: TLSv1.1' s11.out"
check "resnetd refuses TLS 1.1" bash -c "$(declare -f s_client11); ! s_client11 $PORT"

fails() { curl -s --cacert ca.crt "$URL/metrics" | awk '$1 == "resnetd_tls_handshake_failures_total" {print $2}'; }
before=$(fails)
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v2/health/ready")
check_eq "plain HTTP to the TLS port gets no HTTP reply" "$code" "000"
check "the daemon serves TLS on after it" curl -sf --cacert ca.crt "$URL/v2/health/ready" -o /dev/null
sleep 0.2
after=$(fails)
check "the plain HTTP attempt counts as a handshake failure ($before -> $after)" \
    test -n "$after" -a "$after" -gt "${before:-0}"
# a Content-Length libmicrohttpd cannot read: its 400, inside TLS (no plain
# bytes written onto the TLS socket)
code=$(curl -s --cacert ca.crt -o /dev/null -w '%{http_code}' -H 'Content-Length: abc' -X POST \
       "$URL/v1/classify")
check_eq "an unreadable Content-Length over TLS gets a readable 400" "$code" "400"
expiry=$(curl -s --cacert ca.crt "$URL/metrics" | awk '$1 == "resnetd_tls_cert_expiry_timestamp_seconds" {print $2}')
check_eq "the expiry gauge is the certificate's notAfter" "$expiry" \
    "$(date -d "$(openssl x509 -in one.crt -noout -enddate | cut -d= -f2)" +%s)"

# ---- rotation under load: new handshakes and keep-alive connections ----
serial() { timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -CAfile ca.crt </dev/null 2>/dev/null |
           openssl x509 -noout -serial; }
check_eq "s_client sees the first certificate" "$(serial)" "serial=1001"
for i in 1 2 3 4; do
    ( if [ $((i % 2)) = 0 ]; then # 5 requests per connection, a new connection (handshake) each round
          args=(--data-binary @$DOG); for _ in 1 2 3 4 5; do args+=(-o /dev/null "$URL/v1/classify"); done
      else
          args=(); for p in v2/health/ready metrics v1/models v2/health/ready metrics; do
              args+=(-o /dev/null "$URL/$p"); done
      fi
      while :; do curl -s --cacert ca.crt -w '%{http_code}\n' "${args[@]}" >>"codes.$i"; done ) &
    LOADERS+=($!)
done
sleep 1
cp two.crt new.crt && cp two.key new.key && mv new.crt cur.crt && mv new.key cur.key
kill -HUP $PID
for _ in $(seq 100); do grep -q "TLS certificate reloaded" cur.log && break; sleep 0.1; done
sleep 1
kill "${LOADERS[@]}" 2>/dev/null; wait "${LOADERS[@]}" 2>/dev/null; LOADERS=()
check "the reload is logged with the new certificate" grep -q "TLS certificate reloaded: CN=two, serial 1002" cur.log
n=$(cat codes.* | wc -l)
non200=$(cat codes.* | grep -vc '^200$')
check "$n requests through the rotation, all answered 200 ($non200 not)" [ "$n" -gt 20 -a "$non200" -eq 0 ]
check_eq "s_client sees the new certificate" "$(serial)" "serial=1002"

# a bad pair on SIGHUP: the old one stays, the log says why
cp three.crt cur.crt # three's certificate, two's key
kill -HUP $PID
for _ in $(seq 100); do grep -q "TLS reload failed" cur.log && break; sleep 0.1; done
check "a mismatched pair on SIGHUP is logged with the reason" \
    grep -q "TLS reload failed, still serving the previous certificate (CN=two, serial 1002.*): --tls-key cur.key: this private key does not match" cur.log
check_eq "the previous certificate is still served" "$(serial)" "serial=1002"
check "and requests are still answered" curl -sf --cacert ca.crt "$URL/v2/health/ready" -o /dev/null
kill -TERM $PID
wait $PID
check_eq "SIGTERM exits 0" "$?" "0"

# ---- API keys over TLS 1.2 and 1.3: the same refusals as in plain HTTP ----
KEY_INFER=tls-infer-key-0123456789abcdef
KEY_METRICS=tls-metrics-key-0123456789abcd
printf 'infer %s\nmetrics %s\n' "$KEY_INFER" "$KEY_METRICS" >keys
chmod 600 keys
check "a daemon on TLS with API keys starts" start keyed --tls-cert one.crt --tls-key one.key --api-keys keys
# code VERSION-ARGS HEADER...: the status of a classify over TLS
code() {
    local v=$1; shift
    curl -s --cacert ca.crt $v -o /dev/null -w '%{http_code}' "$@" --data-binary @$DOG "$URL/v1/classify"
}
for v in "--tlsv1.2 --tls-max 1.2" "--tlsv1.3"; do
    check_eq "TLS ${v:6:3}: classify without a key is 401" "$(code "$v")" 401
    check_eq "TLS ${v:6:3}: with another group's key 403" "$(code "$v" -H "X-API-Key: $KEY_METRICS")" 403
    check_eq "TLS ${v:6:3}: with its key (Bearer) 200" "$(code "$v" -H "Authorization: Bearer $KEY_INFER")" 200
done
check "the keys are not in the log" bash -c "! grep -q -e '$KEY_INFER' -e '$KEY_METRICS' keyed.log"
kill -TERM $PID; wait $PID

# ---- a chain: leaf + intermediate, trusted through the root CA alone; env form ----
RESNETD_TLS_CERT=chain.pem RESNETD_TLS_KEY=chained.key start chain
check "a chain (leaf, intermediate) verifies with the root CA only (RESNETD_TLS_* env)" \
    curl -sf --cacert ca.crt "$URL/v2/health/ready" -o /dev/null
kill -TERM $PID; wait $PID
start leafonly --tls-cert chained.crt --tls-key chained.key
check "the leaf without its intermediate does not verify with the root CA" \
    test "$(curl -s --cacert ca.crt -o /dev/null -w '%{http_code}' "$URL/v2/health/ready")" = 000
kill -TERM $PID; wait $PID
tap_done
