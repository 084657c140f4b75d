/* TensorFlow.js layers-model reader: the weights manifest of model.json and its
 * binary shards. See tfjs.h for the contract.
 *
 * In a TF.js model, each manifest group lists shard files whose concatenation
 * holds the group's weights back to back, in manifest order, each weight
 * product(shape) * sizeof(dtype) bytes long. The manifest says nothing about
 * the size of each shard, so only the total per group can be checked exactly;
 * when it is wrong, the message names the shard that looks out of line.
 */
#include "tfjs.h"

#include <cjson/cJSON.h>

#include "tools.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Far beyond any real model; keeps the arithmetic below well inside size_t. */
#define TFJS_MAX_DIM ((int64_t)1 << 40)
#define TFJS_MAX_WEIGHTS 100000

void tfjs_free(tfjs_model *m)
{
    if (!m)
        return;
    for (int g = 0; g < m->n_groups; g++) {
        free(m->groups[g].paths);
        free(m->groups[g].data);
    }
    free(m->groups);
    free(m->weights);
    cJSON_Delete(m->root);
    free(m);
}

/* A shard path must stay inside the model's folder. */
static int path_ok(const char *p)
{
    if (!*p || p[0] == '/')
        return 0;
    for (const char *s = p; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 2 && s[0] == '.' && s[1] == '.')
            return 0;
        s += n;
        if (*s == '/')
            s++;
    }
    return 1;
}

static int parse_shape(const cJSON *shape, tfjs_weight *w, char *err, size_t errlen)
{
    if (!cJSON_IsArray(shape))
        return tool_errf(err, errlen, "weight '%s': \"shape\" is not an array", w->name);
    int n = cJSON_GetArraySize(shape);
    if (n > TFJS_MAX_DIMS)
        return tool_errf(err, errlen, "weight '%s': %d dimensions, at most %d supported", w->name, n,
                    TFJS_MAX_DIMS);
    size_t count = 1;
    int i = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, shape)
    {
        double v = cJSON_IsNumber(d) ? d->valuedouble : -1;
        if (!(v >= 0 && v <= (double)TFJS_MAX_DIM) || v != (double)(int64_t)v)
            return tool_errf(err, errlen, "weight '%s': shape dimension %d is not a valid size", w->name,
                        i);
        w->shape[i++] = (int64_t)v;
        if (v != 0 && count > SIZE_MAX / 4 / (size_t)v)
            return tool_errf(err, errlen, "weight '%s': shape too large", w->name);
        count *= (size_t)v;
    }
    w->ndim = n;
    w->count = count;
    w->nbytes = count * 4;
    return 0;
}

static int parse_weight(const cJSON *j, tfjs_weight *w, char *err, size_t errlen)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name");
    if (!cJSON_IsObject(j) || !cJSON_IsString(name) || !name->valuestring[0])
        return tool_errf(err, errlen, "a weight has no \"name\"");
    w->name = name->valuestring;
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(j, "quantization");
    if (q) {
        const cJSON *qd = cJSON_GetObjectItemCaseSensitive(q, "dtype");
        return tool_errf(err, errlen,
                    "weight '%s': quantized weights (%s) are not supported; convert the Keras "
                    "model to TF.js again without quantization",
                    w->name, cJSON_IsString(qd) ? qd->valuestring : "unknown dtype");
    }
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(j, "dtype");
    if (!cJSON_IsString(dt))
        return tool_errf(err, errlen, "weight '%s': no \"dtype\"", w->name);
    if (strcmp(dt->valuestring, "float32"))
        return tool_errf(err, errlen, "weight '%s': dtype %s is not supported, only float32", w->name,
                    dt->valuestring);
    return parse_shape(cJSON_GetObjectItemCaseSensitive(j, "shape"), w, err, errlen);
}

static int parse_group(tfjs_model *m, int g, const cJSON *j, char *err, size_t errlen)
{
    tfjs_group *grp = &m->groups[g];
    const cJSON *paths = cJSON_GetObjectItemCaseSensitive(j, "paths");
    const cJSON *weights = cJSON_GetObjectItemCaseSensitive(j, "weights");
    if (!cJSON_IsObject(j) || !cJSON_IsArray(paths) || !cJSON_IsArray(weights))
        return tool_errf(err, errlen, "weightsManifest group %d: needs \"paths\" and \"weights\" arrays",
                    g + 1);
    int np = cJSON_GetArraySize(paths);
    if (np < 1)
        return tool_errf(err, errlen, "weightsManifest group %d: no shard paths", g + 1);
    grp->paths = calloc((size_t)np, sizeof *grp->paths);
    if (!grp->paths)
        return tool_errf(err, errlen, "out of memory");
    const cJSON *p;
    cJSON_ArrayForEach(p, paths)
    {
        if (!cJSON_IsString(p) || !path_ok(p->valuestring))
            return tool_errf(err, errlen,
                        "weightsManifest group %d: shard path %d must be a relative file name "
                        "inside the model's folder",
                        g + 1, grp->n_paths + 1);
        grp->paths[grp->n_paths++] = p->valuestring;
    }
    const cJSON *wj;
    cJSON_ArrayForEach(wj, weights)
    {
        if (m->n_weights >= TFJS_MAX_WEIGHTS)
            return tool_errf(err, errlen, "more than %d weights", TFJS_MAX_WEIGHTS);
        tfjs_weight *w = &m->weights[m->n_weights];
        if (parse_weight(wj, w, err, errlen) < 0)
            return -1;
        if (tfjs_find(m, w->name))
            return tool_errf(err, errlen, "weight '%s' appears twice in the manifest", w->name);
        w->group = g;
        w->offset = grp->nbytes;
        if (grp->nbytes > SIZE_MAX / 2 - w->nbytes)
            return tool_errf(err, errlen, "weightsManifest group %d: total size overflows", g + 1);
        grp->nbytes += w->nbytes;
        m->n_weights++;
    }
    return 0;
}

