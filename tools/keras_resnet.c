/* Keras ResNet -> torchvision ResNet: see keras_resnet.h.
 *
 * Keras names (keras 2.2.4, "caffe" ResNet-50)     torchvision names
 *   conv1, bn_conv1                                conv1, bn1
 *   res{S}{b}_branch2a/2b/2c, bn{S}{b}_branch2x     layer{S-1}.{b}.conv1/2/3, .bn1/2/3
 *   res{S}{b}_branch1, bn{S}{b}_branch1             layer{S-1}.{b}.downsample.0/.1
 *   fc1000                                         fc
 * (S = 2..5, b = a, b, c, ...; tf.keras 2.x's conv1_conv, conv{S}_block{n}_{0..3}_conv/_bn
 * and predictions are read too.) Conv kernels go HWIO -> OIHW, the dense kernel
 * [in,out] -> [out,in]. Keras convolutions have biases and torchvision's do not:
 * BN(conv(x) + c) = BN'(conv(x)) with BN's running mean lowered by c, exactly, so
 * each bias is folded into the batch norm that follows it. The batch-norm epsilon
 * and the position of the stride (v1: first 1x1; v1.5: the 3x3) are read from
 * the Keras layer configs in model.json.
 */
#include "keras_resnet.h"
#include "tools.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STAGES KERAS_MAX_STAGES
#define MAX_BLOCKS 64
#define ERRLEN 1024

enum role { STEM_CONV, STEM_BN, CONV, BN, FC };
enum scheme { KERAS2, TFKERAS };

typedef struct klayer {
    const char *name; /* the Keras layer name, a prefix of its weights' names */
    size_t name_len;
    int role, scheme;
    int stage, block, branch; /* 0-based; branch 0 is the shortcut, 1..3 the main path */
    const cJSON *cfg;         /* its Keras config from the topology */
} klayer;

typedef struct conv_slot {
    int conv, bn; /* indexes into the layer list, -1 when absent */
} conv_slot;

typedef struct plan {
    const tfjs_model *tf;
    klayer *layers;
    int n_layers;
    int scheme;
    conv_slot stem;
    int fc;
    conv_slot body[MAX_STAGES][MAX_BLOCKS][4];
    int n_stages, n_blocks[MAX_STAGES], bottleneck;
    double eps;
    const char *variant;
    int n_classes;
    char *used; /* per manifest weight */
} plan;

/* The Keras name of a layer in a naming scheme, for messages. */
static void keras_name(int scheme, int role, int stage, int block, int branch, char *buf, size_t n)
{
    static const char *k2_branch[] = {"1", "2a", "2b", "2c"};
    int bn = role == BN || role == STEM_BN;
    if (role == FC)
        snprintf(buf, n, "%s", scheme == KERAS2 ? "fc1000" : "predictions");
    else if (role == STEM_CONV || role == STEM_BN)
        snprintf(buf, n, "%s",
                 scheme == KERAS2 ? (bn ? "bn_conv1" : "conv1") : (bn ? "conv1_bn" : "conv1_conv"));
    else if (scheme == KERAS2)
        snprintf(buf, n, "%s%d%c_branch%s", bn ? "bn" : "res", stage + 2, 'a' + block,
                 k2_branch[branch]);
    else
        snprintf(buf, n, "conv%d_block%d_%d_%s", stage + 2, block + 1, branch, bn ? "bn" : "conv");
}

