/* loadgen: a small closed-loop HTTP load client for resnetd's reliability
 * tests and benchmarks. C clients (threads) each send requests back to back
 * for a duration, over keep-alive connections (or a new connection per
 * request with -K), rotating through the request kinds given with -r, and
 * count every outcome: each status, 503s carrying Retry-After, connections
 * refused, and connections dropped (reset or closed before a complete reply).
 * It prints key=value lines, latencies of 200s in milliseconds.
 *
 *   cc -O2 -pthread -o loadgen bench/loadgen.c -lm
 *   loadgen -a 127.0.0.1:8080 -c 64 -d 30 -r /v1/classify,image/jpeg,dog.jpg
 *
 * -r PATH,CONTENT_TYPE,FILE   a POST of FILE's bytes (repeatable; rotated)
 * -H NAME:VALUE               an extra header for every request (repeatable)
 * -n N                        stop after N requests in all instead of -d
 * -t S                        per-request socket timeout (default 120 s) */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_KINDS 16
#define MAX_HEADERS 8

struct kind {
    char *head; /* request line and headers */
    size_t head_len;
    char *body;
    size_t body_len;
};

static struct kind kinds[MAX_KINDS];
static int n_kinds;
static const char *extra[MAX_HEADERS];
static int n_extra;
static struct sockaddr_in addr;
static char host[64];
static double duration = 10, timeout_s = 120;
static long max_requests = -1;
static int keepalive = 1;
static atomic_long issued;

