#!/usr/bin/env bash
# deploy/kubernetes.yaml holds together: it parses, the probes name resnetd's
# health routes, the CPU request and limit equal workers x threads, it runs
# the image deploy/Containerfile makes as that image expects (entrypoint,
# port, user, model path, environment variables that are resnetd flags, a
# grace period that covers the drain), and resnetd started with the
# manifest's environment (model and port moved here) answers both probes and
# classifies.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
BIN=$RESNETD
daemon_scratch

if ! /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
    not_ok "python3-yaml is installed (Debian package python3-yaml)"
    tap_done
fi
# facts of the manifest and of the Containerfile's final stage, one "key
# value" a line
/usr/bin/python3 - deploy/kubernetes.yaml deploy/Containerfile >"$TMP/facts" <<'PY'
import json, re, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kinds = {d["kind"]: d for d in docs}
pod = kinds["Deployment"]["spec"]["template"]["spec"]
c = pod["containers"][0]
env = {e["name"]: e["value"] for e in c["env"]}
print("image", c["image"])
print("command", json.dumps(c.get("command")), json.dumps(c.get("args")))
print("port", [p["containerPort"] for p in c["ports"] if p["name"] == "http"][0])
print("user", "%s:%s" % (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]))
print("grace", pod["terminationGracePeriodSeconds"])
print("prestop", " ".join(c["lifecycle"]["preStop"]["exec"]["command"]))
# the Containerfile: continuation lines joined, the last stage's instructions
lines = re.sub(r"\\\n", " ", open(sys.argv[2]).read()).splitlines()
stage = [l for l in lines if l.strip() and not l.startswith("#")]
stage = stage[max(i for i, l in enumerate(stage) if l.startswith("FROM")):]
for l in stage:
    word, _, rest = l.partition(" ")
    if word == "ENV":
        for kv in rest.split():
            print("cf_env", kv)
    elif word in ("ENTRYPOINT", "EXPOSE", "USER", "STOPSIGNAL"):
        print("cf_" + word.lower(), rest.strip())
    elif word == "HEALTHCHECK":
        print("cf_health", re.search(r"/v2/health/\w+", rest).group(0))
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

# ---- the manifest runs the image as the image expects ----
cf_env() { fact cf_env | sed -n "s/^$1=//p"; }
check_eq "the image is make image's" "$(fact image)" "$(sed -n 's/^IMAGE ?= *//p' Makefile)"
check_eq "the image's ENTRYPOINT runs (no command, no args)" "$(fact command)" "null null"
check_eq "the image's entrypoint is resnetd" "$(fact cf_entrypoint)" '["resnetd"]'
check_eq "containerPort = the image's EXPOSE" "$(fact port)" "$(fact cf_expose)"
check_eq "containerPort = the port the image listens on" "$(fact port)" "$(cf_env RESNETD_LISTEN | sed 's/.*://')"
check_eq "the manifest listens where the image does" \
    "$(fact env | sed -n 's/^RESNETD_LISTEN=//p')" "$(cf_env RESNETD_LISTEN)"
check_eq "runAsUser:runAsGroup = the image's USER" "$(fact user)" "$(fact cf_user)"
check_eq "the model volume is where the image looks" \
    "$(fact model_mount)" "$(dirname "$(cf_env RESNETD_MODEL)")"
check_eq "the image's HEALTHCHECK asks readiness, as the probe does" "$(fact cf_health)" "$(fact ready)"
check_eq "the image stops with SIGTERM, as the kubelet does" "$(fact cf_stopsignal)" SIGTERM
"$BIN" --help >"$TMP/help"
unknown=
for kv in $(fact env) $(fact cf_env); do
    flag=${kv%%=*}; flag=${flag#RESNETD_}; flag=--$(echo "$flag" | tr 'A-Z_' 'a-z-')
    grep -q -- "^  $flag " "$TMP/help" || unknown="$unknown ${kv%%=*}"
done
check_eq "every RESNETD_ variable (manifest, image) is a resnetd flag" "$unknown" ""
timeout_ms=$(fact env | sed -n 's/^RESNETD_REQUEST_TIMEOUT_MS=//p')
[ -n "$timeout_ms" ] ||
    timeout_ms=$(sed -n '/--request-timeout-ms/s/.*(default \([0-9]*\)).*/\1/p' "$TMP/help")
sleep_s=$(fact prestop | sed -n 's/^sleep //p')
check "grace period ($(fact grace) s) > preStop (${sleep_s:-?} s) + request timeout (${timeout_ms:-?} ms)" \
    [ "$(fact grace)" -gt $((${sleep_s:-999} + ${timeout_ms:-999000} / 1000)) ]

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