/* Classify a Keras layer name; -1 when it is not a ResNet layer name. */
static int parse_name(const char *name, klayer *k)
{
    static const struct {
        const char *name;
        int role, scheme;
    } fixed[] = {{"conv1", STEM_CONV, KERAS2},   {"bn_conv1", STEM_BN, KERAS2},
                 {"fc1000", FC, KERAS2},         {"conv1_conv", STEM_CONV, TFKERAS},
                 {"conv1_bn", STEM_BN, TFKERAS}, {"predictions", FC, TFKERAS}};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (!strcmp(name, fixed[i].name)) {
            k->role = fixed[i].role;
            k->scheme = fixed[i].scheme;
            return 0;
        }
    int stage = 0, block = -1, branch = -1;
    char letter = 0, br[3] = "", kind[5] = "", again[64];
    if (sscanf(name, "res%1d%c_branch%2[12abc]", &stage, &letter, br) == 3 ||
        sscanf(name, "bn%1d%c_branch%2[12abc]", &stage, &letter, br) == 3) {
        k->scheme = KERAS2;
        k->role = name[0] == 'b' ? BN : CONV;
        block = letter - 'a';
        branch = !strcmp(br, "1") ? 0 : br[0] == '2' && br[1] >= 'a' ? br[1] - 'a' + 1 : -1;
    } else if (sscanf(name, "conv%1d_block%d_%1d_%4[a-z]", &stage, &block, &branch, kind) == 4) {
        k->scheme = TFKERAS;
        k->role = !strcmp(kind, "bn") ? BN : CONV;
        block -= 1;
    } else {
        return -1;
    }
    k->stage = stage - 2;
    k->block = block;
    k->branch = branch;
    if (k->stage < 0 || k->stage >= MAX_STAGES || block < 0 || block >= MAX_BLOCKS || branch < 0 ||
        branch > 3)
        return -1;
    keras_name(k->scheme, k->role, k->stage, block, branch, again, sizeof again);
    return strcmp(again, name) ? -1 : 0;
}

static const cJSON *layer_config(const tfjs_model *tf, const char *name, const char **cls)
{
    const cJSON *l;
    cJSON_ArrayForEach(l, tfjs_layers(tf))
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(l, "name");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(l, "config");
        const cJSON *cn = cJSON_GetObjectItemCaseSensitive(l, "class_name");
        if (!cJSON_IsString(n) || !c)
            n = cJSON_GetObjectItemCaseSensitive(c, "name");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, name)) {
            *cls = cJSON_IsString(cn) ? cn->valuestring : "";
            return c;
        }
    }
    return NULL;
}

/* Collect the layers that own weights and place them in the plan's slots. */
static int collect_layers(plan *p, char *err)
{
    const tfjs_model *tf = p->tf;
    static const char *want_class[] = {"Conv2D", "BatchNormalization", "Conv2D",
                                       "BatchNormalization", "Dense"};
    p->stem.conv = p->stem.bn = p->fc = -1;
    memset(p->body, 0xff, sizeof p->body); /* every index -1 */
    for (int i = 0; i < tf->n_weights; i++) {
        const char *wn = tf->weights[i].name, *slash = strrchr(wn, '/');
        size_t len = slash ? (size_t)(slash - wn) : strlen(wn);
        int seen = 0;
        for (int j = 0; j < p->n_layers && !seen; j++)
            seen = p->layers[j].name_len == len && !strncmp(p->layers[j].name, wn, len);
        if (seen)
            continue;
        char name[128];
        klayer *k = &p->layers[p->n_layers];
        snprintf(name, sizeof name, "%.*s", (int)len, wn);
        if (!slash || len >= sizeof name || parse_name(name, k) < 0)
            return tool_errf(err, ERRLEN, "weight '%s': unknown layer '%s', not a Keras ResNet layer name", wn,
                        name);
        k->name = wn;
        k->name_len = len;
        if (p->n_layers == 0)
            p->scheme = k->scheme;
        else if (k->scheme != p->scheme)
            return tool_errf(err, ERRLEN, "layer '%s': mixes two Keras naming schemes", name);
        const char *cls = NULL;
        k->cfg = layer_config(tf, name, &cls);
        if (!k->cfg)
            return tool_errf(err, ERRLEN, "layer '%s': has weights but is not in the model topology", name);
        if (strcmp(cls, want_class[k->role]))
            return tool_errf(err, ERRLEN, "layer '%s': is a %s, expected %s", name, cls, want_class[k->role]);
        int idx = p->n_layers++;
        int *slot = k->role == STEM_CONV ? &p->stem.conv
                    : k->role == STEM_BN ? &p->stem.bn
                    : k->role == FC      ? &p->fc
                    : k->role == CONV    ? &p->body[k->stage][k->block][k->branch].conv
                                         : &p->body[k->stage][k->block][k->branch].bn;
        *slot = idx;
    }
    return 0;
}

