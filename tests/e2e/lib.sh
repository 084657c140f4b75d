# Shared helpers for the end-to-end scripts: TAP output and assertions.
# Source it: . "$(dirname "$0")/lib.sh"
BUILD=${BUILD:-build}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# The daemon under test, as an absolute path (tests cd around).
case $BUILD in /*) RESNETD=$BUILD/resnetd ;; *) RESNETD=$ROOT/$BUILD/resnetd ;; esac
_tap_failed=0

ok()     { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; _tap_failed=1; }
# check DESCRIPTION COMMAND...: ok when the command succeeds
check()  { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
# check_eq DESCRIPTION GOT WANT
check_eq() { if [ "$2" == "$3" ]; then ok "$1"; else not_ok "$1 (got '$2', want '$3')"; fi; }
tap_done() { exit $_tap_failed; }

# A free TCP port on 127.0.0.1.
free_port() {
    /usr/bin/python3 - <<'PY' 2>/dev/null || echo $((20000 + RANDOM % 20000))
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

# batched URL: ok when the daemon's /metrics counts a batch of more than one image
batched() {
    curl -s "$1/metrics" | awk '$1 == "resnetd_batch_size_count" {n = $2}
        $1 == "resnetd_batch_size_bucket{le=\"1\"}" {ones = $2} END {exit !(n > ones)}'
}

# daemon_scratch: a scratch folder $TMP and an empty $PID; at exit the daemon
# whose pid the script put in $PID is killed and $TMP removed.
daemon_scratch() {
    TMP=$(mktemp -d)
    PID=
    trap '[ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"' EXIT
}

# wait_ready URL: wait up to 10 s for URL/v2/health/ready to answer 200.
wait_ready() {
    for _ in $(seq 100); do curl -sf "$1/v2/health/ready" >/dev/null && return 0; sleep 0.1; done
    return 1
}
