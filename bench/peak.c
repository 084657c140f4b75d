/* bench/peak: the peak FP32 FMA throughput of this machine, the ceiling that
 * make bench-peers and bench-scaling.sh divide the engine's GFLOP/s by; and
 * beside it the peak INT8 dot-product throughput (VPDPBUSD), the ceiling of
 * an INT8 engine and of the INT8 peers.
 *
 * For each SIMD width the CPU runs (AVX-512 zmm, AVX2+FMA ymm on x86-64; NEON
 * q registers on aarch64), a loop of independent FMAs (acc = acc * a + b on
 * enough accumulators to cover the FMA latency times the FMA ports) on 1
 * thread and on T threads. Each kernel is compiled with a function target
 * attribute and chosen at run time (__builtin_cpu_supports on x86-64), so the
 * binary runs on any CPU of its architecture.
 *
 * INT8 (x86-64): the same loop of independent VPDPBUSD (acc += four u8 x s8
 * products per int32 lane) on zmm (AVX512-VNNI), on ymm with its EVEX form
 * (AVX512-VNNI + AVX512VL) and on ymm with its VEX form (AVX-VNNI), each where
 * the CPU has it; counted in MACs (one u8 x s8 multiply-add): 64 per zmm
 * instruction, 32 per ymm. A CPU without any prints "no VNNI" and skips them.
 *
 * The machine may be shared: each thread times its work in slices of a few
 * millisecond, and the peak is the sum over threads of each thread's best
 * slice rate (a slice in which it had its core to itself); the sustained
 * figure (all FLOPs over the wall time) is printed beside it. With more
 * threads than online CPUs the best slices could overlap in time, so the
 * peak is then the sustained figure.
 *
 *   bench/peak [--threads T] [--seconds S]      (defaults: online CPUs, 0.5 s)
 *
 * Prints a table per precision, then a last line of JSON:
 *   {"threads":2,"seconds":0.5,"avx512_gflops":232.1,"avx512_gflops_1t":116.3,...,
 *    "avx512_vnni_gmacs":452.0,"avx512_vnni_gmacs_1t":226.4,...}
 * where NAME_gflops (FP32 FLOP/s) and NAME_gmacs (INT8 MAC/s) are for T
 * threads, NAME_gflops_1t and NAME_gmacs_1t for one; the INT8 names are
 * avx512_vnni (zmm), avx512_vnni_ymm (EVEX ymm) and avx2_vnni (AVX-VNNI ymm).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#define R4(X) X(0) X(1) X(2) X(3)
#define R8(X) R4(X) X(4) X(5) X(6) X(7)
#define R12(X) R8(X) X(8) X(9) X(10) X(11)
#define R16(X) R12(X) X(12) X(13) X(14) X(15)

/* Starting values of the accumulators: acc converges to b / (1 - a) = 1, so
 * there are neither denormals nor infinities whatever the iteration count. */
static volatile float g_a = 0.999f, g_b = 0.001f;
static volatile float g_sink;

/* Each kernel runs `iters` iterations of NACC independent vector FMAs and
 * returns the FLOPs done (2 per lane per FMA). */
typedef double (*kernel_fn)(uint64_t iters);

#if defined(__x86_64__)
/* zmm: 32 registers; 16 accumulators cover 2 ports x latency 4 with room
 * (Skylake-SP, Ice Lake, Sapphire Rapids; Zen 4 splits zmm into 2 ymm). */
#define ZACC 16
__attribute__((target("avx512f,fma"))) static double fma_avx512(uint64_t iters)
{
    __m512 a = _mm512_set1_ps(g_a), b = _mm512_set1_ps(g_b);
#define DECL(i) __m512 c##i = _mm512_set1_ps((float)(i) * 0.01f);
#define STEP(i) c##i = _mm512_fmadd_ps(c##i, a, b);
#define SUM(i) s = _mm512_add_ps(s, c##i);
    R16(DECL)
    for (uint64_t n = 0; n < iters; n++) {
        R16(STEP)
    }
    __m512 s = _mm512_setzero_ps();
    R16(SUM)
    g_sink = _mm512_reduce_add_ps(s);
#undef DECL
#undef STEP
#undef SUM
    return (double)iters * ZACC * 16 * 2;
}

