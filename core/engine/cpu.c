/* CPU features, detected once and in this one place, and the choice of the
 * blocked engine's micro-kernels (enum rn_isa, core/engine/kernels.h). */
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "kernels.h"

#if defined(__aarch64__)
#include <sys/auxv.h> /* getauxval; HWCAP_ASIMDDP from glibc's bits/hwcap.h */
#endif

unsigned rn_cpu_features(void)
{
    unsigned f = 0;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        f |= RN_CPU_AVX2_FMA;
    if ((f & RN_CPU_AVX2_FMA) && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl"))
        f |= RN_CPU_AVX512;
    if ((f & RN_CPU_AVX512) && __builtin_cpu_supports("avx512bf16"))
        f |= RN_CPU_AVX512_BF16;
    if ((f & RN_CPU_AVX512) && __builtin_cpu_supports("avx512vnni"))
        f |= RN_CPU_AVX512_VNNI;
#elif defined(__aarch64__)
    f |= RN_CPU_NEON; /* Advanced SIMD is part of every ARMv8-A core */
    /* optional before ARMv8.4; the kernel says whether this core has it */
    if (getauxval(AT_HWCAP) & HWCAP_ASIMDDP)
        f |= RN_CPU_NEON_DOTPROD;
#endif
    return f;
}

static const char *const names[] = {
    [RN_ISA_AUTO] = "auto", [RN_ISA_AVX512] = "avx512", [RN_ISA_AVX2] = "avx2",
    [RN_ISA_NEON] = "neon", [RN_ISA_C] = "c",           [RN_ISA_BLAS] = "blas",
};

const char *rn_isa_name(int isa)
{
    return isa >= 0 && isa < (int)RN_ARRAY_LEN(names) ? names[isa] : "unknown";
}

int rn_isa_from_name(const char *name)
{
    for (int i = 0; name && i < (int)RN_ARRAY_LEN(names); i++)
        if (!strcmp(name, names[i]))
            return i;
    return -1;
}

/* What the ISA needs, for messages. */
static const char *needs(int isa)
{
    switch (isa) {
    case RN_ISA_AVX512:
        return "an x86-64 CPU with avx512f, avx512bw, avx512dq, avx512vl and fma";
    case RN_ISA_AVX2:
        return "an x86-64 CPU with avx2 and fma";
    case RN_ISA_NEON:
        return "an aarch64 CPU";
    default:
        return "nothing";
    }
}

const rn_kernels *rn_kernels_get(int isa)
{
    unsigned f = rn_cpu_features();
    switch (isa) {
#if defined(__x86_64__)
    case RN_ISA_AVX512:
        return f & RN_CPU_AVX512 ? &rn_kernels_avx512 : NULL;
    case RN_ISA_AVX2:
        return f & RN_CPU_AVX2_FMA ? &rn_kernels_avx2 : NULL;
#endif
#if defined(__aarch64__)
    case RN_ISA_NEON:
        return f & RN_CPU_NEON ? &rn_kernels_neon : NULL;
#endif
    case RN_ISA_C:
        return &rn_kernels_c;
    default:
        (void)f;
        return NULL;
    }
}

const rn_qkernels *rn_qkernels_get(int isa)
{
    unsigned f = rn_cpu_features();
    switch (isa) {
#if defined(__x86_64__)
    case RN_ISA_AVX512:
        /* the AVX-512 tiles are VPDPBUSD's: an AVX-512 CPU without VNNI
         * (Skylake-SP) runs its INT8 on the AVX2 ones */
        return f & RN_CPU_AVX512_VNNI ? &rn_qkernels_avx512 : f & RN_CPU_AVX512 ? &rn_qkernels_avx2 : NULL;
    case RN_ISA_AVX2:
        return f & RN_CPU_AVX2_FMA ? &rn_qkernels_avx2 : NULL;
#endif
#if defined(__aarch64__)
    case RN_ISA_NEON:
        if (!(f & RN_CPU_NEON))
            return NULL;
        return f & RN_CPU_NEON_DOTPROD ? &rn_qkernels_neon_dot : &rn_qkernels_neon;
#endif
    case RN_ISA_C:
        return &rn_qkernels_c;
    default:
        (void)f;
        return NULL;
    }
}

int rn_isa_supported(int isa)
{
    return isa == RN_ISA_AUTO || isa == RN_ISA_BLAS || rn_kernels_get(isa) != NULL;
}

int rn_isa_bf16(int isa)
{
    return isa == RN_ISA_AVX512 && (rn_cpu_features() & RN_CPU_AVX512_BF16);
}

int rn_isa_choose(int requested, int *isa, char *err, size_t errlen)
{
    const char *how = "requested";
    if (requested == RN_ISA_AUTO) {
        const char *env = getenv("RN_ISA");
        if (env && *env) {
            requested = rn_isa_from_name(env);
            if (requested < 0)
                return rn_errf(err, errlen, RN_ERR_INVALID_ARG,
                               "RN_ISA=%s: expected auto, avx512, avx2, neon, c or blas", env);
            how = "RN_ISA";
        }
    }
    if (requested == RN_ISA_AUTO) {
        static const int best[] = {RN_ISA_AVX512, RN_ISA_AVX2, RN_ISA_NEON, RN_ISA_C};
        for (size_t i = 0; i < RN_ARRAY_LEN(best); i++)
            if (rn_kernels_get(best[i])) {
                *isa = best[i];
                return RN_OK;
            }
    }
    if (requested < 0 || requested >= (int)RN_ARRAY_LEN(names))
        return rn_errf(err, errlen, RN_ERR_INVALID_ARG, "unknown ISA %d", requested);
    if (!rn_isa_supported(requested))
        return rn_errf(err, errlen, RN_ERR_UNSUPPORTED, "%s %s: this CPU cannot run it (it needs %s)",
                       how, rn_isa_name(requested), needs(requested));
    *isa = requested;
    return RN_OK;
}
