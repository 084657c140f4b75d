#!/usr/bin/env bash
# The manifests of deploy/kserve and deploy/autoscaling hold together with
# the resnetd they deploy: every flag and RESNETD_* variable they name is one
# `resnetd --help` lists; resnetd started with the ServingRuntime's arguments
# and environment (storage-initializer layout of the InferenceService's
# storageUri, port moved here) serves the InferenceService's name; every
# probe path and scrape path it names answers 200 and the scrape port is the
# container's; every resnetd_* metric they use (a _bucket, _sum or _count
# suffix allowed) is on the live /metrics; the autoscalers scale the
# Deployment of deploy/kubernetes.yaml on the metric the adapter rule makes.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
PY=/usr/bin/python3
daemon_scratch

if ! $PY -c 'import yaml' 2>/dev/null; then
    not_ok "python3-yaml is installed (Debian package python3-yaml)"
    tap_done
fi
"$RESNETD" --help >"$TMP/help"
check "resnetd --help" [ -s "$TMP/help" ]

# facts of the manifests, one "key value" a line
$PY - "$TMP/help" deploy/kserve/*.yaml deploy/autoscaling/*.yaml deploy/kubernetes.yaml \
    >"$TMP/facts" <<'PY'
import re, sys, yaml
help_text = open(sys.argv[1]).read()
flags = set(re.findall(r"^  --([a-z-]+)", help_text, re.M))
files = sys.argv[2:-1]
docs = [(f, d) for f in files for d in yaml.safe_load_all(open(f)) if d]
k8s = {d["kind"]: d for d in yaml.safe_load_all(open(sys.argv[-1])) if d}

def walk(x):
    """Every (key, value) pair of a document, depth first."""
    if isinstance(x, dict):
        for k, v in x.items():
            yield k, v
            yield from walk(v)
    elif isinstance(x, list):
        for v in x:
            yield from walk(v)

def strings(x):
    if isinstance(x, str):
        yield x
    elif isinstance(x, dict):
        for k, v in x.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(x, list):
        for v in x:
            yield from strings(v)

# the names prometheus-adapter rules make ("as"): custom metrics, not resnetd's
made = {r["name"]["as"] for _, d in docs if d["kind"] == "ConfigMap"
        for r in yaml.safe_load(d["data"]["config.yaml"])["rules"]}
kinds = sorted(d["kind"] for _, d in docs)
print("kinds", " ".join(kinds))
for f, d in docs:
    where = f"{f}:{d['kind']}"
    for k, v in walk(d):
        if k == "containers":
            for c in v:
                for a in c.get("args", []) + c.get("command", [])[1:]:
                    if a.startswith("--"):
                        name = a[2:].split("=")[0]
                        print("flag", name in flags, where, name)
                for e in c.get("env", []):
                    if e["name"].startswith("RESNETD_"):
                        name = e["name"][8:].lower().replace("_", "-")
                        print("envflag", name in flags, where, e["name"])
        if k == "httpGet":
            print("probe", where, v["path"])
        if k == "annotations":
            for a, val in v.items():
                if a.endswith("/path"):
                    print("probe", where, val)
                if a.endswith("/port"):
                    print("annotation_port", where, val)
    for s in strings(d):
        for m in set(re.findall(r"\bresnetd_[a-z0-9_]+", s)) - made:
            print("metric", where, m)

rt = [d for _, d in docs if d["kind"] == "ClusterServingRuntime"][0]
isvc = [d for _, d in docs if d["kind"] == "InferenceService"][0]
c = rt["spec"]["containers"][0]
print("container_name", c["name"])
print("container_port", c["ports"][0]["containerPort"])
print("protocols", " ".join(rt["spec"]["protocolVersions"]))
print("formats", " ".join(sorted(f["name"] for f in rt["spec"]["supportedModelFormats"])))
sc = c["securityContext"]
print("secure", sc.get("runAsNonRoot") is True and sc.get("readOnlyRootFilesystem") is True
      and sc.get("allowPrivilegeEscalation") is False and sc["capabilities"]["drop"] == ["ALL"])
print("isvc_name", isvc["metadata"]["name"])
print("isvc_runtime", isvc["spec"]["predictor"]["model"]["runtime"] == rt["metadata"]["name"])
print("isvc_format", isvc["spec"]["predictor"]["model"]["modelFormat"]["name"])
print("isvc_file", isvc["spec"]["predictor"]["model"]["storageUri"].rsplit("/", 1)[1])
print("args", " ".join(c["args"]))
for e in c.get("env", []):
    print("env", e["name"] + "=" + str(e["value"]))

# the autoscalers: the Deployment of deploy/kubernetes.yaml, on the adapter's metric
dep = k8s["Deployment"]["metadata"]["name"]
for _, d in docs:
    if d["kind"] in ("HorizontalPodAutoscaler", "ScaledObject"):
        t = d["spec"]["scaleTargetRef"]
        print("target", d["kind"], t.get("kind", "Deployment") == "Deployment" and t["name"] == dep)
hpa = [d for _, d in docs if d["kind"] == "HorizontalPodAutoscaler"][0]
hpa_metric = hpa["spec"]["metrics"][0]["pods"]["metric"]["name"]
print("hpa_metric_made", hpa_metric in made, hpa_metric, " ".join(sorted(made)))
PY
check "the manifests parse" [ -s "$TMP/facts" ]
fact() { sed -n "s/^$1 //p" "$TMP/facts"; }
check_eq "the kinds" "$(fact kinds)" \
    "ClusterServingRuntime ConfigMap HorizontalPodAutoscaler InferenceService ScaledObject"
check_eq "every flag named is one resnetd --help lists" "$(fact flag | grep -v '^True' || true)" ""
check_eq "every RESNETD_* variable named is a flag of resnetd --help" "$(fact envflag | grep -v '^True' || true)" ""
check "flags and variables were found" [ "$(fact flag | wc -l)" -ge 3 -a "$(fact envflag | wc -l)" -ge 3 ]
check_eq "the container is kserve-container" "$(fact container_name)" kserve-container
check_eq "protocolVersions: v2" "$(fact protocols)" v2
check_eq "model formats: safetensors, pytorch, onnx" "$(fact formats)" "onnx pytorch safetensors"
check_eq "non-root, read-only root, no privilege escalation, capabilities dropped" "$(fact secure)" True
check_eq "the InferenceService names this runtime" "$(fact isvc_runtime)" True
check_eq "the autoscalers scale deploy/kubernetes.yaml's Deployment" "$(fact target | sort -u)" \
    "HorizontalPodAutoscaler True
ScaledObject True"
check "the HPA's metric is one the adapter rule makes: $(fact hpa_metric_made)" \
    bash -c "fact() { sed -n \"s/^\$1 //p\" '$TMP/facts'; }; fact hpa_metric_made | grep -q '^True'"

# resnetd as the runtime starts it: /mnt/models as the storage initializer
# leaves the InferenceService's storageUri (one file), {{.Name}} its name
PORT=$(free_port)
mkdir -p "$TMP/mnt/models"
ln -s "$ROOT/tests/fixtures/parity/bottleneck.safetensors" "$TMP/mnt/models/$(fact isvc_file)"
NAME=$(fact isvc_name)
read -ra args <<<"$(fact args)"
cport=$(fact container_port)
listen_ok=0
for i in "${!args[@]}"; do
    case ${args[$i]} in
        --model-dir=/mnt/models) args[$i]=--model-dir=$TMP/mnt/models ;;
        --listen=*) [ "${args[$i]##*:}" = "$cport" ] && listen_ok=1; args[$i]=--listen=127.0.0.1:$PORT ;;
    esac
    args[$i]=${args[$i]//'{{.Name}}'/$NAME}
done
check "--listen's port is the containerPort ($cport)" [ $listen_ok = 1 ]
check_eq "the scrape annotations name the containerPort" "$(fact annotation_port | awk '{print $2}' | sort -u)" "$cport"
( while IFS= read -r kv; do export "$kv"; done < <(fact env)
  exec "$RESNETD" "${args[@]}" ) 2>"$TMP/log" &
PID=$!
URL=http://127.0.0.1:$PORT
wait_ready "$URL"
check "resnetd starts with the runtime's arguments and environment" curl -sf "$URL/v2/health/ready" -o /dev/null
check_eq "it serves the InferenceService's name" "$(curl -s "$URL/v2/models/$NAME/ready" | jq -r .ready)" true
printf '{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["%s"]}]}' \
    "$(base64 -w0 /usr/share/darknet/data/dog.jpg)" >"$TMP/v2.json"
check_eq "v2 infer at /v2/models/$NAME/infer" \
    "$(curl -s --data-binary @"$TMP/v2.json" "$URL/v2/models/$NAME/infer" | jq -r '.outputs[0].name')" logits
bad=
while read -r where path; do
    c=$(curl -s -o /dev/null -w '%{http_code}' "$URL$path")
    [ "$c" = 200 ] || bad="$bad $where:$path=$c"
done < <(fact probe)
check_eq "every probe and scrape path answers 200 ($(fact probe | awk '{print $2}' | sort -u | tr '\n' ' '))" "$bad" ""
curl -s "$URL/metrics" >"$TMP/metrics"
bad=
while read -r where m; do
    base=$(sed -E 's/_(bucket|sum|count)$//' <<<"$m")
    grep -qE "^# TYPE ($m|$base) " "$TMP/metrics" || bad="$bad $where:$m"
done < <(fact metric)
check "metrics were found in the adapter rule and the KEDA trigger" [ "$(fact metric | cut -d: -f1 | sort -u | wc -l)" -ge 2 ]
check_eq "every resnetd_* metric used is on the live /metrics" "$bad" ""
kill -TERM "$PID"; wait "$PID"; PID=
tap_done
