/* Flags, their environment twins and validation. Every flag --foo-bar can also
 * be set as RESNETD_FOO_BAR in the environment (the systemd environment file);
 * the command line wins. Errors name the flag and the accepted range. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>

#include "resnet.h"

enum opt_kind {
    OPT_INT, OPT_SIZE, OPT_MODEL, OPT_LABELS, OPT_LISTEN, OPT_LOGFMT, OPT_PRECISION, OPT_HELP, OPT_VERSION,
    OPT_PATH, OPT_NAME
};

struct opt {
    const char *name;
    int kind;
    size_t off;        /* offsetof(struct config, field) for numbers */
    int64_t min, max;
    const char *arg, *help;
};

#define OFF(f) offsetof(struct config, f)

static const struct opt opts[] = {
    {"model", OPT_MODEL, 0, 0, 0, "[NAME=]PATH",
     "safetensors model to serve; repeatable, the first is the default.\n"
     "NAME defaults to the file name without extension.\n"
     "In the environment: RESNETD_MODEL, comma-separated"},
    {"model-dir", OPT_PATH, OFF(model_dir), 0, 0, "DIR",
     "serve every weights file in DIR (.safetensors, .pth, .onnx;\n"
     "also one folder deep, as KServe's storage initializer leaves\n"
     "them in /mnt/models), each named by its file name without\n"
     "extension; a file that does not load is logged and skipped.\n"
     "SIGHUP scans DIR again. Instead of --model"},
    {"model-name", OPT_NAME, OFF(model_name), 0, 0, "NAME",
     "the name of the one model served (--model-dir holding one\n"
     "file, or one --model PATH), e.g. KServe's InferenceService name"},
    {"labels", OPT_LABELS, 0, 0, 0, "[NAME=]FILE",
     "class names for model NAME (default: the first) instead of\n"
     "the file's own: a JSON array, {\"0\": name, ...} or one name\n"
     "per line; read again on SIGHUP. Repeatable; in the\n"
     "environment: RESNETD_LABELS, comma-separated"},
    {"listen", OPT_LISTEN, 0, 0, 0, "ADDR:PORT", "address to listen on (default 127.0.0.1:8080)"},
    {"workers", OPT_INT, OFF(workers), 1, 256, "N",
     "inference workers, each runs one batch at a time (default: the\n"
     "cores / --threads)"},
    {"threads", OPT_INT, OFF(threads), 1, 256, "N",
     "engine threads per worker (default: 1 up to 2 cores, 2 below 8, then 4)"},
    {"lone-threads", OPT_INT, OFF(lone_threads), 1, 256, "N",
     "engine threads of a batch that is the only work (no other worker\n"
     "busy, nothing queued): the idle workers' threads are lent to it\n"
     "(default: all the cores; --threads when --workers or --threads is given)"},
    {"http-threads", OPT_INT, OFF(http_threads), 1, 64, "N", "HTTP polling threads (default 2)"},
    {"max-batch", OPT_INT, OFF(max_batch), 1, 256, "N", "images per batch at most (default 8)"},
    {"max-delay-us", OPT_INT, OFF(max_delay_us), 0, 10000000, "US",
     "how long a worker waits for a fuller batch (default 0: never)"},
    {"max-queue", OPT_INT, OFF(max_queue), 1, 65536, "N",
     "images waiting at most; past it requests get 503 (default 64)"},
    {"max-body-bytes", OPT_SIZE, OFF(max_body_bytes), 1024, (int64_t)1 << 32, "BYTES",
     "request body limit, suffixes K M G accepted; past it 413 (default 32M)"},
    {"max-pixels", OPT_SIZE, OFF(max_pixels), 1024, (int64_t)1 << 34, "N",
     "refuse images declaring more pixels (default 40M)"},
    {"request-timeout-ms", OPT_INT, OFF(request_timeout_ms), 1, 3600000, "MS",
     "a request queued longer is answered 504 uncomputed (default 30000)"},
    {"max-connections", OPT_INT, OFF(max_connections), 1, 1000000, "N",
     "open connections at most (default 1024)"},
    {"max-connections-per-ip", OPT_INT, OFF(max_connections_per_ip), 0, 1000000, "N",
     "open connections from one client address at most; past it\n"
     "the connection is closed unanswered (default 0: no limit)"},
    {"connection-timeout-s", OPT_INT, OFF(connection_timeout_s), 1, 86400, "S",
     "idle connection timeout (default 30)"},
    {"api-keys", OPT_PATH, OFF(api_keys), 0, 0, "FILE",
     "API keys per route group: lines of GROUP KEY, GROUP one of\n"
     "infer, features, inspect, metadata, metrics; a group without\n"
     "a key stays open (default: no file, all open). Mode 600;\n"
     "read again on SIGHUP"},
    {"log-format", OPT_LOGFMT, 0, 0, 0, "text|json", "access log format on stderr (default text)"},
    {"precision", OPT_PRECISION, 0, 0, 0, "fp32|bf16",
     "arithmetic of every model (default fp32); bf16 needs a CPU\n"
     "with avx512_bf16, else the model runs in fp32 (logged)"},
    {"tls-cert", OPT_PATH, OFF(tls_cert), 0, 0, "FILE",
     "serve HTTPS (TLS 1.2 and 1.3) with this PEM certificate chain:\n"
     "the server's certificate first, then its intermediates; read\n"
     "again on SIGHUP. Needs --tls-key"},
    {"tls-key", OPT_PATH, OFF(tls_key), 0, 0, "FILE",
     "the unencrypted PEM private key of --tls-cert"},
    {"help", OPT_HELP, 0, 0, 0, NULL, "print this help and exit"},
    {"version", OPT_VERSION, 0, 0, 0, NULL, "print the version and exit"},
};

