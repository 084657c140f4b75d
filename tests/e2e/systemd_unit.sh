#!/usr/bin/env bash
# The systemd unit: `systemd-analyze verify` passes with no warning (and does
# catch a broken unit), `systemd-analyze security` rates the exposure at most
# 1.5, the environment file names every flag and starts the daemon, and
# resnetd works under the unit's sandbox, rebuilt here without systemd as
# PID 1: a read-only root, /proc with only process directories
# (ProcSubset=pid, ProtectProc=invisible), a minimal /dev (PrivateDevices), an
# unprivileged uid without capabilities (DynamicUser, CapabilityBoundingSet=),
# under strace to check the system calls against SystemCallFilter=, the socket
# families against RestrictAddressFamilies= and the mappings against
# MemoryDenyWriteExecute=.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
BIN=$RESNETD
UNIT=systemd/resnetd.service
DOG=/usr/share/darknet/data/dog.jpg
TMP=$(mktemp -d)
chmod 755 "$TMP" # the sandboxed daemon runs as another uid and reads its model here
PID=
cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

if ! command -v systemd-analyze >/dev/null; then
    not_ok "systemd-analyze is installed (Debian package systemd)"
    tap_done
fi

# ---- systemd-analyze verify ----
# A copy with ExecStart on this build (verify checks that it is executable);
# the man page in Documentation= is looked up in docs/ when man is installed.
mkdir -p "$TMP/unit" "$TMP/bad" "$TMP/man/man8"
cp docs/resnetd.8 "$TMP/man/man8/"
MAN=--man=no
command -v man >/dev/null && MAN=--man=yes
export MANPATH=$TMP/man
verify() { # unit file: ok when verify succeeds and prints nothing
    systemd-analyze verify "$MAN" "$1" >"$TMP/verify.out" 2>&1 && [ ! -s "$TMP/verify.out" ]
}
sed "s|^ExecStart=/usr/local/bin/resnetd|ExecStart=$BIN|" $UNIT >"$TMP/unit/resnetd.service"
check "the unit's ExecStart points at the build" grep -q "^ExecStart=$BIN " "$TMP/unit/resnetd.service"
if verify "$TMP/unit/resnetd.service"; then
    ok "systemd-analyze verify $MAN: resnetd.service, no warning"
else
    not_ok "systemd-analyze verify $MAN: resnetd.service: $(cat "$TMP/verify.out")"
fi
systemd/make-template.sh "$TMP/unit/resnetd.service" >"$TMP/unit/resnetd@.service"
cp "$TMP/unit/resnetd@.service" "$TMP/unit/resnetd@8081.service"
if verify "$TMP/unit/resnetd@8081.service"; then
    ok "systemd-analyze verify: the template as resnetd@8081.service, no warning"
else
    not_ok "systemd-analyze verify: resnetd@8081.service: $(cat "$TMP/verify.out")"
fi
check "the template listens on its instance's port" \
    grep -q "^ExecStart=$BIN \$RESNETD_OPTS --listen 127.0.0.1:%i$" "$TMP/unit/resnetd@.service"
# ...and the check is real: each of these breakages must be reported
broken() { # description, sed expression
    sed "$2" "$TMP/unit/resnetd.service" >"$TMP/bad/resnetd.service"
    if verify "$TMP/bad/resnetd.service"; then not_ok "verify catches $1"; else ok "verify catches $1"; fi
}
broken "a misspelt directive" 's/^ProtectSystem=/ProtectSytem=/'
broken "a bad value" 's/^Type=notify/Type=notifyy/'
broken "a missing binary" "s|^ExecStart=$BIN|ExecStart=/nonexistent/resnetd|"

# ---- systemd-analyze security ----
exposure() { # unit file: the overall exposure, e.g. 0.9
    systemd-analyze security --offline=true "$1" 2>&1 |
        sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p'
}
for u in $UNIT "$TMP/unit/resnetd@.service"; do
    e=$(exposure "$u")
    echo "# systemd-analyze security --offline=true $(basename "$u"): exposure $e"
    check "$(basename "$u") exposure $e is at most 1.5" \
        awk -v e="$e" 'BEGIN { exit !(e != "" && e + 0 <= 1.5) }'
done
sed -e '/^ProtectSystem=/d' -e '/^SystemCallFilter=/d' -e '/^DynamicUser=/d' \
    -e '/^CapabilityBoundingSet=/d' $UNIT >"$TMP/bad/weak.service"
e=$(exposure "$TMP/bad/weak.service")
check "the score is real: without four key lines it rises above 1.5 ($e)" \
    awk -v e="$e" 'BEGIN { exit !(e + 0 > 1.5) }'

# ---- the environment file ----
ENVF=systemd/resnetd.env
flags=$("$BIN" --help | sed -n 's/^  --\([a-z-]*\).*/\1/p' | grep -vxE 'help|version')
missing=
for f in $flags; do
    v=RESNETD_$(tr 'a-z-' 'A-Z_' <<<"$f")
    grep -qE "^#? ?$v=" $ENVF || missing="$missing $v"
