/* resnetd's configuration: flags, their RESNETD_* environment twins, defaults
 * and validation. Filled once in main() before any thread starts, then read-only. */
#ifndef RESNETD_CONFIG_H
#define RESNETD_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#define CFG_MAX_MODELS 16

struct cfg_model {
    char name[64];   /* from NAME=PATH, or the file's stem */
    char path[4096];
    char labels[4096]; /* --labels: a class-names file, or "" (the model's own) */
};

enum log_format { LOG_TEXT = 0, LOG_JSON = 1 };

struct config {
    struct cfg_model models[CFG_MAX_MODELS]; /* the first is the default */
    int n_models;
    char model_dir[4096];  /* --model-dir: serve the weights files found there
                              (models.c scans it at start and on SIGHUP), or "";
                              then models is empty */
    char model_name[64];   /* --model-name: the name of the one model, or "" */
    struct cfg_model labels[CFG_MAX_MODELS]; /* --labels [NAME=]FILE as given (name "":
                                                the default model), until resolved */
    int n_labels;
    char listen_host[256]; /* numeric IPv4 or IPv6 address */
    int listen_port;
    int threads;           /* BLAS threads per worker */
    int workers;           /* inference workers, each with its own contexts */
    int lone_threads;      /* threads of a batch that is the only work (> threads: lent) */
    int http_threads;      /* libmicrohttpd polling threads */
    int max_batch;
    int max_delay_us;
    int max_queue;         /* images */
    int64_t max_body_bytes;
    int64_t max_pixels;
    int request_timeout_ms;
    int max_connections;
    int max_connections_per_ip; /* 0: no limit */
    int connection_timeout_s;
    char api_keys[4096];   /* --api-keys FILE, or "": every route open */
    int log_format;        /* enum log_format */
    int precision;         /* enum rn_precision (resnet.h), for every model loaded */
    char tls_cert[4096];   /* --tls-cert: PEM chain, "" without TLS */
    char tls_key[4096];    /* --tls-key: its private key */
};

/* Parse argv over the RESNETD_* environment over the defaults into cfg.
 * Returns 0 when the server should run, 1 when --help/--version was printed
 * (exit 0), -1 on an invalid setting with a message in err (exit 2).
 * ncpu is the number of usable cores (workers x threads default to it). */
int config_parse(struct config *cfg, int argc, char **argv, int ncpu, char *err,
                 size_t errlen);

/* The --help text. */
void config_usage(FILE *f);

/* Split "NAME=PATH" or "PATH" into m (name defaults to the file's stem).
 * Returns 0, or -1 with a message. */
int config_parse_model(const char *arg, struct cfg_model *m, char *err, size_t errlen);

/* Parse "HOST:PORT", "[V6]:PORT" or ":PORT". Returns 0, or -1 with a message. */
int config_parse_listen(const char *arg, char *host, size_t hostlen, int *port,
                        char *err, size_t errlen);

#endif
