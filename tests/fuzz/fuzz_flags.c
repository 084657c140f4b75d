/* libFuzzer target: the flag parser (server/config.c). Input lines become
 * argv[1..]; lines "RESNETD_NAME=value" are set in the environment instead
 * (and unset after), so the environment twins are parsed too. Whatever the
 * input, config_parse returns -1 with a message, 1 (help/version), or 0 with
 * a configuration inside every flag's range. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int once;
    if (!once) {
        once = 1;
        if (!freopen("/dev/null", "w", stdout)) /* --help and --version print */
            abort();
    }
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    char *argv[MAX_ARGS + 2] = {"resnetd"};
    int argc = 1;
    char *envs[MAX_ARGS];
    int n_env = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && argc <= MAX_ARGS;
         line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        if (strncmp(line, "RESNETD_", 8) == 0 && eq && n_env < MAX_ARGS) {
            *eq = '\0';
            setenv(line, eq + 1, 1);
            envs[n_env++] = line;
        } else {
            argv[argc++] = line;
        }
    }
    argv[argc] = NULL;
    static struct config cfg;
    char err[1024];
    err[0] = '\0';
    int rc = config_parse(&cfg, argc, argv, 1 + (size % 64), err, sizeof err);
    if (rc < 0 && (err[0] == '\0' || strlen(err) >= sizeof err))
        abort();
    if (rc == 0) {
        /* --model-dir names no model at parse time: they are found at start */
        if ((cfg.n_models < 1 && !cfg.model_dir[0]) || cfg.n_models > CFG_MAX_MODELS ||
            (cfg.n_models > 0 && cfg.model_dir[0]) || cfg.max_batch < 1 ||
            cfg.max_batch > cfg.max_queue || cfg.workers < 1 || cfg.threads < 1 ||
            cfg.listen_port < 1 || cfg.listen_port > 65535 || cfg.max_body_bytes < 1024)
            abort();
        for (int i = 0; i < cfg.n_models; i++)
            if (!cfg.models[i].name[0] || !cfg.models[i].path[0])
                abort();
    }
    for (int i = 0; i < n_env; i++)
        unsetenv(envs[i]);
    free(text);
    return 0;
}