done
check_eq "resnetd.env sets or shows every flag of --help" "$missing" ""
unknown=
for v in $(sed -n 's/^#\{0,1\}\(RESNETD_[A-Z_]*\)=.*/\1/p' $ENVF); do
    f=$(tr 'A-Z_' 'a-z-' <<<"${v#RESNETD_}")
    [ "$v" = RESNETD_OPTS ] || grep -qx "$f" <<<"$flags" || unknown="$unknown $v"
done
check_eq "resnetd.env names no variable resnetd does not read" "$unknown" ""
check "every line of resnetd.env is a comment, blank or NAME=value" \
    bash -c "! grep -vE '^(#.*|[A-Z_]+=.*|)$' $ENVF"
check "resnetd.env listens on loopback" grep -qx 'RESNETD_LISTEN=127.0.0.1:8080' $ENVF
# the daemon starts with the file's settings (the model and port moved here)
PORT=$(free_port)
( set -a; . ./$ENVF; set +a
  RESNETD_MODEL=$ROOT/tests/fixtures/parity/bottleneck.safetensors
  RESNETD_LISTEN=127.0.0.1:$PORT
  exec "$BIN" $RESNETD_OPTS ) 2>"$TMP/env.log" &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/v2/health/ready" -o /dev/null && break; sleep 0.1; done
check "resnetd starts with the settings of resnetd.env" \
    curl -sf "http://127.0.0.1:$PORT/v2/health/ready" -o /dev/null
kill -TERM $PID; wait $PID; PID=
BLAS_CORE=$(sed -n 's/.*(BLAS core \(.*\))$/\1/p' "$TMP/env.log")

# ---- resnetd inside the unit's sandbox ----
if ! command -v strace >/dev/null; then
    not_ok "strace is installed (Debian package strace)"
    tap_done
fi
if ! unshare --mount true 2>/dev/null; then
    ok "# SKIP the sandbox run: no mount namespaces here (unshare --mount failed)"
    tap_done
fi
# SystemCallFilter=@system-service ~@privileged @resources, with the groups
# expanded from systemd-analyze's own lists; execve and the like are always
# allowed. strace makes every other call fail with EPERM, as the unit's
# seccomp filter does (SystemCallErrorNumber=EPERM).
allowed=$(python3 - <<'PY'
import subprocess
out = subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True, text=True).stdout
groups, cur = {}, None
for line in out.splitlines():
    if line.startswith("@"):
        cur = line.split()[0]
        groups[cur] = []
    elif cur and line.strip() and not line.strip().startswith("#"):
        groups[cur].append(line.strip())
def expand(g):
    s = set()
    for m in groups.get(g, []):
        s |= expand(m) if m.startswith("@") else {m}
    return s
allowed = expand("@system-service") - expand("@privileged") - expand("@resources")
allowed |= {"execve", "exit", "exit_group", "getrlimit", "rt_sigreturn"}
print(" ".join(sorted(allowed)))
PY
)
check "the filter's system calls are listed ($(wc -w <<<"$allowed") of them)" [ "$(wc -w <<<"$allowed")" -gt 200 ]
# strace's set syntax: "!" for all but, "?" to skip names unknown on this arch
INJECT="!$(sed 's/\([^ ]*\)/?\1/g; s/ /,/g' <<<"$allowed")"
mkdir -p "$TMP/models" "$TMP/out" "$TMP/bin"
chmod 777 "$TMP/out"
# The daemon runs as another uid, which may not reach the build (a clone under
# a 0700 home): it runs from a copy in $TMP, as the unit's does from /usr/local/bin.
SBIN=$TMP/bin/resnetd
cp "$BIN" "$SBIN"
chmod 755 "$TMP/bin" "$SBIN"
if ! setpriv --reuid=61999 --regid=61999 --clear-groups test -x "$SBIN" 2>/dev/null; then
    ok "# SKIP the sandbox run: uid 61999 cannot reach $TMP (TMPDIR not world-searchable?)"
    tap_done
fi
cp tests/fixtures/parity/bottleneck.safetensors "$TMP/models/m.safetensors"
chmod 644 "$TMP/models/m.safetensors"
cat >"$TMP/sandbox.sh" <<'EOF'
# In a private mount namespace: $1 the only writable directory (strace's
# output), $2 strace's fault injection, then the command, run as uid 61999
# with no capability, under strace.
set -e
out=$1 inject=$2; shift 2
mount --make-rprivate /
mount --bind "$out" "$out"
# ProcSubset=pid + ProtectProc=invisible
mount -t proc -o subset=pid,hidepid=invisible proc /proc
# PrivateDevices=yes: only the pseudo devices
dev=$out/.dev; mkdir -p "$dev"
mount -t tmpfs -o mode=755,nosuid,noexec tmpfs "$dev"
for d in null zero full random urandom; do
    touch "$dev/$d"; mount --bind "/dev/$d" "$dev/$d"
