#!/usr/bin/env bash
# Install the Debian packages resnetd needs to build, test and serve, skipping
# the ones already installed. Used by `make run`, `make deps` and .ci/run.
#   scripts/install-deps.sh            build + runtime + test packages
#   scripts/install-deps.sh --dev      also the tools for regenerating fixtures
#                                      (python3-torch) and benchmarks
set -eu
PKGS=(
    build-essential pkg-config ca-certificates
    libopenblas-dev libcjson-dev libjpeg62-turbo-dev libpng-dev
    libmicrohttpd-dev libsystemd-dev
    libcmocka-dev curl jq python3 python3-yaml python3-jsonschema nodejs npm darknet wrk nginx
    strace systemd valgrind
)
if [ "${1:-}" = "--dev" ]; then
    PKGS+=(python3-torch python3-torchvision python3-pil python3-numpy darknet
           imagemagick valgrind clang libclang-rt-14-dev time)
fi

missing=()
for p in "${PKGS[@]}"; do
    # A Node.js from elsewhere (NodeSource bundles npm) conflicts with Debian's npm.
    case $p in nodejs|npm) command -v npm >/dev/null 2>&1 && continue ;; esac
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
SUDO=
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
