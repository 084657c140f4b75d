/* CPU features and the choice of micro-kernels (core/engine/cpu.c). */
#ifndef RN_CPU_H
#define RN_CPU_H

#include "rn_internal.h"

enum {
    RN_CPU_AVX2_FMA = 1 << 0,    /* avx2 and fma */
    RN_CPU_AVX512 = 1 << 1,      /* avx512f, bw, dq, vl (and avx2, fma) */
    RN_CPU_AVX512_BF16 = 1 << 2, /* avx512_bf16: VDPBF16PS, VCVTNEPS2BF16 */
    RN_CPU_NEON = 1 << 3,        /* aarch64 Advanced SIMD */
    RN_CPU_AVX512_VNNI = 1 << 4, /* avx512_vnni: VPDPBUSD */
    RN_CPU_NEON_DOTPROD = 1 << 5, /* aarch64 asimddp: UDOT, SDOT (ARMv8.2) */
};

/* RN_CPU_* flags of the CPU this runs on. */
unsigned rn_cpu_features(void);

/* 1 if isa (enum rn_isa) has bf16 tiles that this CPU runs. */
int rn_isa_bf16(int isa);

/* The ISA to run: requested, or for RN_ISA_AUTO the RN_ISA environment
 * variable when set, else the best this CPU runs. RN_ERR_UNSUPPORTED, with
 * what it needs, when the CPU cannot run the ISA asked for;
 * RN_ERR_INVALID_ARG for a name or number that is no ISA. */
int rn_isa_choose(int requested, int *isa, char *err, size_t errlen);

#endif
