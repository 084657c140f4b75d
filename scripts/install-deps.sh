#!/usr/bin/env bash
# Install the Debian packages resnetd needs to build, test and serve, skipping
# the ones already installed. Used by `make run`, `make deps` and .ci/run.
#   scripts/install-deps.sh            build + runtime + test packages
#   scripts/install-deps.sh --dev      also the tools for regenerating fixtures
#                                      (python3-torch) and benchmarks
#   scripts/install-deps.sh --fuzz     also clang and its libFuzzer runtime
#                                      (make fuzz; .ci/run)
set -eu
PKGS=(
    build-essential pkg-config ca-certificates
    libopenblas-dev libcjson-dev libjpeg62-turbo-dev libpng-dev libwebp-dev libtiff-dev zlib1g-dev
    libmicrohttpd-dev libsystemd-dev libgnutls28-dev
    # ONNX models (core/formats/onnx.c): protobuf-c, and C generated at build time
    # from the onnx.proto that libonnx-dev ships
    libprotobuf-c-dev protobuf-c-compiler libonnx-dev
    libcmocka-dev curl jq python3 python3-yaml python3-jsonschema python3-pil nodejs npm darknet wrk nginx
    # promtool: the metrics exposition and the alert rules are linted (tests/e2e/server_observability.sh)
    prometheus
    chromium
    strace systemd valgrind
    # make image (tests/e2e/container_image.sh): a Debian base made locally by
    # mmdebstrap, built and run by podman under runc; uidmap and slirp4netns
    # for podman as a plain user
    podman runc mmdebstrap uidmap slirp4netns
    # make test-aarch64 (tests/e2e/aarch64_qemu.sh): the cross compiler, qemu,
    # and the arm64 builds of the libraries (multiarch, set up below; apt
    # then upgrades the amd64 ones to the same version where they differ)
    gcc-aarch64-linux-gnu qemu-user-static libc6-dev:arm64
    libcjson-dev:arm64 libjpeg62-turbo-dev:arm64 libpng-dev:arm64 libcmocka-dev:arm64
    libwebp-dev:arm64 libtiff-dev:arm64 zlib1g-dev:arm64
    libopenblas0:arm64 libmicrohttpd-dev:arm64 libsystemd-dev:arm64 libprotobuf-c-dev:arm64
)
if [ "${1:-}" = "--fuzz" ]; then
    PKGS+=(clang libclang-rt-14-dev)
fi
if [ "${1:-}" = "--dev" ]; then
    PKGS+=(python3-torch python3-torchvision python3-onnx python3-pil python3-numpy darknet
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
# the arm64 packages need arm64 as a dpkg architecture (once; apt-get update below)
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $SUDO dpkg --add-architecture arm64
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
