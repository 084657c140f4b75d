#!/usr/bin/env bash
# deploy/kubernetes.yaml holds together: it parses, the probes name resnetd's
# health routes, the CPU request and limit equal workers x threads, and
# resnetd started with the manifest's environment (model and port moved here)
# answers both probes and classifies.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
BIN=$RESNETD
TMP=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

if ! /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
    not_ok "python3-yaml is installed (Debian package python3-yaml)"
    tap_done
fi
# facts of the manifest, one "key value" a line
/usr/bin/python3 - deploy/kubernetes.yaml >"$TMP/facts" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kinds = {d["kind"]: d for d in docs}
pod = kinds["Deployment"]["spec"]["template"]["spec"]
c = pod["containers"][0]
env = {e["name"]: e["value"] for e in c["env"]}
print("kinds", " ".join(sorted(kinds)))
print("ready", c["readinessProbe"]["httpGet"]["path"])
print("live", c["livenessProbe"]["httpGet"]["path"])
print("cpu_request", c["resources"]["requests"]["cpu"])
print("cpu_limit", c["resources"]["limits"]["cpu"])
print("cores", int(env["RESNETD_WORKERS"]) * int(env["RESNETD_THREADS"]))
print("model_mount", [m["mountPath"] for m in c["volumeMounts"] if m["name"] == "models"][0])
print("model_ro", c["volumeMounts"][0].get("readOnly", False))
print("service_selects",
      kinds["Service"]["spec"]["selector"] == kinds["Deployment"]["spec"]["template"]["metadata"]["labels"])
for k, v in env.items():
    print("env", k + "=" + str(v))
PY
check "the manifest parses" [ -s "$TMP/facts" ]
fact() { sed -n "s/^$1 //p" "$TMP/facts"; }
check_eq "a Deployment and a Service" "$(fact kinds)" "Deployment Service"
check_eq "readiness probe" "$(fact ready)" /v2/health/ready
check_eq "liveness probe" "$(fact live)" /v2/health/live
check_eq "CPU request = workers x threads" "$(fact cpu_request)" "$(fact cores)"
check_eq "CPU limit = workers x threads" "$(fact cpu_limit)" "$(fact cores)"
check_eq "the models volume is mounted read-only" "$(fact model_ro)" True
check_eq "the Service selects the Deployment's pods" "$(fact service_selects)" True

# the pod's environment, but this machine's model and a free port
PORT=$(free_port)
mkdir -p "$TMP/models"
model=$(fact env | sed -n 's/^RESNETD_MODEL=//p')
check "the model is read from the volume" [ "${model#"$(fact model_mount)"/}" != "$model" ]
ln -s "$ROOT/tests/fixtures/parity/bottleneck.safetensors" "$TMP/models/$(basename "$model")"
( while IFS= read -r kv; do export "$kv"; done < <(fact env)
  export RESNETD_MODEL=$TMP/models/$(basename "$model") RESNETD_LISTEN=127.0.0.1:$PORT
  exec "$BIN" ) 2>"$TMP/log" &
PID=$!
URL=http://127.0.0.1:$PORT
for _ in $(seq 100); do curl -sf "$URL$(fact ready)" -o /dev/null && break; sleep 0.1; done
check "the readiness probe answers 200" curl -sf "$URL$(fact ready)" -o /dev/null
check "the liveness probe answers 200" curl -sf "$URL$(fact live)" -o /dev/null
check "the pod's settings took (2 workers x 1 thread)" grep -q "2 workers x 1 thread" "$TMP/log"
check_eq "a photo is classified" "$(curl -s -o /dev/null -w '%{http_code}' \
    --data-binary @/usr/share/darknet/data/dog.jpg "$URL/v1/classify")" 200
check "the log is JSON, as the manifest asks" bash -c "tail -1 '$TMP/log' | jq -e . >/dev/null"
kill -TERM $PID; wait $PID
check_eq "SIGTERM exits 0" "$?" 0
PID=
tap_done
