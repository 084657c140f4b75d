#!/usr/bin/env bash
# The container image (deploy/Containerfile, make image): it builds here
# without a registry; it holds no compiler, -dev package or Python; run under
# podman with the model directory mounted read-only, a read-only root and
# the port published on 127.0.0.1, it becomes ready and healthy, classifies
# byte for byte as the host's resnetd on the same model, runs as uid 65532,
# cannot write its root, serves with deploy/kserve/servingruntime.yaml's
# arguments, and on podman stop (SIGTERM) answers the request in flight and
# exits 0. Where podman cannot run a container, it says why and
# skips. A cold run (no base in models/cache/image/, no layers cached)
# takes about 2 minutes on 2 cores, a repeat one about 20 s.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
# A tag of this run's own (other clones may build at the same time); the
# layers stay in podman's build cache.
IMAGE=localhost/resnetd:e2e-$$
NAME=resnetd-e2e-$$
M1=tests/fixtures/parity/bottleneck.safetensors
IMG=tests/fixtures/images/dog_progressive.jpg
TMP=$(mktemp -d)
PID=
cleanup() {
    podman rm -f -i -t 0 "$NAME" "$NAME-kserve" >/dev/null 2>&1
    podman rmi "$IMAGE" >/dev/null 2>&1
    [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
skip() { ok "container image # SKIP $*"; tap_done; }

for tool in podman mmdebstrap; do
    if ! command -v $tool >/dev/null; then
        not_ok "$tool is installed (scripts/install-deps.sh)"
        tap_done
    fi
done
if [ "$(id -u)" -ne 0 ] && ! grep -qE "^($(id -un)|$(id -u)):" /etc/subuid 2>/dev/null; then
    skip "podman as uid $(id -u) needs subordinate uids, and /etc/subuid has none for $(id -un)" \
         "(usermod --add-subuids 100000-165535 --add-subgids 100000-165535 $(id -un))"
fi
if ! podman info >/dev/null 2>"$TMP/err"; then
    skip "podman does not start as uid $(id -u): $(grep . "$TMP/err" | tail -1)"
fi
if ! base=$(scripts/image.sh base 2>"$TMP/err"); then
    [ "$(id -u)" -ne 0 ] &&
        skip "the Debian base cannot be made or imported as uid $(id -u): $(grep . "$TMP/err" | tail -1)"
    not_ok "the Debian base (scripts/image.sh base): $(grep . "$TMP/err" | tail -1)"
    tap_done
fi
read -ra FLAGS <<<"$(scripts/image.sh flags)"
# what the build (apt-get in RUN steps) and the test (a published port) need
PORT=$(free_port)
if ! podman run --rm "${FLAGS[@]}" -p 127.0.0.1:$PORT:8080 "$base" true 2>"$TMP/err"; then
    skip "podman cannot run a container with a network here (${FLAGS[*]}): $(grep . "$TMP/err" | tail -1)"
fi

# ---- the build ----
t0=$(date +%s)
make -s image IMAGE=$IMAGE >"$TMP/build.log" 2>&1
rc=$?
check_eq "make image builds $IMAGE" $rc 0
[ $rc -eq 0 ] || { tail -20 "$TMP/build.log" | sed 's/^/# /'; tap_done; }
size=$(podman image inspect --format '{{.Size}}' $IMAGE)
echo "# make image: $(($(date +%s) - t0)) s; the image: $((size / 1000000)) MB"
check "the image is smaller than 200 MB (no build tools in it)" [ "${size:-999999999}" -lt 200000000 ]
config=$(podman image inspect --format \
    '{{.Config.User}} {{json .Config.Entrypoint}} {{.Config.StopSignal}} {{range $p, $_ := .Config.ExposedPorts}}{{$p}}{{end}}' $IMAGE)
check_eq "user, entrypoint, stop signal, port" "$config" '65532:65532 ["resnetd"] SIGTERM 8080/tcp'
check "a HEALTHCHECK on /v2/health/ready" bash -c \
    "podman image inspect --format '{{json .Config.Healthcheck}}' $IMAGE | grep -q /v2/health/ready"
# (Perl's perl-base is Essential in Debian, as in debian:12-slim.)
podman run --rm "${FLAGS[@]}" --network none --entrypoint sh $IMAGE -c \
    'for t in cc gcc make python3; do command -v $t; done; dpkg-query -W -f "\${Package}\n" | grep -- "-dev$"' \
    >"$TMP/tools" 2>/dev/null
check_eq "no compiler, make, Python or -dev package inside" "$(xargs <"$TMP/tools")" ""

# ---- run: the model from a read-only volume, the port on 127.0.0.1 ----
mkdir -p "$TMP/models"
cp "$M1" "$TMP/models/resnet50.safetensors" # the name the image's RESNETD_MODEL expects
chmod 755 "$TMP" "$TMP/models"
chmod 644 "$TMP/models/resnet50.safetensors"
URL=http://127.0.0.1:$PORT
# (Without systemd, podman complains on stderr that it cannot set a timer for
# the health check; podman healthcheck run runs it below.)
podman run -d --name "$NAME" "${FLAGS[@]}" --read-only -p 127.0.0.1:$PORT:8080 \
    -v "$TMP/models:/models:ro" $IMAGE >/dev/null 2>"$TMP/err"
check_eq "the container starts" "$?" 0
for _ in $(seq 300); do curl -sf "$URL/v2/health/ready" -o /dev/null && break; sleep 0.2; done
check "ready through the published port within 60 s" curl -sf "$URL/v2/health/ready" -o /dev/null
check "its HEALTHCHECK says healthy" podman healthcheck run "$NAME"
check "the process (pid 1) runs as uid 65532" bash -c \
    "podman exec '$NAME' cat /proc/1/status | grep -Eq '^Uid:\s+65532\s+65532'"
prestop=$(/usr/bin/python3 -c 'import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "Deployment":
        print(d["spec"]["template"]["spec"]["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][0])
' deploy/kubernetes.yaml)
check "deploy/kubernetes.yaml's preStop command (${prestop:-?}) is in the image" \
    podman exec "$NAME" sh -c "command -v '${prestop:-?}' >/dev/null"
check_eq "the root file system is read-only" \
    "$(podman exec --user 0 "$NAME" sh -c 'echo x >/etc/probe' 2>&1 | grep -o 'Read-only file system')" \
    "Read-only file system"

# the same model under the host's resnetd
HPORT=$(free_port)
"$RESNETD" --model "$TMP/models/resnet50.safetensors" --listen 127.0.0.1:$HPORT 2>"$TMP/host.log" &
PID=$!
wait_ready "http://127.0.0.1:$HPORT"
curl -s --data-binary @"$IMG" "http://127.0.0.1:$HPORT/v1/classify" >"$TMP/host.json"
curl -s --data-binary @"$IMG" "$URL/v1/classify" >"$TMP/image.json"
check "a classification (top 5)" bash -c "jq -e '.predictions | length == 5' '$TMP/image.json' >/dev/null"
check "the same bytes as the host's resnetd on the same model" cmp -s "$TMP/host.json" "$TMP/image.json"
kill -TERM $PID; wait $PID; PID=

# ---- as deploy/kserve/servingruntime.yaml runs it (model "resnet") ----
/usr/bin/python3 -c 'import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))["spec"]["containers"][0]
print("\n".join(a.replace("{{.Name}}", "resnet") for a in c["args"]))
' deploy/kserve/servingruntime.yaml >"$TMP/kserve.args"
mapfile -t KARGS <"$TMP/kserve.args"
KPORT=$(free_port)
podman run -d --name "$NAME-kserve" "${FLAGS[@]}" --read-only -p 127.0.0.1:$KPORT:8080 \
    -v "$TMP/models:/mnt/models:ro" $IMAGE "${KARGS[@]}" >/dev/null 2>&1
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$KPORT/v2/health/ready" -o /dev/null && break; sleep 0.2; done
check_eq "with the ServingRuntime's arguments (${KARGS[*]}), /v2/models/resnet/ready" \
    "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$KPORT/v2/models/resnet/ready")" 200
podman rm -f -t 0 "$NAME-kserve" >/dev/null 2>&1

# ---- podman stop: SIGTERM drains ----
curl -s -o "$TMP/a.json" -D "$TMP/a.h" -w '%{http_code}' --limit-rate 20k \
    --data-binary @"$IMG" "$URL/v1/classify" >"$TMP/a.code" &
CURL=$!
for _ in $(seq 50); do
    [ "$(curl -s "$URL/metrics" | awk '$1 == "resnetd_requests_in_flight" {print $2}')" = 2 ] && break
    sleep 0.1
done
t0=$(date +%s)
podman stop -t 30 "$NAME" >/dev/null 2>&1
wait $CURL
check_eq "a request in flight at podman stop is answered 200" "$(cat "$TMP/a.code")" 200
check "... with its classification, and Connection: close" bash -c \
    "jq -e '.predictions | length == 5' '$TMP/a.json' >/dev/null && grep -qi '^Connection: *close' '$TMP/a.h'"
check_eq "the container exits 0" "$(podman inspect --format '{{.State.ExitCode}}' "$NAME")" 0
check "... by itself, before the 30 s of podman stop" [ $(($(date +%s) - t0)) -lt 30 ]
check "its log says it drained and stopped" bash -c \
    "podman logs '$NAME' 2>&1 | grep -q 'stopping; finishing queued work' && podman logs '$NAME' 2>&1 | grep -q 'info: stopped'"
tap_done