static int missing(const plan *p, int role, int stage, int block, int branch, char *err)
{
    char name[64];
    keras_name(p->scheme, role, stage, block, branch, name, sizeof name);
    return tool_errf(err, ERRLEN, "missing layer '%s'", name);
}

/* Check the block structure: contiguous stages and blocks, every convolution
 * with its batch norm, the same kind of block everywhere. */
static int check_structure(plan *p, char *err)
{
    if (p->stem.conv < 0)
        return missing(p, STEM_CONV, 0, 0, 0, err);
    if (p->stem.bn < 0)
        return missing(p, STEM_BN, 0, 0, 0, err);
    if (p->fc < 0)
        return missing(p, FC, 0, 0, 0, err);
    for (int s = 0; s < MAX_STAGES; s++)
        for (int b = 0; b < MAX_BLOCKS; b++)
            for (int r = 0; r < 4; r++)
                if (p->body[s][b][r].conv >= 0 || p->body[s][b][r].bn >= 0) {
                    p->n_stages = s + 1 > p->n_stages ? s + 1 : p->n_stages;
                    p->n_blocks[s] = b + 1 > p->n_blocks[s] ? b + 1 : p->n_blocks[s];
                }
    if (p->n_stages == 0)
        return missing(p, CONV, 0, 0, 1, err);
    p->bottleneck = p->body[0][0][3].conv >= 0 || p->body[0][0][3].bn >= 0;
    for (int s = 0; s < p->n_stages; s++) {
        if (p->n_blocks[s] == 0)
            return missing(p, CONV, s, 0, 1, err);
        for (int b = 0; b < p->n_blocks[s]; b++)
            for (int r = 0; r < 4; r++) {
                const conv_slot *c = &p->body[s][b][r];
                int need = r == 1 || r == 2 || (r == 3 && p->bottleneck);
                if (r == 3 && !p->bottleneck && (c->conv >= 0 || c->bn >= 0)) {
                    char first[64];
                    keras_name(p->scheme, CONV, 0, 0, 3, first, sizeof first);
                    return tool_errf(err, ERRLEN, "layer '%s': a third convolution, but there is no '%s'",
                                p->layers[c->conv >= 0 ? c->conv : c->bn].name, first);
                }
                if (c->conv < 0 && (need || c->bn >= 0))
                    return missing(p, CONV, s, b, r, err);
                if (c->bn < 0 && (need || c->conv >= 0))
                    return missing(p, BN, s, b, r, err);
            }
    }
    return 0;
}

static const cJSON *cfg_item(const klayer *k, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(k->cfg, key);
}

static int int_pair(const cJSON *a, int v)
{
    return cJSON_GetArraySize(a) == 2 && cJSON_GetArrayItem(a, 0)->valuedouble == v &&
           cJSON_GetArrayItem(a, 1)->valuedouble == v;
}

/* The batch-norm epsilon and where the downsampling stride sits, from the
 * Keras configs; and no layer class that a ResNet does not have. */
