#!/usr/bin/env bash
# The aarch64 build's unit tests under qemu-user (make test-aarch64): each
# test binary of build-aarch64/tests/ runs under qemu-aarch64-static, and its
# result is one TAP line "ok - aarch64: NAME" / "not ok - aarch64: NAME ..."
# (tests/run.sh counts them), its output indented as "# " comments.
# Run from the repository root (the fixtures' paths are relative).
#
# Under qemu only correctness means anything: timings are those of an
# emulator (10-50x slower than native, softfloat), not of an ARM core.
# So: RN_TEST_QUICK=1 (test_blocked leaves out its largest shapes),
# test_blocked runs the NEON table only (its *_neon tests; the C table is tested natively),
# test_parity on NEON only (RN_TEST_ISA), OpenBLAS on one thread, and a
# time limit per binary.
set -u
cd "$(dirname "$0")/.."
B=${AARCH64_BUILD:-build-aarch64}
QEMU=${QEMU:-qemu-aarch64-static}
LIMIT=${AARCH64_TEST_SECONDS:-300}
# One thread: qemu-user 7.2 in this sandbox hangs in pthread_create, so the
# thread pool's second thread is never started there (the pool and the
# driver's splitting are ISA-neutral, and tested natively with 1-3 threads).
export RN_TEST_MAX_THREADS=1
export CMOCKA_MESSAGE_OUTPUT=TAP RN_TEST_QUICK=1 OPENBLAS_NUM_THREADS=1 RN_TEST_ISA=neon
# the cross toolchain's libc (libc6-arm64-cross); the multiarch libraries
# (libcjson1:arm64, libopenblas0:arm64...) are found in /usr/lib/aarch64-linux-gnu
QEMU_LD_PREFIX=${QEMU_LD_PREFIX:-/usr/aarch64-linux-gnu}
export QEMU_LD_PREFIX
failed=0
run() { # name, args...
    local name=$1; shift
    local bin=$B/tests/$name out rc t0=$SECONDS
    if [ ! -x "$bin" ]; then
        echo "not ok - aarch64: $name was not built ($bin)"; failed=1; return
    fi
    out=$(timeout "$LIMIT" "$QEMU" "$bin" "$@" 2>&1); rc=$?
    printf '%s\n' "$out" | sed 's/^/#   /'
    local bad
    bad=$(printf '%s\n' "$out" | grep -E '^not ok ' | grep -vcE '# *SKIP')
    if [ "$rc" -eq 0 ] && [ "$bad" -eq 0 ] && printf '%s\n' "$out" | grep -qE '^ok '; then
        echo "ok - aarch64: $name $* ($((SECONDS - t0)) s under qemu)"
    else
        echo "not ok - aarch64: $name $* (status $rc, $bad failed$([ "$rc" -eq 124 ] && echo ", over ${LIMIT} s"))"
        failed=1
    fi
}
run test_blocked "*_neon"
run test_parity
run test_safetensors
run test_image
run test_inspect
run test_qconv
run test_int8_parity
run test_int8_inspect "*_neon"
# not test_kernels: it checks the im2col + BLAS path with 1-3 threads, natively
exit $failed