done
mount --move "$dev" /dev
# ProtectSystem=strict (and ProtectKernelTunables: /sys read-only)
mount -o remount,bind,ro /
mount -o remount,bind,ro /sys
exec setpriv --reuid=61999 --regid=61999 --clear-groups --no-new-privs \
            --inh-caps=-all --bounding-set=-all -- \
     strace -f -qq -o "$out/strace" -e inject="$inject":error=EPERM "$@"
EOF
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
# LeakSanitizer cannot run under strace's ptrace (make asan): no leak check here.
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
unshare --mount bash "$TMP/sandbox.sh" "$TMP/out" "$INJECT" \
    "$SBIN" --model "$TMP/models/m.safetensors" --listen 127.0.0.1:$PORT 2>"$TMP/sandbox.log" &
SPID=$!
PID=$SPID
for _ in $(seq 200); do curl -sf "$URL/v2/health/ready" -o /dev/null && break; sleep 0.1; done
check "resnetd becomes ready in the sandbox" curl -sf "$URL/v2/health/ready" -o /dev/null
DPID=$(pgrep -P $SPID -x resnetd)
check "it runs as the unprivileged uid" [ "$(stat -c %u /proc/$DPID 2>/dev/null)" = 61999 ]
got=$(sed -n 's/.*(BLAS core \(.*\))$/\1/p' "$TMP/sandbox.log")
check_eq "OpenBLAS is loaded and picks the same kernels as outside ($BLAS_CORE)" "$got" "$BLAS_CORE"
check_eq "a photo is classified" \
    "$(curl -s -o /dev/null -w '%{http_code}' --data-binary @$DOG "$URL/v1/classify")" 200
check_eq "a photo is inspected, with its heat map, in the sandbox" \
    "$(curl -s -o /dev/null -w '%{http_code}' --data-binary @$DOG "$URL/v1/inspect")$(
       curl -s -o /dev/null -w '%{http_code}' --data-binary @$DOG "$URL/v1/inspect?format=png&lesions=0")" 200200
check_eq "the inspection page is served in the sandbox" \
    "$(curl -s -o /dev/null -w '%{http_code}' "$URL/")$(curl -s -o /dev/null -w '%{http_code}' "$URL/ui/app.js")" 200200
cp tests/fixtures/parity/basic.safetensors "$TMP/models/m.new"
chmod 644 "$TMP/models/m.new"; mv "$TMP/models/m.new" "$TMP/models/m.safetensors"
kill -HUP "$DPID"
for _ in $(seq 100); do grep -q "reload done" "$TMP/sandbox.log" && break; sleep 0.1; done
check "SIGHUP reloads the model from the read-only path" grep -q "reload done" "$TMP/sandbox.log"
check_eq "the reloaded model serves (10 classes)" \
    "$(curl -s "$URL/v1/models" | jq '.models[0].classes')" 10
kill -TERM "$DPID"
wait $SPID
check_eq "SIGTERM exits 0 in the sandbox" "$?" 0
PID=

# resnetd's part of the trace: from its execve on (before it, setpriv's set-up)
ST=$TMP/out/resnetd.strace
awk -v bin="execve(\"$SBIN\"" 'index($0, bin) { on = 1 } on' "$TMP/out/strace" >"$ST"
check "the trace holds resnetd's system calls" [ -s "$ST" ]
calls=$(sed -E 's/^[0-9]+ +//' "$ST" | grep -oE '^[a-z_0-9]+\(' | tr -d '(' | sort -u)
denied=$(grep -E '\(INJECTED\)$' "$ST" | sed -E 's/^[0-9]+ +//' | cut -d'(' -f1 | sort -u | xargs)
echo "# system calls made: $(xargs <<<"$calls")"
echo "# refused by the filter (EPERM): ${denied:-none}"
# mbind: OpenBLAS's MPOL_PREFERRED-without-node hint, which asks for the
# default policy anyway; it ignores the EPERM (and everything above passed)
check_eq "every system call but OpenBLAS's mbind hint passes SystemCallFilter=" \
    "$(tr ' ' '\n' <<<"$denied" | grep -vx mbind | xargs)" ""
check "no writable and executable mapping (MemoryDenyWriteExecute=)" \
    bash -c "! grep -E 'mmap\(.*PROT_WRITE\|PROT_EXEC|mprotect\(.*PROT_EXEC|pkey_mprotect\(.*PROT_EXEC' '$ST'"
fams=$(grep -oE 'socket\(AF_[A-Z0-9]+' "$ST" | sed 's/socket(//' | sort -u | xargs)
check "sockets only of AF_INET, AF_INET6, AF_UNIX ($fams)" \
    bash -c "! grep -oE 'socket\(AF_[A-Z0-9]+' '$ST' | grep -vE 'AF_(INET|INET6|UNIX)$'"
# files under /proc, /dev, /sys that failed to open inside but exist outside
hidden=
for f in $(grep -E 'open(at)?\(.*"/(proc|dev|sys)/.*= -1 E' "$ST" | grep -oE '"/(proc|dev|sys)/[^"]*"' | tr -d '"' | sort -u); do
    [ -e "$f" ] && hidden="$hidden $f"
done
check_eq "nothing looked for a file the sandbox hides in /proc, /dev or /sys" "$hidden" ""
tap_done
