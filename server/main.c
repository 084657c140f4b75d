/* resnetd: serve ResNet image classifiers over HTTP.
 *
 * Start-up: parse flags (exit 2 on a bad one), load and warm up every model
 * (exit 2 if one cannot be loaded), start the workers, then bind. The main
 * thread then only waits for signals, which every other thread blocks:
 * SIGTERM/SIGINT stop accepting, report not ready, finish the queued work and
 * exit 0; a second one exits at once. SIGHUP reloads the API keys, the TLS
 * certificate and the models. */
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "batcher.h"
#include "budget.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "models.h"
#include "notify.h"
#include "routes.h"
#include "tls.h"

static int usable_cores(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static void library_log(int level, const char *msg, void *user)
{
    log_msg(level <= RN_LOG_ERROR ? "error" : level == RN_LOG_WARN ? "warn" : "info", "%s", msg);
}

/* One line per model served. The precision is the one it runs in, which
 * with --precision bf16 may be FP32: the line then says so, after the
 * library's warning that says why. */
static void log_models(const struct config *cfg)
{
    for (int i = 0; i < models_count(); i++) {
        struct model *m = models_acquire_index(i);
        if (!m)
            continue;
        const char *runs = models_precision_name(m->info->precision);
        char prec[160];
        if (m->info->precision == RN_PRECISION_INT8) /* the file says so, not the flag */
            snprintf(prec, sizeof prec, "%s (a quantized model)", runs);
        else if (m->info->precision != cfg->precision)
            snprintf(prec, sizeof prec,
                     "%s (%s requested: not available for this model here, see the warning before)",
                     runs, models_precision_name(cfg->precision));
        else
            snprintf(prec, sizeof prec, "%s", runs);
        log_msg("info", "model %s: %s, %d classes, input 3x%dx%d, precision %s, kernels %s, %s%s",
                m->name, m->info->arch, m->info->n_classes, m->pp->crop, m->pp->crop, prec,
                rn_isa_name(m->info->isa), m->path, i == 0 ? " (default)" : "");
        model_release(m);
    }
}

/* Wait for work in flight to end while watching for a second signal. */
static void drain(struct server *srv, const sigset_t *sigs, int budget_ms)
{
    struct timespec tick = {0, 100 * 1000000};
    for (int waited = 0; waited < budget_ms; waited += 100) {
        if (http_wait_idle(srv, 0) == 0 && batcher_depth(srv->batcher) == 0)
            return;
        int sig = sigtimedwait(sigs, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT) {
            log_msg("warn", "second signal (%s): exiting now", strsignal(sig));
            _exit(128 + sig);
        }
    }
    log_msg("warn", "requests still in flight after %d ms; stopping anyway", budget_ms);
    batcher_wait_idle(srv->batcher, 60000);
}

/* SIGHUP: read the certificate and key again; handshakes under way finish
 * with the old pair. A bad new pair leaves the old one served. */
static void reload_tls(void)
{
    char err[1024], cur[640];
    if (tls_reload(err, sizeof err) < 0)
        log_msg("error", "TLS reload failed, still serving the previous certificate (%s): %s",
                tls_current_describe(cur, sizeof cur), err);
    else
        log_msg("info", "TLS certificate reloaded: %s", tls_current_describe(cur, sizeof cur));
}

/* SIGHUP: load every model again beside the old ones and swap them in; on
 * failure keep serving the old ones. */
static void reload(const struct config *cfg)
{
    char err[1024];
    notify_reloading();
    if (cfg->tls_cert[0])
        reload_tls(); /* first: a moment, where the models may take seconds */
    if (cfg->model_dir[0])
        log_msg("info", "SIGHUP: reloading the models of %s", cfg->model_dir);
    else
        log_msg("info", "SIGHUP: reloading %d model%s", cfg->n_models,
                cfg->n_models > 1 ? "s" : "");
    if (models_reload(cfg, err, sizeof err) < 0) {
        log_msg("error", "reload failed, still serving the previous models: %s", err);
        notify_status("reload failed, serving the previous models: %s", err);
    } else {
        log_models(cfg); /* the files may have changed: what runs now */
        log_msg("info", "reload done");
        notify_status("serving %d model%s, reloaded", models_count(),
                      models_count() > 1 ? "s" : "");
    }
    notify_ready(); /* the reload is over, whichever way it went */
}

/* --api-keys at start: refused keys stop the daemon (exit 2), as a bad
 * flag does. Without keys on an address others can reach, anyone may use
 * every route: said once. */
static int load_keys(const struct config *cfg, char *err, size_t errlen)
{
    if (auth_load(cfg->api_keys, err, errlen) < 0)
        return -1;
    if (cfg->api_keys[0]) {
        log_msg("info", "API keys from %s: %s", cfg->api_keys, auth_summary());
    } else if (strcmp(cfg->listen_host, "::1") != 0 &&
               strncmp(cfg->listen_host, "127.", 4) != 0) {
        log_msg("warn", "listening on %s without API keys: anyone who can reach it may use "
                "every route (see --api-keys)", cfg->listen_host);
    }
    return 0;
}

/* SIGHUP: the key file again; a bad one leaves the keys in force as they
 * were. */
static void reload_keys(const struct config *cfg)
{
    char err[1024];
    if (!cfg->api_keys[0])
        return;
    if (auth_load(cfg->api_keys, err, sizeof err) < 0)
        log_msg("error", "API keys not reloaded, the previous ones stay in force: %s", err);
    else
        log_msg("info", "API keys reloaded from %s: %s", cfg->api_keys, auth_summary());
}

/* The watchdog's question: are the workers making progress? No worker may
 * sit in one batch for half the watchdog period. */
static int workers_alive(void *arg)
{
    const struct server *srv = arg;
    int64_t half_ns = (int64_t)(notify_watchdog_usec() / 2 * 1000);
    return batcher_busiest_ns(srv->batcher) < half_ns;
}

int main(int argc, char **argv)
{
    static struct config cfg;
    char err[1024];
    int rc = config_parse(&cfg, argc, argv, usable_cores(), err, sizeof err);
    if (rc > 0)
        return 0;
    if (rc < 0) {
        fprintf(stderr, "resnetd: %s\n", err);
        return 2;
    }
    log_init(cfg.log_format);
    const char *model_names[CFG_MAX_MODELS];
    for (int i = 0; i < cfg.n_models; i++)
        model_names[i] = cfg.models[i].name;
    metrics_init(model_names, cfg.n_models);
    metrics_queue_capacity(cfg.max_queue);

    /* Every thread created from here on inherits the blocked set; only the
     * main thread takes these signals, synchronously. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* The keys before the models: a bad key file is refused at once. */
    if (load_keys(&cfg, err, sizeof err) < 0) {
        log_msg("error", "%s", err);
        return 2;
    }
    /* So is a bad certificate, not after seconds of loading and warming up. */
    if (cfg.tls_cert[0] && tls_init(cfg.tls_cert, cfg.tls_key, err, sizeof err) < 0) {
        log_msg("error", "%s", err);
        return 2;
    }
    rn_set_log(library_log, NULL, RN_LOG_INFO);
    char what[4200];
    if (cfg.model_dir[0])
        snprintf(what, sizeof what, "the models of %s", cfg.model_dir);
    else
        snprintf(what, sizeof what, "%d model%s", cfg.n_models, cfg.n_models > 1 ? "s" : "");
    log_msg("info", "loading %s, %d worker%s x %d thread%s, a lone batch on %d",
            what, cfg.workers, cfg.workers > 1 ? "s" : "",
            cfg.threads, cfg.threads > 1 ? "s" : "", cfg.lone_threads);
    notify_status("loading and warming up %s", what);
    /* A start that fails undoes what it did, in reverse: exit 2 for what
     * the configuration asked (models, memory budget), 1 for the rest. */
    int fail = 2;
    static struct server srv;
    srv.cfg = &cfg;
    if (models_init(&cfg, err, sizeof err) < 0)
        goto fail_tls;
    if (budget_check(&cfg, 0, err, sizeof err) < 0)
        goto fail_models;
    fail = 1;
    struct batcher_params bp = {cfg.workers, cfg.max_batch, cfg.max_delay_us, cfg.max_queue,
                                cfg.max_pixels, cfg.lone_threads > cfg.threads};
    if (batcher_start(&bp, &srv.batcher, err, sizeof err) < 0)
        goto fail_models;
    if (http_start(&srv, &routes_table, err, sizeof err) < 0)
        goto fail_batcher;
    log_models(&cfg);
    if (cfg.tls_cert[0]) {
        char cur[640];
        log_msg("info", "TLS 1.2 and 1.3, certificate %s", tls_current_describe(cur, sizeof cur));
    }
    log_msg("info", "ready on http%s://%s%s%s:%d (BLAS core %s)", cfg.tls_cert[0] ? "s" : "",
            strchr(cfg.listen_host, ':') ? "[" : "", cfg.listen_host,
            strchr(cfg.listen_host, ':') ? "]" : "", cfg.listen_port, rn_blas_corename());
    notify_status("serving %d model%s on %s:%d", models_count(), models_count() > 1 ? "s" : "",
                  cfg.listen_host, cfg.listen_port);
    if (notify_ready() < 0)
        log_msg("warn", "cannot tell systemd we are ready (NOTIFY_SOCKET)");
    if (notify_watchdog_start(workers_alive, &srv) < 0)
        log_msg("warn", "cannot start the systemd watchdog thread");

    for (;;) {
        int sig = sigwaitinfo(&sigs, NULL);
        if (sig == SIGTERM || sig == SIGINT) {
            log_msg("info", "%s: stopping; finishing queued work", strsignal(sig));
            notify_stopping();
            notify_status("stopping: finishing the queued work");
            break;
        }
        if (sig == SIGHUP) {
            reload_keys(&cfg);
            reload(&cfg);
        }
    }
    http_quiesce(&srv);
    drain(&srv, &sigs, cfg.request_timeout_ms + cfg.connection_timeout_s * 1000);
    http_stop(&srv);
    tls_shutdown(); /* every connection is closed: the last references are gone */
    notify_watchdog_stop(); /* before the batcher it asks about is freed */
    batcher_stop(srv.batcher);
    models_shutdown();
    auth_shutdown();
    log_msg("info", "stopped");
    return 0;

fail_batcher:
    batcher_stop(srv.batcher);
fail_models:
    models_shutdown();
fail_tls:
    tls_shutdown();
    log_msg("error", "%s", err);
    return fail;
}