static int check_configs(plan *p, char *err)
{
    static const char *allowed[] = {
        "InputLayer", "ZeroPadding2D", "Conv2D",       "BatchNormalization",     "Activation",
        "ReLU",       "Add",           "MaxPooling2D", "GlobalAveragePooling2D", "AveragePooling2D",
        "Flatten",    "Dense",         "Dropout"};
    const cJSON *l;
    cJSON_ArrayForEach(l, tfjs_layers(p->tf))
    {
        const cJSON *cn = cJSON_GetObjectItemCaseSensitive(l, "class_name");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(l, "name");
        const char *name = cJSON_IsString(n) ? n->valuestring : "?";
        int ok = 0;
        for (size_t i = 0; i < sizeof allowed / sizeof allowed[0] && cJSON_IsString(cn); i++)
            ok |= !strcmp(cn->valuestring, allowed[i]);
        if (!ok)
            return tool_errf(err, ERRLEN, "layer '%s': Keras layer class %s is not part of a ResNet", name,
                        cJSON_IsString(cn) ? cn->valuestring : "(none)");
        int has = 0;
        for (int j = 0; j < p->n_layers && !has; j++)
            has = p->layers[j].name_len == strlen(name) &&
                  !strncmp(p->layers[j].name, name, p->layers[j].name_len);
        if (!has &&
            (!strcmp(cn->valuestring, "Conv2D") || !strcmp(cn->valuestring, "BatchNormalization") ||
             !strcmp(cn->valuestring, "Dense")))
            return tool_errf(err, ERRLEN,
                        "layer '%s' (%s): unknown layer, or its weights are missing from "
                        "the manifest",
                        name, cn->valuestring);
    }
    p->eps = -1;
    int v1 = 0, v15 = 0;
    for (int j = 0; j < p->n_layers; j++) {
        const klayer *k = &p->layers[j];
        if (k->role == BN || k->role == STEM_BN) {
            const cJSON *e = cfg_item(k, "epsilon");
            if (!cJSON_IsNumber(e) || !(e->valuedouble > 0 && e->valuedouble < 1))
                return tool_errf(err, ERRLEN, "layer '%.*s': no valid batch-norm epsilon in its config",
                            (int)k->name_len, k->name);
            if (p->eps >= 0 && e->valuedouble != p->eps)
                return tool_errf(err, ERRLEN, "layer '%.*s': batch-norm epsilon %g differs from %g",
                            (int)k->name_len, k->name, e->valuedouble, p->eps);
            p->eps = e->valuedouble;
        } else if (k->role == CONV || k->role == STEM_CONV) {
            const cJSON *d = cfg_item(k, "dilation_rate"), *g = cfg_item(k, "groups");
            const cJSON *f = cfg_item(k, "data_format");
            if ((d && !int_pair(d, 1)) || (g && g->valuedouble != 1) ||
                (cJSON_IsString(f) && strcmp(f->valuestring, "channels_last")))
                return tool_errf(err, ERRLEN,
                            "layer '%.*s': dilated, grouped or channels_first "
                            "convolutions are not supported",
                            (int)k->name_len, k->name);
            if (k->role == CONV && k->block == 0 && int_pair(cfg_item(k, "strides"), 2)) {
                v1 |= k->branch == 1;
                v15 |= k->branch == 2;
            }
        }
    }
    if (v1 && v15)
        return tool_errf(err, ERRLEN, "the downsampling stride is on the 1x1 in some blocks and on the "
                         "3x3 in others");
    p->variant = v15 ? "v1.5" : "v1";
    return 0;
}

/* The weight LAYER/param into *w (NULL when optional and absent), checking
 * its rank and marking it used; -1 and a message when missing or malformed. */
static int take(plan *p, const klayer *k, const char *param, int ndim, int optional,
                const tfjs_weight **w, char *err)
{
    char name[160];
    snprintf(name, sizeof name, "%.*s/%s", (int)k->name_len, k->name, param);
    *w = tfjs_find(p->tf, name);
    if (!*w)
        return optional ? 0 : tool_errf(err, ERRLEN, "missing weight '%s'", name);
    p->used[*w - p->tf->weights] = 1;
    if ((*w)->ndim != ndim)
        return tool_errf(err, ERRLEN, "weight '%s': %d dimensions, expected %d", name, (*w)->ndim, ndim);
    return 0;
}

typedef struct out_buf {
    stw_writer *st;
    float *arena, *next, *end;
} out_buf;