/* ymm: 16 registers; 12 accumulators + a + b (Haswell..Alder Lake: 2 ports x
 * latency 4-5; Zen 2-4: 2 ports x latency 4-5). */
#define YACC 12
__attribute__((target("avx2,fma"))) static double fma_avx2(uint64_t iters)
{
    __m256 a = _mm256_set1_ps(g_a), b = _mm256_set1_ps(g_b);
#define DECL(i) __m256 c##i = _mm256_set1_ps((float)(i) * 0.01f);
#define STEP(i) c##i = _mm256_fmadd_ps(c##i, a, b);
#define SUM(i) s = _mm256_add_ps(s, c##i);
    R12(DECL)
    for (uint64_t n = 0; n < iters; n++) {
        R12(STEP)
    }
    __m256 s = _mm256_setzero_ps();
    R12(SUM)
    float v[8];
    _mm256_storeu_ps(v, s);
    g_sink = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
#undef DECL
#undef STEP
#undef SUM
    return (double)iters * YACC * 8 * 2;
}

/* INT8: acc (16 x int32) += the sums of 4 adjacent u8 x s8 products, for
 * every lane, so 64 MACs per zmm VPDPBUSD and 32 per ymm. The sums wrap
 * modulo 2^32 (no saturation in VPDPBUSD), which is harmless here. Each
 * kernel returns the MACs done. The step is inline assembly: GCC 12 wraps
 * each _mm512_dpbusd_epi32 of such a loop in two register copies (and
 * spills), which the loop would then measure too; "v" lets the accumulators
 * take all 32 registers, "x" keeps the VEX form to the 16 it can encode. */
static volatile int8_t g_u8 = 3, g_s8 = -5;
static volatile int32_t g_isink;

/* zmm: 16 accumulators cover 2 ports x latency 5 (Ice Lake-SP, Sapphire
 * Rapids) and 1 zmm per cycle x latency 4 (Zen 4's two 256-bit halves). */
__attribute__((target("avx512f,avx512vnni"))) static double vnni_avx512(uint64_t iters)
{
    __m512i a = _mm512_set1_epi8(g_u8), b = _mm512_set1_epi8(g_s8);
#define DECL(i) __m512i c##i = _mm512_set1_epi32(i);
#define STEP(i) __asm__("vpdpbusd %2, %1, %0" : "+v"(c##i) : "v"(a), "v"(b));
#define SUM(i) s = _mm512_add_epi32(s, c##i);
    R16(DECL)
    for (uint64_t n = 0; n < iters; n++) {
        R16(STEP)
    }
    __m512i s = _mm512_setzero_si512();
    R16(SUM)
    g_isink = _mm512_reduce_add_epi32(s);
#undef DECL
#undef STEP
#undef SUM
    return (double)iters * 16 * 64;
}

/* ymm, EVEX-encoded (AVX512VL): 32 registers, so 16 accumulators as well. */
__attribute__((target("avx512f,avx512vl,avx512vnni"))) static double vnni_avx512_ymm(uint64_t iters)
{
    __m256i a = _mm256_set1_epi8(g_u8), b = _mm256_set1_epi8(g_s8);
#define DECL(i) __m256i c##i = _mm256_set1_epi32(i);
#define STEP(i) __asm__("vpdpbusd %2, %1, %0" : "+v"(c##i) : "v"(a), "v"(b));
#define SUM(i) s = _mm256_add_epi32(s, c##i);
    R16(DECL)
    for (uint64_t n = 0; n < iters; n++) {
        R16(STEP)
    }
    __m256i s = _mm256_setzero_si256();
    R16(SUM)
    int32_t v[8];
    _mm256_storeu_si256((__m256i *)v, s);
    g_isink = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
#undef DECL
#undef STEP
#undef SUM
    return (double)iters * 16 * 32;
}

