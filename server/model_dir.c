/* --model-dir: which models a folder holds. Only file names are read here;
 * models.c loads the files (and skips those that do not load), at start and
 * again on every SIGHUP, so a file added, removed or replaced is served, gone
 * or served anew after the next one. */
#include "model_dir.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

static const char *const exts[] = {".safetensors", ".pth", ".pt", ".onnx"};

/* Whether file is named like weights: one of exts, after at least one character. */
static int is_weights(const char *file)
{
    size_t n = strlen(file);
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        size_t e = strlen(exts[i]);
        if (n > e && strcmp(file + n - e, exts[i]) == 0)
            return 1;
    }
    return 0;
}

struct scan {
    struct cfg_model *out;
    int max, n;
};

/* path (a weights file) as the next model, named by its stem. */
static void add(struct scan *sc, const char *path)
{
    struct cfg_model m = {0};
    char err[512];
    if (config_parse_model(path, &m, err, sizeof err) < 0) {
        log_msg("warn", "model-dir: skipping %s: %s", path, err + strlen("--model "));
        return;
    }
    for (int i = 0; i < sc->n; i++)
        if (strcmp(sc->out[i].name, m.name) == 0) {
            log_msg("warn", "model-dir: skipping %s: model %s is %s already", path, m.name,
                    sc->out[i].path);
            return;
        }
    if (sc->n == sc->max) {
        log_msg("warn", "model-dir: skipping %s: %d models at most", path, sc->max);
        return;
    }
    sc->out[sc->n++] = m;
}

/* The weights files of dir, and when depth is 0, of its folders. */
static int scan_dir(struct scan *sc, const char *dir, int depth, char *err, size_t errlen)
{
    struct dirent **list;
    int n = scandir(dir, &list, NULL, alphasort);
    if (n < 0) {
        snprintf(err, errlen, "--model-dir %s: %s", dir, strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const char *f = list[i]->d_name;
        char path[4096];
        struct stat st;
        if (f[0] == '.' || snprintf(path, sizeof path, "%s/%s", dir, f) >= (int)sizeof path ||
            stat(path, &st) < 0)
            continue; /* hidden, or a dangling link: nothing to serve */
        if (S_ISREG(st.st_mode) && is_weights(f))
            add(sc, path);
        else if (S_ISDIR(st.st_mode) && depth == 0)
            scan_dir(sc, path, 1, err, errlen); /* unreadable: nothing of it served */
    }
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
    return 0;
}

int model_dir_scan(const char *dir, const char *name, struct cfg_model *out, int max,
                   char *err, size_t errlen)
{
    struct scan sc = {out, max, 0};
    if (scan_dir(&sc, dir, 0, err, errlen) < 0)
        return -1;
    if (name[0] && sc.n > 1) {
        snprintf(err, errlen, "--model-name %s names one model, and --model-dir %s holds %d "
                 "weights files (%s, %s%s)", name, dir, sc.n, out[0].path, out[1].path,
                 sc.n > 2 ? ", ..." : "");
        return -1;
    }
    if (name[0] && sc.n == 1)
        snprintf(out[0].name, sizeof out[0].name, "%s", name);
    return sc.n;
}