/* Room for one output tensor in the arena, registered with the writer. */
static float *add(out_buf *o, const char *name, int ndim, const int64_t *shape, size_t count,
                  char *err)
{
    float *dst = o->next;
    if (count > (size_t)(o->end - o->next)) {
        tool_errf(err, ERRLEN, "%s: internal error: output larger than the input weights", name);
        return NULL;
    }
    o->next += count;
    if (stw_add_tensor(o->st, name, "F32", ndim, shape, dst, count * sizeof(float)) < 0) {
        tool_errf(err, ERRLEN, "%s: cannot add tensor (duplicate or out of memory)", name);
        return NULL;
    }
    return dst;
}

/* One Keras conv + batch norm -> torchvision conv (OIHW, no bias) and BN with
 * the conv bias folded into running_mean. */
static int emit_conv_bn(plan *p, out_buf *o, conv_slot c, const char *conv_tv, const char *bn_tv,
                        char *err)
{
    const klayer *kc = &p->layers[c.conv], *kb = &p->layers[c.bn];
    const tfjs_weight *k, *bias;
    if (take(p, kc, "kernel", 4, 0, &k, err) < 0 || take(p, kc, "bias", 1, 1, &bias, err) < 0)
        return -1;
    int64_t kh = k->shape[0], kw = k->shape[1], ci = k->shape[2], co = k->shape[3];
    if (bias && bias->shape[0] != co)
        return tool_errf(err, ERRLEN, "weight '%s': shape [%lld], expected [%lld]", bias->name,
                    (long long)bias->shape[0], (long long)co);
    const tfjs_weight *bn[4];
    static const char *bn_params[] = {"gamma", "beta", "moving_mean", "moving_variance"};
    static const char *tv_params[] = {"weight", "bias", "running_mean", "running_var"};
    for (int i = 0; i < 4; i++) {
        if (take(p, kb, bn_params[i], 1, 0, &bn[i], err) < 0)
            return -1;
        if (bn[i]->shape[0] != co)
            return tool_errf(err, ERRLEN, "weight '%s': shape [%lld], but '%.*s' has %lld output channels",
                        bn[i]->name, (long long)bn[i]->shape[0], (int)kc->name_len, kc->name,
                        (long long)co);
    }
    char name[96];
    snprintf(name, sizeof name, "%s.weight", conv_tv);
    float *w = add(o, name, 4, (int64_t[]){co, ci, kh, kw}, k->count, err);
    if (!w)
        return -1;
    for (int64_t oc = 0; oc < co; oc++)
        for (int64_t ic = 0; ic < ci; ic++)
            for (int64_t y = 0; y < kh; y++)
                for (int64_t x = 0; x < kw; x++)
                    *w++ = k->data[((y * kw + x) * ci + ic) * co + oc];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s", bn_tv, tv_params[i]);
        float *d = add(o, name, 1, (int64_t[]){co}, (size_t)co, err);
        if (!d)
            return -1;
        for (int64_t j = 0; j < co; j++)
            d[j] = i == 2 && bias ? bn[i]->data[j] - bias->data[j] : bn[i]->data[j];
    }
    return 0;
}

static int emit_fc(plan *p, out_buf *o, char *err)
{
    const klayer *kf = &p->layers[p->fc];
    const tfjs_weight *k, *b;
    if (take(p, kf, "kernel", 2, 0, &k, err) < 0 || take(p, kf, "bias", 1, 0, &b, err) < 0)
        return -1;
    int64_t in = k->shape[0], out = k->shape[1];
    if (out < 1 || out > 1000000)
        return tool_errf(err, ERRLEN, "weight '%s': %lld classes", k->name, (long long)out);
    p->n_classes = (int)out;
    if (b->shape[0] != out)
        return tool_errf(err, ERRLEN, "weight '%s': shape [%lld], expected [%lld]", b->name,
                    (long long)b->shape[0], (long long)out);
    float *w = add(o, "fc.weight", 2, (int64_t[]){out, in}, k->count, err);
    float *d = w ? add(o, "fc.bias", 1, (int64_t[]){out}, (size_t)out, err) : NULL;
    if (!d)
        return -1;
    for (int64_t i = 0; i < out; i++)
        for (int64_t j = 0; j < in; j++)
            w[i * in + j] = k->data[j * out + i];
    memcpy(d, b->data, (size_t)out * sizeof *d);
    return 0;
}

