#!/usr/bin/env bash
# The aarch64 build and its unit tests under qemu-user (make test-aarch64,
# tests/aarch64.sh): the NEON table (core/engine/kern_neon.c) against the reference
# and PyTorch's parity fixtures. Skipped, with a reason, only when the cross
# toolchain or qemu is missing (scripts/install-deps.sh installs them).
# qemu's timings mean nothing; only the results count.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
for tool in aarch64-linux-gnu-gcc qemu-aarch64-static; do
    if ! command -v $tool >/dev/null 2>&1; then
        ok "aarch64 under qemu # SKIP $tool is not installed (scripts/install-deps.sh)"
        exit 0
    fi
done
# a make of its own, not the jobserver of the make test that runs us, nor the
# flags of `make asan` (its command-line SANITIZE and CFLAGS reach us in the
# environment: sanitizers do not run under qemu-user)
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u SANITIZE -u CFLAGS -u KERN_CFLAGS make -s test-aarch64