struct stats {
    int id;
    long requests, status[600], retry_503, other, refused, reset, truncated;
    double *lat; /* ms of 200s */
    size_t n_lat, cap_lat;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc(n > 0 ? (size_t)n : 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static int add_kind(const char *spec)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", spec);
    char *path = buf, *ct = strchr(buf, ','), *file = NULL;
    if (!ct || !(file = strchr(ct + 1, ',')) || n_kinds == MAX_KINDS)
        return -1;
    *ct++ = '\0';
    *file++ = '\0';
    struct kind *k = &kinds[n_kinds];
    if (!(k->body = slurp(file, &k->body_len))) {
        fprintf(stderr, "loadgen: cannot read %s\n", file);
        return -1;
    }
    char h[8192];
    int n = snprintf(h, sizeof h, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\n", path, host, ct, k->body_len);
    for (int i = 0; i < n_extra; i++)
        n += snprintf(h + n, sizeof h - (size_t)n, "%s\r\n", extra[i]);
    n += snprintf(h + n, sizeof h - (size_t)n, "%s\r\n",
                  keepalive ? "" : "Connection: close\r\n");
    k->head = strdup(h);
    k->head_len = (size_t)n;
    n_kinds++;
    return 0;
}

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {(time_t)timeout_s, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

enum outcome { OUT_OK, OUT_RESET, OUT_TRUNCATED };

/* Read one response: status, whether it had Retry-After and asked to close. */
static enum outcome read_reply(int fd, int *status, int *retry, int *close_after)
{
    char buf[65536];
    size_t have = 0;
    char *eoh = NULL;
    while (!eoh) {
        if (have == sizeof buf - 1)
            return OUT_TRUNCATED;
        ssize_t k = recv(fd, buf + have, sizeof buf - 1 - have, 0);
        if (k <= 0)
            return have ? OUT_TRUNCATED : OUT_RESET;
        have += (size_t)k;
        buf[have] = '\0';
        eoh = strstr(buf, "\r\n\r\n");
    }
    *status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", status) != 1)
        return OUT_TRUNCATED;
    long clen = -1;
    *retry = 0;
    *close_after = 0;
    for (char *line = strstr(buf, "\r\n") + 2; line < eoh; line = strstr(line, "\r\n") + 2) {
        if (strncasecmp(line, "Content-Length:", 15) == 0)
            clen = strtol(line + 15, NULL, 10);
        else if (strncasecmp(line, "Retry-After:", 12) == 0)
            *retry = 1;
        else if (strncasecmp(line, "Connection:", 11) == 0 && strcasestr(line, "close") &&
                 strcasestr(line, "close") < strstr(line, "\r\n"))
            *close_after = 1;
    }
    size_t body_have = have - (size_t)(eoh + 4 - buf);
    if (clen < 0) { /* until the server closes */
        *close_after = 1;
        for (;;) {
            ssize_t k = recv(fd, buf, sizeof buf, 0);
            if (k == 0)
                return OUT_OK;
            if (k < 0)
                return OUT_TRUNCATED;
        }
    }
    while ((long)body_have < clen) {
        ssize_t k = recv(fd, buf, sizeof buf, 0);
        if (k <= 0)
            return OUT_TRUNCATED;
        body_have += (size_t)k;
    }
    return OUT_OK;
}

static void add_latency(struct stats *s, double ms)
{
    if (s->n_lat == s->cap_lat) {
        s->cap_lat = s->cap_lat ? s->cap_lat * 2 : 1024;
        s->lat = realloc(s->lat, s->cap_lat * sizeof *s->lat);
        if (!s->lat)
            abort();
    }
    s->lat[s->n_lat++] = ms;
}

static void *client(void *arg)
{
    struct stats *s = arg;
    double end = now_s() + duration;
    int fd = -1;
    int k = s->id % n_kinds; /* clients start on different kinds */
    for (;;) {
        if (max_requests >= 0 ? atomic_fetch_add(&issued, 1) >= max_requests : now_s() >= end)
            break;
        const struct kind *kd = &kinds[k++ % n_kinds];
        double t0 = now_s();
        if (fd < 0 && (fd = dial()) < 0) {
            s->requests++;
            s->refused++;
            usleep(10000);
            continue;
        }
        s->requests++;
        int status = 0, retry = 0, close_after = 0;
        enum outcome o = OUT_RESET;
        if (send_all(fd, kd->head, kd->head_len) == 0 && send_all(fd, kd->body, kd->body_len) == 0)
            o = read_reply(fd, &status, &retry, &close_after);
        else /* the server may reply early (413, 503) and close: read it */
            o = read_reply(fd, &status, &retry, &close_after);
        if (o == OUT_RESET) {
            s->reset++;
        } else if (o == OUT_TRUNCATED) {
            s->truncated++;
        } else {
            if (status > 0 && status < 600)
                s->status[status]++;
            if (status == 200)
                add_latency(s, (now_s() - t0) * 1e3);
            else if (status == 503 && retry)
                s->retry_503++;
            else if (status != 503)
                s->other++;
        }
        if (o != OUT_OK || close_after || !keepalive) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int c = 4, opt;
    const char *a = "127.0.0.1:8080";
    const char *specs[MAX_KINDS];
    int n_specs = 0;
    while ((opt = getopt(argc, argv, "a:c:d:n:r:t:H:K")) != -1) {
        switch (opt) {
        case 'a': a = optarg; break;
        case 'c': c = atoi(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'n': max_requests = atol(optarg); break;
        case 'r': if (n_specs < MAX_KINDS) specs[n_specs++] = optarg; break;
        case 't': timeout_s = atof(optarg); break;
        case 'H': if (n_extra < MAX_HEADERS) extra[n_extra++] = optarg; break;
        case 'K': keepalive = 0; break;
        default:
            fprintf(stderr, "usage: loadgen [-a HOST:PORT] [-c CLIENTS] [-d SECONDS] [-n N] "
                            "[-K] [-t TIMEOUT] [-H NAME:VALUE] -r PATH,CONTENT_TYPE,FILE...\n");
            return 2;
        }
    }
    const char *colon = strrchr(a, ':');
    if (!colon || c < 1 || n_specs == 0) {
        fprintf(stderr, "loadgen: need -a HOST:PORT, -c >= 1 and at least one -r\n");
        return 2;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - a), a);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "loadgen: %s is not a numeric IPv4 address\n", host);
        return 2;
    }
    for (int i = 0; i < n_specs; i++)
        if (add_kind(specs[i]) < 0) {
            fprintf(stderr, "loadgen: bad -r %s (PATH,CONTENT_TYPE,FILE)\n", specs[i]);
            return 2;
        }
    struct stats *st = calloc((size_t)c, sizeof *st);
    pthread_t *th = calloc((size_t)c, sizeof *th);
    double t0 = now_s();
    for (int i = 0; i < c; i++) {
        st[i].id = i;
        pthread_create(&th[i], NULL, client, &st[i]);
    }
    struct stats all = {0};
    for (int i = 0; i < c; i++) {
        pthread_join(th[i], NULL);
        all.requests += st[i].requests;
        for (int k = 0; k < 600; k++)
            all.status[k] += st[i].status[k];
        all.retry_503 += st[i].retry_503;
        all.other += st[i].other;
        all.refused += st[i].refused;
        all.reset += st[i].reset;
        all.truncated += st[i].truncated;
        for (size_t k = 0; k < st[i].n_lat; k++)
            add_latency(&all, st[i].lat[k]);
        free(st[i].lat);
    }
    double secs = now_s() - t0;
    printf("clients=%d\nseconds=%.1f\nrequests=%ld\n", c, secs, all.requests);
    for (int k = 100; k < 600; k++)
        if (all.status[k] && k != 200 && k != 503)
            printf("status_%d=%ld\n", k, all.status[k]);
    printf("status_200=%ld\nstatus_503=%ld\n", all.status[200], all.status[503]);
    printf("retry_after_503=%ld\nother=%ld\nrefused=%ld\nreset=%ld\ntruncated=%ld\n",
           all.retry_503, all.other, all.refused, all.reset, all.truncated);
    printf("dropped=%ld\n", all.reset + all.truncated);
    if (all.n_lat) {
        qsort(all.lat, all.n_lat, sizeof *all.lat, cmp_d);
        double p[] = {0.5, 0.9, 0.99};
        const char *name[] = {"p50_ms", "p90_ms", "p99_ms"};
        for (int i = 0; i < 3; i++) {
            size_t idx = (size_t)(p[i] * (double)(all.n_lat - 1) + 0.5);
            printf("%s=%.1f\n", name[i], all.lat[idx]);
        }
        printf("max_ms=%.1f\n", all.lat[all.n_lat - 1]);
    }
    printf("ok_per_s=%.1f\n", (double)all.status[200] / secs);
    free(all.lat);
    free(st);
    free(th);
    return 0;
}