/* ymm, VEX-encoded (AVX-VNNI: Alder Lake, Sapphire Rapids, Zen 5): 16
 * registers, so 12 accumulators + a + b, as the AVX2 FMA loop. The target
 * name needs GCC 11 or Clang 12, the {vex} prefix binutils 2.36. */
#if (defined(__clang__) && __clang_major__ >= 12) || (!defined(__clang__) && __GNUC__ >= 11)
#define HAVE_AVXVNNI 1
__attribute__((target("avx2,avxvnni"))) static double vnni_avx2(uint64_t iters)
{
    __m256i a = _mm256_set1_epi8(g_u8), b = _mm256_set1_epi8(g_s8);
#define DECL(i) __m256i c##i = _mm256_set1_epi32(i);
#define STEP(i) __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(c##i) : "x"(a), "x"(b));
#define SUM(i) s = _mm256_add_epi32(s, c##i);
    R12(DECL)
    for (uint64_t n = 0; n < iters; n++) {
        R12(STEP)
    }
    __m256i s = _mm256_setzero_si256();
    R12(SUM)
    int32_t v[8];
    _mm256_storeu_si256((__m256i *)v, s);
    g_isink = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
#undef DECL
#undef STEP
#undef SUM
    return (double)iters * 12 * 32;
}

/* AVX-VNNI: CPUID.(EAX=7,ECX=1):EAX bit 4 (not every compiler's
 * __builtin_cpu_supports knows it), with the OS saving ymm (AVX2 implies it). */
static int has_avxvnni(void)
{
    unsigned a, b, c, d;
    if (!__builtin_cpu_supports("avx2") || !__get_cpuid_count(7, 1, &a, &b, &c, &d))
        return 0;
    return (a >> 4) & 1;
}
#endif /* HAVE_AVXVNNI */
#endif

#if defined(__aarch64__)
/* q: 32 registers; 16 accumulators cover 4 ports x latency 4 (Neoverse V1/V2,
 * Apple M1) and 2 x 4 (Cortex-A72/A76, Neoverse N1). */
#define QACC 16
static double fma_neon(uint64_t iters)
{
    float32x4_t a = vdupq_n_f32(g_a), b = vdupq_n_f32(g_b);
#define DECL(i) float32x4_t c##i = vdupq_n_f32((float)(i) * 0.01f);
#define STEP(i) c##i = vfmaq_f32(b, c##i, a);
#define SUM(i) s = vaddq_f32(s, c##i);
    R16(DECL)
    for (uint64_t n = 0; n < iters; n++) {
        R16(STEP)
    }
    float32x4_t s = vdupq_n_f32(0);
    R16(SUM)
    g_sink = vaddvq_f32(s);
#undef DECL
#undef STEP
#undef SUM
    return (double)iters * QACC * 4 * 2;
}
#endif

struct isa {
    const char *name, *what;
    kernel_fn fn;
    int supported;
};