#define N_OPTS (sizeof opts / sizeof opts[0])

void config_usage(FILE *f)
{
    fprintf(f, "usage: resnetd --model [NAME=]PATH... | --model-dir DIR [options]\n\n"
               "Serve ResNet image classifiers over HTTP (see README).\n\noptions:\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", opts[i].name, opts[i].arg ? " " : "",
                 opts[i].arg ? opts[i].arg : "");
        fprintf(f, "  %-28s ", left);
        for (const char *p = opts[i].help; *p; p++) {
            fputc(*p, f);
            if (*p == '\n')
                fprintf(f, "  %-28s ", "");
        }
        fputc('\n', f);
    }
    fprintf(f, "\nEvery option can also be set in the environment as RESNETD_<NAME>,\n"
               "e.g. RESNETD_MAX_BATCH=16; the command line wins.\n");
}

static int parse_i64(const char *s, int allow_suffix, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s)
        return -1;
    if (allow_suffix && *end) {
        int shift = 0;
        switch (*end) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        default: return -1;
        }
        end++;
        if (v < 0 || v > (LLONG_MAX >> shift))
            return -1;
        v <<= shift;
    }
    if (*end)
        return -1;
    *out = v;
    return 0;
}

int config_parse_model(const char *arg, struct cfg_model *m, char *err, size_t errlen)
{
    const char *eq = strchr(arg, '=');
    const char *path = eq ? eq + 1 : arg;
    if (!*path) {
        snprintf(err, errlen, "--model %s: empty path", arg);
        return -1;
    }
    if (strlen(path) >= sizeof m->path) {
        snprintf(err, errlen, "--model: path too long");
        return -1;
    }
    const char *name = path;
    size_t nlen;
    if (eq) {
        name = arg;
        nlen = (size_t)(eq - arg);
    } else {
        const char *slash = strrchr(path, '/');
        name = slash ? slash + 1 : path;
        const char *dot = strrchr(name, '.');
        nlen = dot && dot != name ? (size_t)(dot - name) : strlen(name);
    }
    if (nlen == 0 || nlen >= sizeof m->name) {
        snprintf(err, errlen, "--model %s: model name must be 1 to %zu characters", arg,
                 sizeof m->name - 1);
        return -1;
    }
    for (size_t i = 0; i < nlen; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.')) {
            snprintf(err, errlen,
                     "--model %s: model name may hold only letters, digits, '-', '_' and '.'",
                     arg);
            return -1;
        }
    }
    memcpy(m->name, name, nlen);
    m->name[nlen] = '\0';
    snprintf(m->path, sizeof m->path, "%s", path);
    return 0;
}

int config_parse_listen(const char *arg, char *host, size_t hostlen, int *port, char *err,
                        size_t errlen)
{
    const char *colon = strrchr(arg, ':');
    if (!colon) {
        snprintf(err, errlen, "--listen %s: expected ADDR:PORT, e.g. 127.0.0.1:8080", arg);
        return -1;
    }
    const char *h = arg;
    size_t hl = (size_t)(colon - arg);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl == 0) {
        h = "0.0.0.0";
        hl = strlen(h);
    }
    if (hl >= hostlen) {
        snprintf(err, errlen, "--listen %s: address too long", arg);
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    unsigned char buf[16];
    if (inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1) {
        snprintf(err, errlen, "--listen %s: '%s' is not a numeric IPv4 or IPv6 address", arg,
                 host);
        return -1;
    }
    int64_t p;
    if (parse_i64(colon + 1, 0, &p) < 0 || p < 1 || p > 65535) {
        snprintf(err, errlen, "--listen %s: port must be 1..65535", arg);
        return -1;
    }
    *port = (int)p;
    return 0;
}

