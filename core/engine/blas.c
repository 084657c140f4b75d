/* OpenBLAS, loaded at run time so that the right kernels are chosen.
 *
 * Debian 12's OpenBLAS 0.3.21 is built with DYNAMIC_ARCH and picks its kernels
 * once, in its constructor, from the CPU model number. It does not know recent
 * Xeons (family 6 model 207) and falls back to the generic Prescott kernels,
 * about 4x slower for SGEMM. The choice can only be overridden through the
 * OPENBLAS_CORETYPE environment variable, read by that constructor; a library
 * linked at build time is initialised before any of our code runs. So
 * libresnet does not link OpenBLAS: it sets OPENBLAS_CORETYPE from the CPU's
 * features (unless the user set it) and then dlopen()s the library.
 *
 * We run OpenBLAS single-threaded (OPENBLAS_NUM_THREADS=1 unless set) and
 * split work over our own thread pool, so that several inference contexts can
 * run side by side without oversubscribing the cores.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "blas.h"
#include "cpu.h"
#include "rn_internal.h"

rn_sgemm_fn rn_sgemm_ptr;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char init_err[256];
static int init_rc = RN_OK;
static char corename[64] = "unknown";

/* The OpenBLAS core type whose kernels suit this CPU, or NULL to let OpenBLAS
 * decide (it recognises everything older than AVX-512 well). */
static const char *coretype_for_cpu(void)
{
#if defined(__x86_64__)
    unsigned f = rn_cpu_features();
    if (f & RN_CPU_AVX512)
        return "SkylakeX";
    if (f & RN_CPU_AVX2_FMA)
        return "Haswell";
#endif
    return NULL;
}

static void blas_load(void)
{
    const char *want = coretype_for_cpu();
    if (want && !getenv("OPENBLAS_CORETYPE"))
        setenv("OPENBLAS_CORETYPE", want, 0);
    setenv("OPENBLAS_NUM_THREADS", "1", 0);

    static const char *names[] = {"libopenblas.so.0", "libopenblas.so", "libblas.so.3"};
    void *h = NULL;
    const char *dlerr = "";
    for (size_t i = 0; i < RN_ARRAY_LEN(names) && !h; i++) {
        h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!h)
            dlerr = dlerror();
    }
    if (!h) {
        init_rc = rn_errf(init_err, sizeof init_err, RN_ERR_INTERNAL,
                          "cannot load OpenBLAS (libopenblas.so.0): %s", dlerr);
        return;
    }
    rn_sgemm_ptr = (rn_sgemm_fn)dlsym(h, "cblas_sgemm");
    if (!rn_sgemm_ptr) {
        init_rc = rn_errf(init_err, sizeof init_err, RN_ERR_INTERNAL,
                          "the BLAS library has no cblas_sgemm");
        return;
    }
    void (*set_threads)(int) = (void (*)(int))dlsym(h, "openblas_set_num_threads");
    if (set_threads)
        set_threads(1);
    char *(*get_core)(void) = (char *(*)(void))dlsym(h, "openblas_get_corename");
    if (get_core && get_core())
        snprintf(corename, sizeof corename, "%s", get_core());
    rn_log(RN_LOG_INFO, "OpenBLAS core: %s%s", corename,
           want && !strcasecmp(corename, want) ? " (selected for this CPU)" : "");
    /* The handle stays open for the life of the process. */
}

int rn_blas_init(char *err, size_t errlen)
{
    pthread_once(&once, blas_load);
    if (init_rc < 0)
        return rn_errf(err, errlen, init_rc, "%s", init_err);
    return RN_OK;
}

const char *rn_blas_corename(void)
{
    return corename;
}