/* All tensors in torchvision's state_dict order. */
static int emit_all(plan *p, out_buf *o, char *err)
{
    if (emit_conv_bn(p, o, p->stem, "conv1", "bn1", err) < 0)
        return -1;
    for (int s = 0; s < p->n_stages; s++)
        for (int b = 0; b < p->n_blocks[s]; b++)
            for (int r = 1; r <= 4; r++) {
                conv_slot c = p->body[s][b][r & 3];
                char conv_tv[48], bn_tv[48];
                if (c.conv < 0)
                    continue;
                if (r == 4) {
                    snprintf(conv_tv, sizeof conv_tv, "layer%d.%d.downsample.0", s + 1, b);
                    snprintf(bn_tv, sizeof bn_tv, "layer%d.%d.downsample.1", s + 1, b);
                } else {
                    snprintf(conv_tv, sizeof conv_tv, "layer%d.%d.conv%d", s + 1, b, r);
                    snprintf(bn_tv, sizeof bn_tv, "layer%d.%d.bn%d", s + 1, b, r);
                }
                if (emit_conv_bn(p, o, c, conv_tv, bn_tv, err) < 0)
                    return -1;
            }
    if (emit_fc(p, o, err) < 0)
        return -1;
    for (int i = 0; i < p->tf->n_weights; i++)
        if (!p->used[i])
            return tool_errf(err, ERRLEN, "weight '%s': unknown weight, not part of a ResNet layer",
                        p->tf->weights[i].name);
    return 0;
}

int keras_resnet_to_torchvision(const tfjs_model *tf, stw_writer *st, float **arena,
                                keras_resnet_info *info, char *err, size_t errlen)
{
    char msg[ERRLEN] = "";
    plan *p = calloc(1, sizeof *p);
    out_buf ob = {.st = st};
    int rc = -1;
    *arena = NULL;
    memset(info, 0, sizeof *info);
    if (p) {
        p->tf = tf;
        p->layers = calloc((size_t)tf->n_weights + 1, sizeof *p->layers);
        p->used = calloc((size_t)tf->n_weights + 1, 1);
    }
    /* the output holds at most the input's floats (conv biases are dropped) */
    size_t total = 0;
    for (int i = 0; i < tf->n_weights; i++)
        total += tf->weights[i].count;
    ob.arena = ob.next = *arena = malloc((total ? total : 1) * sizeof(float));
    ob.end = ob.arena ? ob.arena + total : NULL;
    if (!p || !p->layers || !p->used || !ob.arena) {
        tool_errf(msg, ERRLEN, "out of memory");
        goto out_free;
    }
    if (!tfjs_layers(tf)) {
        tool_errf(msg, ERRLEN, "no Keras layer configs (modelTopology): cannot read the batch-norm epsilon");
        goto out_free;
    }
    if (collect_layers(p, msg) < 0 || check_structure(p, msg) < 0 || check_configs(p, msg) < 0 ||
        emit_all(p, &ob, msg) < 0)
        goto out_free;
    info->bn_eps = p->eps;
    info->variant = p->variant;
    info->n_classes = p->n_classes;
    info->n_stages = p->n_stages;
    memcpy(info->blocks, p->n_blocks, sizeof info->blocks);
    info->bottleneck = p->bottleneck;
    info->n_params = (size_t)(ob.next - ob.arena);
    rc = 0;
out_free:
    if (rc < 0 && err && errlen)
        snprintf(err, errlen, "%s", msg);
    if (p) {
        free(p->layers);
        free(p->used);
    }
    free(p);
    return rc;
}