static int add_model(struct config *cfg, const char *arg, char *err, size_t errlen)
{
    if (cfg->n_models == CFG_MAX_MODELS) {
        snprintf(err, errlen, "--model: at most %d models", CFG_MAX_MODELS);
        return -1;
    }
    struct cfg_model *m = &cfg->models[cfg->n_models];
    if (config_parse_model(arg, m, err, errlen) < 0)
        return -1;
    for (int i = 0; i < cfg->n_models; i++)
        if (strcmp(cfg->models[i].name, m->name) == 0) {
            snprintf(err, errlen, "--model %s: a model named '%s' is already given; use NAME=PATH",
                     arg, m->name);
            return -1;
        }
    cfg->n_models++;
    return 0;
}

/* --labels [NAME=]FILE, kept until every model is known (resolve_labels). */
static int add_labels(struct config *cfg, const char *arg, char *err, size_t errlen)
{
    if (cfg->n_labels == CFG_MAX_MODELS) {
        snprintf(err, errlen, "--labels: at most %d", CFG_MAX_MODELS);
        return -1;
    }
    struct cfg_model *l = &cfg->labels[cfg->n_labels];
    const char *eq = strchr(arg, '=');
    /* NAME=FILE, unless what precedes '=' could not be a model name (a path) */
    if (eq && memchr(arg, '/', (size_t)(eq - arg)) == NULL) {
        if (config_parse_model(arg, l, err, errlen) < 0) {
            char msg[512];
            snprintf(msg, sizeof msg, "--labels%s", err + strlen("--model"));
            snprintf(err, errlen, "%s", msg);
            return -1;
        }
    } else {
        if (!*arg || strlen(arg) >= sizeof l->path) {
            snprintf(err, errlen, "--labels '%.200s': expected [NAME=]FILE", arg);
            return -1;
        }
        l->name[0] = '\0';
        snprintf(l->path, sizeof l->path, "%s", arg);
    }
    cfg->n_labels++;
    return 0;
}

/* Each --labels to its model: by name, or the default model. */
static int resolve_labels(struct config *cfg, char *err, size_t errlen)
{
    for (int i = 0; i < cfg->n_labels; i++) {
        const struct cfg_model *l = &cfg->labels[i];
        int k = l->name[0] ? -1 : 0;
        for (int j = 0; k < 0 && j < cfg->n_models; j++)
            if (!strcmp(cfg->models[j].name, l->name))
                k = j;
        if (k < 0) {
            snprintf(err, errlen, "--labels %s=%s: no model named '%s' (--model NAME=PATH)",
                     l->name, l->path, l->name);
            return -1;
        }
        if (cfg->models[k].labels[0]) {
            snprintf(err, errlen, "--labels %s: model '%s' has labels already (%s)", l->path,
                     cfg->models[k].name, cfg->models[k].labels);
            return -1;
        }
        /* both fields of cfg: no snprintf from one into the other (-Wrestrict) */
        memcpy(cfg->models[k].labels, l->path, sizeof cfg->models[k].labels);
    }
    return 0;
}

