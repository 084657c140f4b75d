/* bench/peak: the peak FP32 FMA throughput of this machine, the ceiling that
 * make bench-peers and bench-scaling.sh divide the engine's GFLOP/s by.
 *
 * For each SIMD width the CPU runs (AVX-512 zmm, AVX2+FMA ymm on x86-64; NEON
 * q registers on aarch64), a loop of independent FMAs (acc = acc * a + b on
 * enough accumulators to cover the FMA latency times the FMA ports) on 1
 * thread and on T threads. Each kernel is compiled with a function target
 * attribute and chosen at run time (__builtin_cpu_supports on x86-64), so the
 * binary runs on any CPU of its architecture.
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
 * Prints a table, then a last line of JSON:
 *   {"threads":2,"seconds":0.5,"avx512_gflops":232.1,"avx512_gflops_1t":116.3,...}
 * where NAME_gflops is for T threads, NAME_gflops_1t for one.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
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

    struct isa isas[4];
    int n = probe(isas);
    double p1[4] = {0}, pt[4] = {0}, s1[4] = {0}, st[4] = {0};
    printf("peak FP32 FMA throughput: %d online CPUs, %.2g s per measurement\n", ncpu, seconds);
    char head[32];
    snprintf(head, sizeof head, "%dt GFLOP/s", threads);
    printf("%-8s %-30s %12s %12s %12s %12s\n", "isa", "loop", "1t GFLOP/s", "sustained", head,
           "sustained");
    int any = 0;
    for (int k = 0; k < n; k++) {
        if (!isas[k].supported) {
            printf("%-8s %-30s %12s\n", isas[k].name, isas[k].what, "not on this CPU");
            continue;
        }
        uint64_t chunk = calibrate(isas[k].fn);
        if (measure(isas[k].fn, 1, seconds, chunk, ncpu, &p1[k], &s1[k]) < 0 ||
            (threads > 1 && measure(isas[k].fn, threads, seconds, chunk, ncpu, &pt[k], &st[k]) < 0)) {
            fprintf(stderr, "peak: cannot start threads\n");
            return 1;
        }
        if (threads == 1)
            pt[k] = p1[k], st[k] = s1[k];
        printf("%-8s %-30s %12.1f %12.1f %12.1f %12.1f\n", isas[k].name, isas[k].what, p1[k], s1[k],
               pt[k], st[k]);
        any = 1;
    }
    if (!any)
        printf("(no SIMD FMA loop for this CPU)\n");
    int busy = 0;
    for (int k = 0; k < n; k++)
        busy |= isas[k].supported && (s1[k] < 0.8 * p1[k] || st[k] < 0.8 * pt[k]);
    if (busy)
        printf("(sustained well below the best slices: other processes share the CPUs)\n");
    printf("{\"threads\":%d,\"seconds\":%g", threads, seconds);
    for (int k = 0; k < n; k++)
        if (isas[k].supported)
            printf(",\"%s_gflops\":%.1f,\"%s_gflops_1t\":%.1f,\"%s_gflops_sustained\":%.1f",
                   isas[k].name, pt[k], isas[k].name, p1[k], isas[k].name, st[k]);
    printf("}\n");
    return 0;
}
