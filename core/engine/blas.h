/* The one BLAS routine the engine uses, resolved at run time (core/engine/blas.c). */
#ifndef RN_BLAS_H
#define RN_BLAS_H

/* CBLAS enum values, as in cblas.h. */
enum { RN_CBLAS_ROW_MAJOR = 101 };
enum { RN_CBLAS_NO_TRANS = 111, RN_CBLAS_TRANS = 112 };

typedef void (*rn_sgemm_fn)(int order, int trans_a, int trans_b, int m, int n, int k,
                            float alpha, const float *a, int lda, const float *b, int ldb,
                            float beta, float *c, int ldc);

/* Set by rn_blas_init(); valid once it returned RN_OK. */
extern rn_sgemm_fn rn_sgemm_ptr;

/* C[m x n] = A[m x k] * B[k x n] + beta * C, row-major, single-threaded. */
static inline void rn_sgemm(int m, int n, int k, const float *a, int lda, const float *b,
                            int ldb, float beta, float *c, int ldc)
{
    rn_sgemm_ptr(RN_CBLAS_ROW_MAJOR, RN_CBLAS_NO_TRANS, RN_CBLAS_NO_TRANS, m, n, k, 1.0f, a,
                 lda, b, ldb, beta, c, ldc);
}

#endif