int tfjs_parse(const char *json, size_t len, tfjs_model **out, char *err, size_t errlen)
{
    *out = NULL;
    tfjs_model *m = calloc(1, sizeof *m);
    if (!m)
        return tool_errf(err, errlen, "out of memory");
    m->root = cJSON_ParseWithLength(json, len);
    if (!m->root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= json && at <= json + len ? (long)(at - json) : -1;
        tool_errf(err, errlen, "model.json is not valid JSON (near byte %ld)", off);
        goto out_free;
    }
    const cJSON *manifest = cJSON_GetObjectItemCaseSensitive(m->root, "weightsManifest");
    if (!cJSON_IsObject(m->root) || !cJSON_IsArray(manifest) || !cJSON_GetArraySize(manifest)) {
        tool_errf(err, errlen, "model.json has no \"weightsManifest\": not a TF.js layers model");
        goto out_free;
    }
    int ng = cJSON_GetArraySize(manifest), nw = 0;
    const cJSON *g;
    cJSON_ArrayForEach(g, manifest)
    {
        int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(g, "weights"));
        if (n > TFJS_MAX_WEIGHTS - nw) {
            tool_errf(err, errlen, "more than %d weights", TFJS_MAX_WEIGHTS);
            goto out_free;
        }
        nw += n;
    }
    m->groups = calloc((size_t)ng, sizeof *m->groups);
    m->weights = calloc((size_t)nw + 1, sizeof *m->weights);
    if (!m->groups || !m->weights) {
        tool_errf(err, errlen, "out of memory");
        goto out_free;
    }
    cJSON_ArrayForEach(g, manifest)
    {
        m->n_groups++;
        if (parse_group(m, m->n_groups - 1, g, err, errlen) < 0)
            goto out_free;
    }
    *out = m;
    return 0;

out_free:
    tfjs_free(m);
    return -1;
}

const tfjs_weight *tfjs_find(const tfjs_model *m, const char *name)
{
    for (int i = 0; i < m->n_weights; i++)
        if (!strcmp(m->weights[i].name, name))
            return &m->weights[i];
    return NULL;
}

const struct cJSON *tfjs_layers(const tfjs_model *m)
{
    const cJSON *topo = cJSON_GetObjectItemCaseSensitive(m->root, "modelTopology");
    const cJSON *mc = cJSON_GetObjectItemCaseSensitive(topo, "model_config");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(mc ? mc : topo, "config");
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(cfg, "layers");
    return cJSON_IsArray(layers) ? layers : NULL;
}

const char *tfjs_string(const tfjs_model *m, const char *key)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(m->root, key);
    return cJSON_IsString(s) ? s->valuestring : NULL;
}

static void join(char *buf, size_t n, const char *dir, const char *file)
{
    snprintf(buf, n, "%s%s%s", dir, *dir ? "/" : "", file);
}

/* Open a shard and return its size in *size; -1 and a message on error. */
static int shard_open(const char *path, int *fd, size_t *size, char *err, size_t errlen)
{
    struct stat st;
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
        return tool_errf(err, errlen, "%s: %s", path, strerror(errno));
    if (fstat(*fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        tool_errf(err, errlen, "%s: not a regular file", path);
        close(*fd);
        return -1;
    }
    *size = (size_t)st.st_size;
    return 0;
}

static int read_full(int fd, void *buf, size_t n, const char *path, char *err, size_t errlen)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return tool_errf(err, errlen, "%s: read error: %s", path, strerror(errno));
        if (r == 0)
            return tool_errf(err, errlen, "%s: file shrank while reading", path);
        got += (size_t)r;
    }
    return 0;
}

/* The group's shards do not add up to what its weights need: say which shard
 * looks wrong and which weight is the first one not (fully) covered. */