static int probe(struct isa *isas)
{
    int n = 0;
#if defined(__x86_64__)
    __builtin_cpu_init();
    isas[n++] = (struct isa){"avx512", "AVX-512F zmm, 16 x 16 lanes", fma_avx512,
                             __builtin_cpu_supports("avx512f")};
    isas[n++] = (struct isa){"avx2", "AVX2+FMA ymm, 12 x 8 lanes", fma_avx2,
                             __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")};
#elif defined(__aarch64__)
    isas[n++] = (struct isa){"neon", "NEON q, 16 x 4 lanes", fma_neon, 1};
#endif
    return n;
}

/* the INT8 dot-product loops, named as their JSON keys */
static int probe_int8(struct isa *isas)
{
    int n = 0;
#if defined(__x86_64__)
    __builtin_cpu_init();
    int vnni512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni");
    isas[n++] = (struct isa){"avx512_vnni", "VPDPBUSD zmm, 16 x 64 MACs", vnni_avx512, vnni512};
    isas[n++] = (struct isa){"avx512_vnni_ymm", "VPDPBUSD ymm (EVEX), 16 x 32 MACs", vnni_avx512_ymm,
                             vnni512 && __builtin_cpu_supports("avx512vl")};
#ifdef HAVE_AVXVNNI
    isas[n++] = (struct isa){"avx2_vnni", "VPDPBUSD ymm (AVX-VNNI), 12 x 32 MACs", vnni_avx2,
                             has_avxvnni()};
#endif
#endif
    return n;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct job {
    kernel_fn fn;
    double seconds;
    uint64_t chunk; /* iterations per slice */
    pthread_barrier_t *barrier;
    double start, end, flops, best; /* out; best: GFLOP/s of the best slice */
};

static void *worker(void *arg)
{
    struct job *j = arg;
    pthread_barrier_wait(j->barrier);
    double t = now_s(), deadline = t + j->seconds;
    j->start = t;
    j->flops = 0;
    j->best = 0;
    do {
        double f = j->fn(j->chunk), t1 = now_s();
        if (t1 > t && f / (t1 - t) / 1e9 > j->best)
            j->best = f / (t1 - t) / 1e9;
        j->flops += f;
        t = t1;
    } while (t < deadline);
    j->end = t;
    return NULL;
}

/* Iterations for a slice of about 1 ms on one thread: short enough that some
 * slices fall between the time slices of other processes on a busy machine. */
static uint64_t calibrate(kernel_fn fn)
{
    uint64_t n = 1024;
    for (;;) {
        double t0 = now_s();
        fn(n);
        double dt = now_s() - t0;
        if (dt > 2e-3 || n > (1ull << 40))
            return (uint64_t)((double)n * 1e-3 / (dt > 0 ? dt : 1e-6)) + 1;
        n *= 2;
    }
}

/* peak (best slices summed) and sustained GFLOP/s of `threads` threads */
static int measure(kernel_fn fn, int threads, double seconds, uint64_t chunk, int ncpu,
                   double *peak, double *sustained)
{
    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    struct job *jobs = calloc((size_t)threads, sizeof *jobs);
    pthread_barrier_t barrier;
    if (!tid || !jobs || pthread_barrier_init(&barrier, NULL, (unsigned)threads)) {
        free(tid);
        free(jobs);
        return -1;
    }
    for (int i = 0; i < threads; i++) {
        jobs[i] = (struct job){.fn = fn, .seconds = seconds, .chunk = chunk, .barrier = &barrier};
        if (pthread_create(&tid[i], NULL, worker, &jobs[i])) {
            fprintf(stderr, "peak: cannot start thread %d\n", i);
            exit(1); /* the others wait on the barrier forever */
        }
    }
    double start = 1e300, end = 0, flops = 0, best = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
        start = jobs[i].start < start ? jobs[i].start : start;
        end = jobs[i].end > end ? jobs[i].end : end;
        flops += jobs[i].flops;
        best += jobs[i].best;
    }
    pthread_barrier_destroy(&barrier);
    free(tid);
    free(jobs);
    *sustained = flops / (end - start) / 1e9;
    *peak = threads > ncpu ? *sustained : best;
    return 0;
}

/* One table: a row per loop, its best-slice and sustained rate on 1 and on
 * `threads` threads (in `unit`, the kernels' count per second / 1e9), the
 * name and loop columns wname and wloop wide. The rates are returned per
 * loop; returns whether any loop ran. */
static int table(const struct isa *isas, int n, int wname, int wloop, const char *unit, int threads,
                 double seconds, int ncpu, double *p1, double *s1, double *pt, double *st)
{
    char head[32], h1[32], row[128];
    snprintf(h1, sizeof h1, "1t %s", unit);
    snprintf(head, sizeof head, "%dt %s", threads, unit);
    snprintf(row, sizeof row, "%-*s %-*s", wname, "isa", wloop, "loop");
    printf("%s %12s %12s %12s %12s\n", row, h1, "sustained", head, "sustained");
    int any = 0;
    for (int k = 0; k < n; k++) {
        snprintf(row, sizeof row, "%-*s %-*s", wname, isas[k].name, wloop, isas[k].what);
        if (!isas[k].supported) {
            printf("%s %12s\n", row, "not on this CPU");
            continue;
        }
        uint64_t chunk = calibrate(isas[k].fn);
        if (measure(isas[k].fn, 1, seconds, chunk, ncpu, &p1[k], &s1[k]) < 0 ||
            (threads > 1 && measure(isas[k].fn, threads, seconds, chunk, ncpu, &pt[k], &st[k]) < 0)) {
            fprintf(stderr, "peak: cannot start threads\n");
            exit(1);
        }
        if (threads == 1)
            pt[k] = p1[k], st[k] = s1[k];
        printf("%s %12.1f %12.1f %12.1f %12.1f\n", row, p1[k], s1[k], pt[k], st[k]);
        any = 1;
    }
    return any;
}

static void usage(void)
{
    fprintf(stderr, "usage: peak [--threads T] [--seconds S]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN), threads = ncpu > 0 ? ncpu : 1;
    double seconds = 0.5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end;
        if (!strcmp(a, "--threads") && v) {
            long t = strtol(v, &end, 10);
            if (*end || t < 1 || t > 4096)
                usage();
            threads = (int)t, i++;
        } else if (!strcmp(a, "--seconds") && v) {
            seconds = strtod(v, &end);
            if (*end || !(seconds > 0) || seconds > 3600)
                usage();
            i++;
        } else
            usage();
    }
    if (ncpu < 1)
        ncpu = threads;

    struct isa isas[4], int8[4];
    int n = probe(isas), n8 = probe_int8(int8);
    double p1[4] = {0}, pt[4] = {0}, s1[4] = {0}, st[4] = {0};
    double q1[4] = {0}, qt[4] = {0}, r1[4] = {0}, rt[4] = {0};
    printf("peak FP32 FMA throughput: %d online CPUs, %.2g s per measurement\n", ncpu, seconds);
    int any = table(isas, n, 8, 30, "GFLOP/s", threads, seconds, ncpu, p1, s1, pt, st);
    if (!any)
        printf("(no SIMD FMA loop for this CPU)\n");
    int any8 = 0;
    for (int k = 0; k < n8; k++)
        any8 |= int8[k].supported;
    if (any8) {
        printf("peak INT8 dot-product throughput (u8 x s8 -> s32; GMAC/s, one MAC a multiply-add)\n");
        table(int8, n8, 15, 38, "GMAC/s", threads, seconds, ncpu, q1, r1, qt, rt);
    } else {
#if defined(__x86_64__)
        printf("peak INT8 dot-product throughput: no VNNI on this CPU\n");
#else
        printf("peak INT8 dot-product throughput: no VNNI (not x86-64)\n");
#endif
    }
    int busy = 0;
    for (int k = 0; k < n; k++)
        busy |= isas[k].supported && (s1[k] < 0.8 * p1[k] || st[k] < 0.8 * pt[k]);
    for (int k = 0; k < n8; k++)
        busy |= int8[k].supported && (r1[k] < 0.8 * q1[k] || rt[k] < 0.8 * qt[k]);
    if (busy)
        printf("(sustained well below the best slices: other processes share the CPUs)\n");
    printf("{\"threads\":%d,\"seconds\":%g", threads, seconds);
    for (int k = 0; k < n; k++)
        if (isas[k].supported)
            printf(",\"%s_gflops\":%.1f,\"%s_gflops_1t\":%.1f,\"%s_gflops_sustained\":%.1f",
                   isas[k].name, pt[k], isas[k].name, p1[k], isas[k].name, st[k]);
    for (int k = 0; k < n8; k++)
        if (int8[k].supported)
            printf(",\"%s_gmacs\":%.1f,\"%s_gmacs_1t\":%.1f,\"%s_gmacs_sustained\":%.1f",
                   int8[k].name, qt[k], int8[k].name, q1[k], int8[k].name, rt[k]);
    printf("}\n");
    return 0;
}