/* Apply one option value; src is "--name" or "RESNETD_NAME" for messages. */
static int apply(struct config *cfg, const struct opt *o, const char *src, const char *val,
                 char *err, size_t errlen)
{
    switch (o->kind) {
    case OPT_INT:
    case OPT_SIZE: {
        int64_t v;
        if (parse_i64(val, o->kind == OPT_SIZE, &v) < 0 || v < o->min || v > o->max) {
            snprintf(err, errlen, "%s %s: expected %s from %lld to %lld", src, val,
                     o->kind == OPT_SIZE ? "a size" : "an integer", (long long)o->min,
                     (long long)o->max);
            return -1;
        }
        if (o->kind == OPT_INT)
            *(int *)((char *)cfg + o->off) = (int)v;
        else
            *(int64_t *)((char *)cfg + o->off) = v;
        return 0;
    }
    case OPT_PATH: /* every path field has api_keys' size */
        if (strlen(val) >= sizeof cfg->api_keys) {
            snprintf(err, errlen, "%s: path longer than %zu characters", src,
                     sizeof cfg->api_keys - 1);
            return -1;
        }
        snprintf((char *)cfg + o->off, sizeof cfg->api_keys, "%s", val);
        return 0;
    case OPT_NAME: {
        struct cfg_model m;
        char arg[sizeof m.path + 8];
        snprintf(arg, sizeof arg, "%s=-", val); /* a name checked as --model's are */
        if (!*val || strchr(val, '=') || config_parse_model(arg, &m, err, errlen) < 0) {
            snprintf(err, errlen, "%s '%.80s': a model name is 1 to %zu of letters, digits, "
                     "'-', '_' and '.'", src, val, sizeof m.name - 1);
            return -1;
        }
        snprintf(cfg->model_name, sizeof cfg->model_name, "%s", m.name);
        return 0;
    }
    case OPT_MODEL:
        return add_model(cfg, val, err, errlen);
    case OPT_LABELS:
        return add_labels(cfg, val, err, errlen);
    case OPT_LISTEN:
        return config_parse_listen(val, cfg->listen_host, sizeof cfg->listen_host,
                                   &cfg->listen_port, err, errlen);
    case OPT_LOGFMT:
        if (strcmp(val, "text") == 0)
            cfg->log_format = LOG_TEXT;
        else if (strcmp(val, "json") == 0)
            cfg->log_format = LOG_JSON;
        else {
            snprintf(err, errlen, "%s %s: expected text or json", src, val);
            return -1;
        }
        return 0;
    case OPT_PRECISION:
        /* The names of `resnet bench/classify --precision`. */
        if (strcmp(val, "fp32") == 0)
            cfg->precision = RN_PRECISION_FP32;
        else if (strcmp(val, "bf16") == 0)
            cfg->precision = RN_PRECISION_BF16;
        else {
            snprintf(err, errlen, "%s %s: expected fp32 or bf16", src, val);
            return -1;
        }
        return 0;
    }
    return 0;
}

static int from_env(struct config *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < N_OPTS; i++) {
        const struct opt *o = &opts[i];
        if (o->kind == OPT_HELP || o->kind == OPT_VERSION)
            continue;
        char var[64] = "RESNETD_";
        size_t n = strlen(var);
        for (const char *p = o->name; *p && n + 1 < sizeof var; p++)
            var[n++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        var[n] = '\0';
        const char *val = getenv(var);
        if (!val || !*val)
            continue;
        if (o->kind != OPT_MODEL && o->kind != OPT_LABELS) {
            if (apply(cfg, o, var, val, err, errlen) < 0)
                return -1;
            continue;
        }
        char list[CFG_MAX_MODELS * 4200];
        snprintf(list, sizeof list, "%s", val);
        char *save = NULL;
        for (char *t = strtok_r(list, ", \t\n", &save); t; t = strtok_r(NULL, ", \t\n", &save))
            if ((o->kind == OPT_MODEL ? add_model : add_labels)(cfg, t, err, errlen) < 0)
                return -1;
    }
    return 0;
}

/* --model and --model-dir are two ways to say what to serve: one of them.
 * Given on the command line, either replaces the other from the
 * environment (env_models, env_dir: set there and not on the command line). */
static int resolve_models(struct config *cfg, int env_models, int env_dir, char *err,
                          size_t errlen)
{
    if (cfg->model_dir[0] && cfg->n_models && env_models)
        cfg->n_models = 0;
    else if (cfg->model_dir[0] && cfg->n_models && env_dir)
        cfg->model_dir[0] = '\0';
    if (cfg->model_dir[0] && cfg->n_models) {
        snprintf(err, errlen, "--model and --model-dir %s: give one of them", cfg->model_dir);
        return -1;
    }
    if (!cfg->model_dir[0] && cfg->n_models == 0) {
        snprintf(err, errlen, "no model: give --model [NAME=]PATH or --model-dir DIR "
                 "(or RESNETD_MODEL, RESNETD_MODEL_DIR)");
        return -1;
    }
    if (cfg->model_dir[0] && cfg->n_labels) {
        snprintf(err, errlen, "--labels %s: not with --model-dir, whose models are found at "
                 "run time; put the names in the file (resnet.labels)", cfg->labels[0].path);
        return -1;
    }
    if (cfg->model_name[0] && !cfg->model_dir[0]) {
        if (cfg->n_models != 1) {
            snprintf(err, errlen, "--model-name %s names one model, and %d are given: use "
                     "--model NAME=PATH", cfg->model_name, cfg->n_models);
            return -1;
        }
        snprintf(cfg->models[0].name, sizeof cfg->models[0].name, "%s", cfg->model_name);
    }
    return 0;
}