static int size_mismatch(const tfjs_model *m, int g, const size_t *sizes, size_t total,
                         const char *dir, char *err, size_t errlen)
{
    const tfjs_group *grp = &m->groups[g];
    int odd = grp->n_paths - 1;
    for (int i = 1; i < grp->n_paths - 1; i++)
        if (sizes[i] != sizes[0]) {
            odd = i;
            break;
        }
    const char *first_missing = NULL;
    for (int i = 0; i < m->n_weights; i++)
        if (m->weights[i].group == g && m->weights[i].offset + m->weights[i].nbytes > total) {
            first_missing = m->weights[i].name;
            break;
        }
    char path[4096];
    join(path, sizeof path, dir, grp->paths[odd]);
    if (total < grp->nbytes)
        return tool_errf(err, errlen,
                    "%s: %zu bytes; weight group %d's shards hold %zu bytes but the manifest "
                    "needs %zu: a shard is short or a shape in the manifest is wrong (the data "
                    "ends inside weight '%s')",
                    path, sizes[odd], g + 1, total, grp->nbytes,
                    first_missing ? first_missing : "?");
    return tool_errf(err, errlen,
                "%s: %zu bytes; weight group %d's shards hold %zu bytes but the manifest "
                "needs only %zu: shapes in the manifest do not match the shards",
                path, sizes[odd], g + 1, total, grp->nbytes);
}

static int load_group(tfjs_model *m, int g, const char *dir, char *err, size_t errlen)
{
    tfjs_group *grp = &m->groups[g];
    char path[4096];
    size_t *sizes = calloc((size_t)grp->n_paths, sizeof *sizes);
    size_t total = 0;
    int fd, rc = -1;
    if (!sizes)
        return tool_errf(err, errlen, "out of memory");
    for (int i = 0; i < grp->n_paths; i++) {
        join(path, sizeof path, dir, grp->paths[i]);
        if (shard_open(path, &fd, &sizes[i], err, errlen) < 0)
            goto out_free_sizes;
        close(fd);
        if (sizes[i] > SIZE_MAX / 2 - total) {
            tool_errf(err, errlen, "%s: too large", path);
            goto out_free_sizes;
        }
        total += sizes[i];
    }
    if (total != grp->nbytes) {
        size_mismatch(m, g, sizes, total, dir, err, errlen);
        goto out_free_sizes;
    }
    grp->data = malloc(total ? total : 1);
    if (!grp->data) {
        tool_errf(err, errlen, "out of memory for %zu bytes of weights", total);
        goto out_free_sizes;
    }
    size_t off = 0;
    for (int i = 0; i < grp->n_paths; i++) {
        size_t now;
        join(path, sizeof path, dir, grp->paths[i]);
        if (shard_open(path, &fd, &now, err, errlen) < 0)
            goto out_free_sizes;
        if (now != sizes[i]) {
            close(fd);
            tool_errf(err, errlen, "%s: changed size while reading", path);
            goto out_free_sizes;
        }
        int r = read_full(fd, (char *)grp->data + off, now, path, err, errlen);
        close(fd);
        if (r < 0)
            goto out_free_sizes;
        off += now;
    }
    rc = 0;
out_free_sizes:
    free(sizes);
    if (rc < 0) {
        free(grp->data);
        grp->data = NULL;
    }
    return rc;
}

int tfjs_load_shards(tfjs_model *m, const char *dir, char *err, size_t errlen)
{
    for (int g = 0; g < m->n_groups; g++) {
        if (load_group(m, g, dir, err, errlen) < 0) {
            for (int k = 0; k < g; k++) {
                free(m->groups[k].data);
                m->groups[k].data = NULL;
            }
            return -1;
        }
    }
    /* Every offset is a multiple of 4 (float32 only) and malloc aligns the groups. */
    for (int i = 0; i < m->n_weights; i++) {
        tfjs_weight *w = &m->weights[i];
        w->data = (const float *)((const char *)m->groups[w->group].data + w->offset);
    }
    return 0;
}

int tfjs_load(const char *model_json, tfjs_model **out, char *err, size_t errlen)
{
    *out = NULL;
    int fd;
    size_t len;
    if (shard_open(model_json, &fd, &len, err, errlen) < 0)
        return -1;
    char *text = malloc(len ? len : 1);
    if (!text) {
        close(fd);
        return tool_errf(err, errlen, "%s: out of memory", model_json);
    }
    int r = read_full(fd, text, len, model_json, err, errlen);
    close(fd);
    tfjs_model *m = NULL;
    char msg[1024];
    if (r == 0 && tfjs_parse(text, len, &m, msg, sizeof msg) < 0) {
        tool_errf(err, errlen, "%s: %s", model_json, msg);
        r = -1;
    }
    free(text);
    if (r < 0)
        return -1;

    char dir[4096];
    const char *slash = strrchr(model_json, '/');
    if (slash)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - model_json), model_json);
    else
        dir[0] = '\0';
    if (slash && slash == model_json)
        snprintf(dir, sizeof dir, "/");
    if (tfjs_load_shards(m, dir, err, errlen) < 0) {
        tfjs_free(m);
        return -1;
    }
    *out = m;
    return 0;
}
