#!/usr/bin/env bash
# The portable engine path (im2col + OpenBLAS), which CPUs without AVX-512
# run, forced on this machine: the PyTorch parity and kernel tests again.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
export CMOCKA_MESSAGE_OUTPUT=TAP RN_FORCE_GENERIC=1
for t in test_parity test_kernels; do
    out=$("$BUILD/tests/$t" 2>&1)
    rc=$?
    printf '%s\n' "$out" | sed -n 's/^\(not \)\{0,1\}ok [0-9]* - /&/p' | sed "s/ - / - generic path: /"
    check_eq "generic path: $t exits 0" "$rc" "0"
done
tap_done