static void defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->listen_host, sizeof cfg->listen_host, "127.0.0.1");
    cfg->listen_port = 8080;
    cfg->http_threads = 2;
    cfg->max_batch = 8;
    cfg->max_delay_us = 0;
    cfg->max_queue = 64;
    cfg->max_body_bytes = (int64_t)32 << 20;
    cfg->max_pixels = 40000000;
    cfg->request_timeout_ms = 30000;
    cfg->max_connections = 1024;
    cfg->connection_timeout_s = 30;
    cfg->log_format = LOG_TEXT;
    cfg->precision = RN_PRECISION_FP32;
}

/* Workers x threads fill the cores without oversubscription. Under load few
 * threads per worker win: single-threaded GEMM is the most efficient per core
 * and one worker decodes while another multiplies. A lone request would then
 * run on a fraction of the machine, so by default a batch that is the only
 * work runs on every core (--lone-threads), the other workers standing by:
 * bench/bench-load.sh measures both ends. */
static void split_cores(struct config *cfg, int ncpu)
{
    if (ncpu < 1)
        ncpu = 1;
    if (!cfg->lone_threads)
        cfg->lone_threads = !cfg->workers && !cfg->threads ? ncpu : 0;
    if (!cfg->workers && !cfg->threads) {
        cfg->threads = ncpu <= 2 ? 1 : ncpu < 8 ? 2 : 4;
        cfg->workers = ncpu / cfg->threads > 0 ? ncpu / cfg->threads : 1;
    } else if (!cfg->threads) {
        cfg->threads = ncpu / cfg->workers > 0 ? ncpu / cfg->workers : 1;
    } else if (!cfg->workers) {
        cfg->workers = ncpu / cfg->threads > 0 ? ncpu / cfg->threads : 1;
    }
    if (cfg->lone_threads < cfg->threads)
        cfg->lone_threads = cfg->threads;
}

int config_parse(struct config *cfg, int argc, char **argv, int ncpu, char *err,
                 size_t errlen)
{
    defaults(cfg);
    if (from_env(cfg, err, errlen) < 0)
        return -1;
    int env_models = cfg->n_models, cli_models = 0, env_labels = cfg->n_labels, cli_labels = 0;
    int env_dir = cfg->model_dir[0] != '\0', cli_dir = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s' (see --help)", a);
            return -1;
        }
        const char *name = a + 2, *val = strchr(name, '=');
        size_t nlen = val ? (size_t)(val - name) : strlen(name);
        const struct opt *o = NULL;
        for (size_t k = 0; k < N_OPTS; k++)
            if (strlen(opts[k].name) == nlen && strncmp(opts[k].name, name, nlen) == 0)
                o = &opts[k];
        if (!o) {
            snprintf(err, errlen, "unknown option '%s' (see --help)", a);
            return -1;
        }
        if (o->kind == OPT_HELP) {
            config_usage(stdout);
            return 1;
        }
        if (o->kind == OPT_VERSION) {
            printf("resnetd 0.1.0\n");
            return 1;
        }
        if (val) {
            val++;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            snprintf(err, errlen, "--%s needs a value (%s)", o->name, o->arg);
            return -1;
        }
        if (o->kind == OPT_MODEL && cli_models++ == 0 && env_models) {
            cfg->n_models = 0; /* models on the command line replace the environment's */
        }
        if (o->kind == OPT_PATH && o->off == OFF(model_dir))
            cli_dir = 1;
        if (o->kind == OPT_LABELS && cli_labels++ == 0 && env_labels)
            cfg->n_labels = 0; /* and so do labels */
        char src[64];
        snprintf(src, sizeof src, "--%s", o->name);
        if (apply(cfg, o, src, val, err, errlen) < 0)
            return -1;
    }
    if (resolve_models(cfg, env_models && !cli_models, env_dir && !cli_dir, err, errlen) < 0)
        return -1;
    if (resolve_labels(cfg, err, errlen) < 0)
        return -1;
    if (!cfg->tls_cert[0] != !cfg->tls_key[0]) {
        snprintf(err, errlen, "%s given without %s: TLS needs both the certificate and its key",
                 cfg->tls_cert[0] ? "--tls-cert" : "--tls-key",
                 cfg->tls_cert[0] ? "--tls-key" : "--tls-cert");
        return -1;
    }
    split_cores(cfg, ncpu);
    if (cfg->max_batch > cfg->max_queue) {
        snprintf(err, errlen, "--max-batch %d is larger than --max-queue %d: batches could "
                 "never fill", cfg->max_batch, cfg->max_queue);
        return -1;
    }
    return 0;
}
