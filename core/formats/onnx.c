/* ONNX models as a tensor source: the ModelProto is read with protobuf-c
 * (C generated at build time from the onnx.proto of Debian's libonnx-dev),
 * and its graph is matched, node by node from the input, against the ResNets
 * the builders know. Each initializer is then named as torchvision, timm or
 * timm's resnetv2 would name it, so the same builders make the plan:
 *
 *   Conv [BatchNormalization] Relu, MaxPool          conv1 / bn1 (or timm's deep
 *                                                    stem conv1.{0,3,6}; v2: stem.conv)
 *   per block: Conv [BN] [Relu] ... Add [Relu]       layer{S}.{I}.conv{K} / bn{K}
 *     shortcut: the input, Conv [BN], or            .downsample.0 / .1, or
 *     AveragePool Conv [BN] (ResNet-D)              .downsample.1 / .2
 *   v2: BN Relu before each block, no Relu after     stages.{S}.blocks.{I}.norm1 ...
 *   GlobalAveragePool, Flatten or Reshape,           fc.weight, fc.bias
 *     Gemm, or MatMul + Add (v2: BN Relu first,       (v2: norm, head.fc)
 *     a 1x1 Conv head)
 *
 * Why names rather than plan ops: the builders already check every shape,
 * name every layer output after its PyTorch module, and fold batch norms,
 * and `resnet convert` then writes exactly these tensors as safetensors. A
 * Conv with batch norm folded into it (torchvision's exports) keeps its bias
 * as NAME.bias, which the builders fold like a batch norm. Where a name
 * cannot say it (strides, padding, which conv strides), the matcher checks
 * the node against what the builder will assume, and sets resnet.variant,
 * resnet.bn_eps and resnet.avg_down. Any other node is an error naming it.
 */
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx.pb-c.h"
#include "weights.h"

#define MAX_NODES 20000
#define MAX_EXTERNAL 64

typedef Onnx__NodeProto node_t;
typedef Onnx__TensorProto tensor_t;

struct ext_map {
    char *location;
    void *map;
    size_t size;
};

/* What the reader owns, released by st_close. */
struct onnx_priv {
    Onnx__ModelProto *model;
    char **strs; /* names, metadata, copies */
    int n_strs, cap_strs;
    struct ext_map ext[MAX_EXTERNAL];
    int n_ext;
};

struct value {
    const char *name;
    int producer;       /* node index, -1: a graph input or initializer */
    const tensor_t *init;
    int n_cons;         /* consuming nodes */
    int cons[4];        /* the first few */
};

struct matcher {
    Onnx__GraphProto *g;
    st_file *f;
    struct onnx_priv *P;
    const char *dir;
    struct value *vals; /* sorted by name */
    int n_vals;
    char *visited;      /* per node */
    int v2, bottleneck, variant_v1, variant_seen, avg_down;
    double eps;
    int eps_seen;
    int cap_tensors;
    char *err;
    size_t errlen;
    /* a QDQ graph (qdq_strip): its activations' and initializers' quantization */
    int qdq;
    struct qact *qact;
    struct qinit *qinit;
    struct qalias *qalias;
    int n_qact, n_qinit, n_qalias;
};

/* ---- ownership ---- */

static void release(st_file *f)
{
    struct onnx_priv *P = f->priv;
    if (!P)
        return;
    if (P->model)
        onnx__model_proto__free_unpacked(P->model, NULL);
    for (int i = 0; i < P->n_strs; i++)
        free(P->strs[i]);
    free(P->strs);
    for (int i = 0; i < P->n_ext; i++) {
        free(P->ext[i].location);
        if (P->ext[i].map)
            munmap(P->ext[i].map, P->ext[i].size);
    }
    free(P);
    f->priv = NULL;
}

static void *own(struct matcher *M, void *p)
{
    struct onnx_priv *P = M->P;
    if (!p)
        return NULL;
    if (P->n_strs == P->cap_strs) {
        int cap = P->cap_strs ? 2 * P->cap_strs : 256;
        char **ns = realloc(P->strs, (size_t)cap * sizeof *ns);
        if (!ns) {
            free(p);
            return NULL;
        }
        P->strs = ns;
        P->cap_strs = cap;
    }
    P->strs[P->n_strs++] = p;
    return p;
}

static int nomem(struct matcher *M)
{
    return rn_errf(M->err, M->errlen, RN_ERR_NOMEM, "out of memory");
}

/* ---- the graph ---- */

static const char *nname(const node_t *n)
{
    return n->name && *n->name ? n->name : n->n_output && n->output[0] ? n->output[0] : "?";
}

static int node_err(struct matcher *M, const node_t *n, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int node_err(struct matcher *M, const node_t *n, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return rn_errf(M->err, M->errlen, status, "node %.100s (%.40s): %s", nname(n),
                   n->op_type ? n->op_type : "?", msg);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct value *)a)->name, ((const struct value *)b)->name);
}

static struct value *find(struct matcher *M, const char *name)
{
    if (!name || !*name)
        return NULL;
    struct value key = {.name = name};
    return bsearch(&key, M->vals, (size_t)M->n_vals, sizeof key, by_name);
}

static int is_op(const node_t *n, const char *op)
{
    return n->op_type && !strcmp(n->op_type, op);
}

/* Index every value: who makes it, who reads it; refuse cycles and values
 * made twice. */
static int index_graph(struct matcher *M)
{
    Onnx__GraphProto *g = M->g;
    if (g->n_node > MAX_NODES)
        return rn_errf(M->err, M->errlen, RN_ERR_ARCH, "graph of %zu nodes; not a ResNet", g->n_node);
    size_t cap = g->n_initializer + g->n_input;
    for (size_t i = 0; i < g->n_node; i++)
        cap += g->node[i]->n_output;
    M->vals = calloc(cap + 1, sizeof *M->vals);
    M->visited = calloc(g->n_node + 1, 1);
    if (!M->vals || !M->visited)
        return nomem(M);
    int n = 0;
    for (size_t i = 0; i < g->n_initializer; i++)
        if (g->initializer[i]->name && *g->initializer[i]->name)
            M->vals[n++] = (struct value){.name = g->initializer[i]->name, .producer = -1,
                                          .init = g->initializer[i]};
    for (size_t i = 0; i < g->n_input; i++)
        if (g->input[i]->name && *g->input[i]->name)
            M->vals[n++] = (struct value){.name = g->input[i]->name, .producer = -1};
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t j = 0; j < g->node[i]->n_output; j++)
            if (*g->node[i]->output[j])
                M->vals[n++] = (struct value){.name = g->node[i]->output[j], .producer = (int)i};
    qsort(M->vals, (size_t)n, sizeof *M->vals, by_name);
    /* merge: an initializer also listed as an input (older exporters) is one value */
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (k && !strcmp(M->vals[k - 1].name, M->vals[i].name)) {
            struct value *a = &M->vals[k - 1], *b = &M->vals[i];
            if (a->producer >= 0 || b->producer >= 0) {
                const node_t *nd = g->node[a->producer >= 0 ? a->producer : b->producer];
                return node_err(M, nd, RN_ERR_FORMAT, "output %.100s is made twice", a->name);
            }
            if (b->init)
                a->init = b->init;
            continue;
        }
        M->vals[k++] = M->vals[i];
    }
    M->n_vals = k;
    for (size_t i = 0; i < g->n_node; i++) {
        const node_t *nd = g->node[i];
        if (!nd->op_type)
            return node_err(M, nd, RN_ERR_FORMAT, "no op_type");
        if (nd->domain && *nd->domain && strcmp(nd->domain, "ai.onnx"))
            return node_err(M, nd, RN_ERR_UNSUPPORTED, "operator domain %.60s is not supported",
                            nd->domain);
        for (size_t j = 0; j < nd->n_input; j++) {
            if (!*nd->input[j])
                continue;
            struct value *v = find(M, nd->input[j]);
            if (!v)
                return node_err(M, nd, RN_ERR_FORMAT, "input %.100s is made by no node, input or initializer",
                                nd->input[j]);
            if (v->n_cons < 4)
                v->cons[v->n_cons] = (int)i;
            v->n_cons++;
        }
    }
    /* torch.onnx.export shares equal initializers through Identity nodes:
     * such an output is that initializer */
    for (int changed = 1, round = 0; changed && round < 16; round++) {
        changed = 0;
        for (size_t i = 0; i < g->n_node; i++) {
            node_t *nd = g->node[i];
            if (!is_op(nd, "Identity") || nd->n_input != 1 || nd->n_output != 1 || M->visited[i])
                continue;
            struct value *in = find(M, nd->input[0]), *o = find(M, nd->output[0]);
            if (in && in->init && o) {
                o->init = in->init;
                M->visited[i] = 1;
                changed = 1;
            }
        }
    }
    /* cycles: Kahn's order must reach every node (edges producer -> consumer) */
    size_t nn = g->n_node, ne = 0;
    int *indeg = calloc(nn + 1, sizeof *indeg), *start = calloc(nn + 2, sizeof *start);
    int *queue = malloc((nn + 1) * sizeof *queue), *edge = NULL, *fillp = NULL;
    int rc = RN_OK;
    if (!indeg || !start || !queue) {
        rc = nomem(M);
        goto out_free;
    }
    for (size_t i = 0; i < nn; i++)
        for (size_t j = 0; j < g->node[i]->n_input; j++) {
            struct value *v = find(M, g->node[i]->input[j]);
            if (v && v->producer >= 0) {
                indeg[i]++;
                start[v->producer + 1]++;
                ne++;
            }
        }
    for (size_t i = 0; i < nn; i++)
        start[i + 1] += start[i];
    edge = malloc((ne + 1) * sizeof *edge);
    fillp = malloc((nn + 1) * sizeof *fillp);
    if (!edge || !fillp) {
        rc = nomem(M);
        goto out_free;
    }
    memcpy(fillp, start, nn * sizeof *fillp);
    for (size_t i = 0; i < nn; i++)
        for (size_t j = 0; j < g->node[i]->n_input; j++) {
            struct value *v = find(M, g->node[i]->input[j]);
            if (v && v->producer >= 0)
                edge[fillp[v->producer]++] = (int)i;
        }
    size_t head = 0, tail = 0;
    for (size_t i = 0; i < nn; i++)
        if (!indeg[i])
            queue[tail++] = (int)i;
    while (head < tail) {
        int u = queue[head++];
        for (int e = start[u]; e < start[u + 1]; e++)
            if (--indeg[edge[e]] == 0)
                queue[tail++] = edge[e];
    }
    if (tail != nn)
        for (size_t i = 0; i < nn; i++)
            if (indeg[i] > 0) {
                rc = node_err(M, g->node[i], RN_ERR_FORMAT, "the graph has a cycle through it");
                break;
            }
out_free:
    free(indeg);
    free(start);
    free(queue);
    free(edge);
    free(fillp);
    return rc;
}

/* The only consumer of value `name`, or -1. */
static int sole(struct matcher *M, const char *name)
{
    struct value *v = find(M, name);
    return v && v->n_cons == 1 ? v->cons[0] : -1;
}

static const Onnx__AttributeProto *attr(const node_t *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name))
            return n->attribute[i];
    return NULL;
}

static int64_t attr_i(const node_t *n, const char *name, int64_t def)
{
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_i ? a->i : def;
}

/* An ints attribute all of whose values are v (or absent, when def == v). */
static int ints_all(const node_t *n, const char *name, int64_t v, int64_t def, size_t count)
{
    const Onnx__AttributeProto *a = attr(n, name);
    if (!a || !a->n_ints)
        return def == v;
    if (a->n_ints != count)
        return 0;
    for (size_t i = 0; i < a->n_ints; i++)
        if (a->ints[i] != v)
            return 0;
    return 1;
}

static int check_auto_pad(struct matcher *M, const node_t *n)
{
    const Onnx__AttributeProto *a = attr(n, "auto_pad");
    if (a && a->has_s && a->s.len && !(a->s.len == 6 && !memcmp(a->s.data, "NOTSET", 6)))
        return node_err(M, n, RN_ERR_UNSUPPORTED, "auto_pad %.*s is not supported (explicit pads are)",
                        (int)(a->s.len > 20 ? 20 : a->s.len), (const char *)a->s.data);
    return RN_OK;
}

/* ---- tensors ---- */

static int dtype_of(int32_t onnx)
{
    switch (onnx) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: return ST_F32;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: return ST_F16;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: return ST_BF16;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return ST_F64;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return ST_I64;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: return ST_I32;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: return ST_I8;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: return ST_U8;
    }
    return -1;
}

/* External data: LOCATION (relative, inside the model's folder) mapped once. */
static int external(struct matcher *M, const tensor_t *t, size_t want, const uint8_t **data)
{
    const char *loc = NULL;
    uint64_t off = 0, len = want;
    int has_len = 0;
    for (size_t i = 0; i < t->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = t->external_data[i];
        if (!e->key || !e->value)
            continue;
        char *end;
        if (!strcmp(e->key, "location"))
            loc = e->value;
        else if (!strcmp(e->key, "offset"))
            off = strtoull(e->value, &end, 10);
        else if (!strcmp(e->key, "length")) {
            len = strtoull(e->value, &end, 10);
            has_len = 1;
        }
    }
    if (!loc || !*loc)
        return rn_errf(M->err, M->errlen, RN_ERR_FORMAT, "initializer %.100s: external data without a location", t->name);
    if (loc[0] == '/' || strstr(loc, "..") || strlen(loc) > 255)
        return rn_errf(M->err, M->errlen, RN_ERR_FORMAT,
                       "initializer %.100s: external data location \"%.100s\" is not a file beside the model",
                       t->name, loc);
    if (!M->dir)
        return rn_errf(M->err, M->errlen, RN_ERR_UNSUPPORTED,
                       "initializer %.100s: external data (%.100s) needs the model loaded from a file",
                       t->name, loc);
    if (has_len && len != want)
        return rn_errf(M->err, M->errlen, RN_ERR_FORMAT,
                       "initializer %.100s: external data of %llu bytes, its shape needs %zu", t->name,
                       (unsigned long long)len, want);
    struct ext_map *x = NULL;
    for (int i = 0; i < M->P->n_ext; i++)
        if (!strcmp(M->P->ext[i].location, loc))
            x = &M->P->ext[i];
    if (!x) {
        if (M->P->n_ext == MAX_EXTERNAL)
            return rn_errf(M->err, M->errlen, RN_ERR_UNSUPPORTED, "more than %d external data files", MAX_EXTERNAL);
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", M->dir, loc);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
            if (fd >= 0)
                close(fd);
            return rn_errf(M->err, M->errlen, RN_ERR_IO, "initializer %.100s: external data %.200s cannot be read",
                           t->name, path);
        }
        x = &M->P->ext[M->P->n_ext];
        x->size = (size_t)st.st_size;
        x->map = x->size ? mmap(NULL, x->size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
        close(fd);
        if (x->map == MAP_FAILED) {
            x->map = NULL;
            return rn_errf(M->err, M->errlen, RN_ERR_IO, "%s: mmap failed", path);
        }
        if (!(x->location = strdup(loc)))
            return nomem(M);
        M->P->n_ext++;
    }
    if (off > x->size || want > x->size - off)
        return rn_errf(M->err, M->errlen, RN_ERR_FORMAT,
                       "initializer %.100s: external data [%llu, +%zu) outside %.100s (%zu bytes)", t->name,
                       (unsigned long long)off, want, loc, x->size);
    *data = (const uint8_t *)x->map + off;
    return RN_OK;
}

/* An initializer as an st_tensor's dtype, shape and bytes. */
static int tensor_bytes(struct matcher *M, const tensor_t *t, st_tensor *out)
{
    const char *name = t->name ? t->name : "?";
    int dtype = dtype_of(t->data_type);
    if (dtype < 0)
        return rn_errf(M->err, M->errlen, RN_ERR_FORMAT, "initializer %.100s: data type %d is not a float or int type",
                       name, (int)t->data_type);
    if (t->n_dims > ST_MAX_DIMS)
        return rn_errf(M->err, M->errlen, RN_ERR_FORMAT, "initializer %.100s: %zu dimensions", name, t->n_dims);
    if (t->segment)
        return rn_errf(M->err, M->errlen, RN_ERR_UNSUPPORTED, "initializer %.100s: segments are not supported", name);
    int64_t numel = 1;
    out->ndim = (int)t->n_dims;
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0 || t->dims[i] > (1ll << 40) || (t->dims[i] && numel > (1ll << 40) / t->dims[i]))
            return rn_errf(M->err, M->errlen, RN_ERR_FORMAT, "initializer %.100s: dimension %zu is %lld", name,
                           i, (long long)t->dims[i]);
        out->shape[i] = t->dims[i];
        numel *= t->dims[i];
    }
    size_t es = st_dtype_size(dtype), want = (size_t)numel * es;
    out->dtype = dtype;
    out->numel = numel;
    out->nbytes = want;
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return external(M, t, want, &out->data);
    if (t->has_raw_data) {
        if (t->raw_data.len != want)
            return rn_errf(M->err, M->errlen, RN_ERR_FORMAT,
                           "initializer %.100s: %zu bytes of raw data, its shape needs %zu", name,
                           t->raw_data.len, want);
        out->data = t->raw_data.data;
        return RN_OK;
    }
    size_t have = dtype == ST_F32 ? t->n_float_data : dtype == ST_F64 ? t->n_double_data
                  : dtype == ST_I64 ? t->n_int64_data : t->n_int32_data;
    if (have != (size_t)numel)
        return rn_errf(M->err, M->errlen, RN_ERR_FORMAT,
                       "initializer %.100s: %zu values, its shape needs %lld", name, have, (long long)numel);
    if (dtype == ST_F32)
        out->data = (const uint8_t *)t->float_data;
    else if (dtype == ST_F64)
        out->data = (const uint8_t *)t->double_data;
    else if (dtype == ST_I64)
        out->data = (const uint8_t *)t->int64_data;
    else if (dtype == ST_I32)
        out->data = (const uint8_t *)t->int32_data;
    else if (es == 1) { /* INT8 / UINT8: one value in each int32 */
        uint8_t *b = own(M, malloc(want ? want : 1));
        if (!b)
            return nomem(M);
        for (int64_t i = 0; i < numel; i++)
            b[i] = (uint8_t)t->int32_data[i];
        out->data = b;
    } else { /* FLOAT16 / BFLOAT16: one value in the low half of each int32 */
        uint16_t *h = own(M, malloc(want ? want : 1));
        if (!h)
            return nomem(M);
        for (int64_t i = 0; i < numel; i++)
            h[i] = (uint16_t)t->int32_data[i];
        out->data = (const uint8_t *)h;
    }
    return RN_OK;
}

/* The next tensor of the file, zeroed (not counted until it is filled), or
 * NULL when out of memory. */
static st_tensor *new_tensor(struct matcher *M)
{
    st_file *f = M->f;
    if (f->n_tensors == M->cap_tensors) {
        int cap = M->cap_tensors ? 2 * M->cap_tensors : 256;
        st_tensor *nt = realloc(f->tensors, (size_t)(cap + 1) * sizeof *nt);
        if (!nt)
            return NULL;
        f->tensors = nt;
        M->cap_tensors = cap;
    }
    st_tensor *o = &f->tensors[f->n_tensors];
    memset(o, 0, sizeof *o);
    return o;
}

static int add_tensor(struct matcher *M, const char *name, const tensor_t *t, int transpose)
{
    st_file *f = M->f;
    st_tensor *o = new_tensor(M);
    if (!o)
        return nomem(M);
    int rc = tensor_bytes(M, t, o);
    if (rc < 0)
        return rc;
    if (!(o->name = own(M, strdup(name))))
        return nomem(M);
    if (transpose) { /* a (in, out) matrix as PyTorch's (out, in), in F32 */
        if (o->ndim != 2)
            return rn_errf(M->err, M->errlen, RN_ERR_ARCH, "initializer %.100s: %d dimensions, expected 2",
                           t->name, o->ndim);
        float *src = malloc(o->numel ? (size_t)o->numel * 4 : 4), *dst = own(M, malloc(o->numel ? (size_t)o->numel * 4 : 4));
        if (!src || !dst) {
            free(src);
            return nomem(M);
        }
        if ((rc = st_read_f32(o, src, M->err, M->errlen)) < 0) {
            free(src);
            return rc;
        }
        int64_t r = o->shape[0], c = o->shape[1];
        for (int64_t i = 0; i < r; i++)
            for (int64_t j = 0; j < c; j++)
                dst[j * r + i] = src[i * c + j];
        free(src);
        o->shape[0] = c;
        o->shape[1] = r;
        o->dtype = ST_F32;
        o->nbytes = (size_t)o->numel * 4;
        o->data = (const uint8_t *)dst;
    }
    f->n_tensors++;
    return RN_OK;
}

/* ---- QDQ graphs (docs/int8.md, "ONNX QDQ models") ----
 *
 * What onnxruntime.quantization.quantize_static writes in its QDQ format:
 * every quantized activation t goes through QuantizeLinear -> DequantizeLinear
 * (a per-tensor scale and a uint8 or int8 zero point), every weight and
 * bias is an int8 / int32 initializer read through a DequantizeLinear, and a
 * Relu whose input is quantized is removed (the Relu's range, which starts
 * at 0, is then the clamp). qdq_strip reads those parameters and hands the
 * matcher a view of the graph without the Q and DQ nodes: each DQ output is
 * replaced by what was quantized (an activation) or by the int8 initializer
 * (a weight), so the float matcher walks the same ResNet. The matcher then
 * names tensors in the INT8 safetensors layout: NAME.weight (I8),
 * .weight_scale, .bias (I32), .output_scale, .output_zero_point, input_scale,
 * input_zero_point, as the loader reads them from our own files.
 *
 * Zero points are kept in u8 terms: a uint8 zero point, or an int8 one plus
 * 128 (the same integers shifted: s8 data with zero point -128 is u8 data
 * with zero point 0, which is what int8 activations after a Relu are). */

struct qact {          /* the activation `name`, quantized */
    const char *name;
    float scale;
    int zp;            /* in u8 terms, 0..255 */
};

struct qinit {         /* the initializer `name`, read through a DequantizeLinear */
    const char *name;
    const tensor_t *scale, *zp;
    int axis;
};

struct qalias {        /* the DQ output `from` reads as `to` */
    const char *from, *to;
};

static const char *qresolve(const struct matcher *M, const char *name)
{
    for (int depth = 0; name && depth < 8; depth++) {
        int found = 0;
        for (int i = 0; i < M->n_qalias && !found; i++)
            if (!strcmp(M->qalias[i].from, name)) {
                name = M->qalias[i].to;
                found = 1;
            }
        if (!found)
            break;
    }
    return name;
}

static const struct qact *qact_of(const struct matcher *M, const char *name)
{
    for (int i = 0; name && i < M->n_qact; i++)
        if (!strcmp(M->qact[i].name, name))
            return &M->qact[i];
    return NULL;
}

static const struct qinit *qinit_of(const struct matcher *M, const char *name)
{
    for (int i = 0; name && i < M->n_qinit; i++)
        if (!strcmp(M->qinit[i].name, name))
            return &M->qinit[i];
    return NULL;
}

/* A Q or DQ node's scale and zero point inputs (initializers): one scale,
 * finite and > 0; the zero point uint8 or int8 (absent: uint8 0). */
static int q_params(struct matcher *M, const node_t *n, float *scale, int *zp)
{
    struct value *sv = n->n_input > 1 ? find(M, n->input[1]) : NULL;
    struct value *zv = n->n_input > 2 && *n->input[2] ? find(M, n->input[2]) : NULL;
    st_tensor s, z;
    int rc;
    if (!sv || !sv->init)
        return node_err(M, n, RN_ERR_UNSUPPORTED, "its scale is not an initializer");
    if ((rc = tensor_bytes(M, sv->init, &s)) < 0)
        return rc;
    if (s.dtype != ST_F32 || s.numel != 1)
        return node_err(M, n, RN_ERR_UNSUPPORTED,
                        "scale %.100s: %lld %s values; an activation has one float scale (per tensor)",
                        n->input[1], (long long)s.numel, st_dtype_name(s.dtype));
    memcpy(scale, s.data, sizeof *scale);
    if (!(isfinite(*scale) && *scale > 0))
        return node_err(M, n, RN_ERR_FORMAT, "scale %.100s is %g; expected a finite number > 0", n->input[1],
                        *scale);
    *zp = 0;
    if (zv) {
        if (!zv->init)
            return node_err(M, n, RN_ERR_UNSUPPORTED, "its zero point is not an initializer");
        if ((rc = tensor_bytes(M, zv->init, &z)) < 0)
            return rc;
        if ((z.dtype != ST_U8 && z.dtype != ST_I8) || z.numel != 1)
            return node_err(M, n, RN_ERR_UNSUPPORTED, "zero point %.100s: %lld %s values; expected one uint8 or int8",
                            n->input[2], (long long)z.numel, st_dtype_name(z.dtype));
        *zp = z.dtype == ST_U8 ? z.data[0] : (int8_t)z.data[0] + 128;
    }
    return RN_OK;
}

static int add_qact(struct matcher *M, const node_t *n, const char *name, float scale, int zp)
{
    const struct qact *a = qact_of(M, name);
    if (a) {
        if (a->scale != scale || a->zp != zp)
            return node_err(M, n, RN_ERR_UNSUPPORTED, "%.100s is quantized twice, with different scales", name);
        return RN_OK;
    }
    M->qact[M->n_qact++] = (struct qact){.name = name, .scale = scale, .zp = zp};
    return RN_OK;
}

static int is_q(const node_t *n)
{
    return is_op(n, "QuantizeLinear");
}

static int is_dq(const node_t *n)
{
    return is_op(n, "DequantizeLinear");
}

/* Read the Q / DQ nodes of M->g and make M->g the view without them; 0
 * and nothing changed for a graph without any. */
static int qdq_strip(struct matcher *M)
{
    Onnx__GraphProto *g = M->g;
    size_t nq = 0;
    for (size_t i = 0; i < g->n_node; i++)
        nq += g->node[i]->op_type && (is_q(g->node[i]) || is_dq(g->node[i]));
    if (!nq)
        return 0;
    int rc = index_graph(M);
    if (rc < 0)
        return rc;
    M->qact = own(M, calloc(nq + 1, sizeof *M->qact));
    M->qinit = own(M, calloc(nq + 1, sizeof *M->qinit));
    M->qalias = own(M, calloc(nq + 1, sizeof *M->qalias));
    char *removed = calloc(g->n_node + 1, 1);
    if (!M->qact || !M->qinit || !M->qalias || !removed) {
        free(removed);
        return nomem(M);
    }
    for (size_t i = 0; i < g->n_node && rc == RN_OK; i++) {
        node_t *n = g->node[i];
        if (!is_q(n) && !is_dq(n))
            continue;
        removed[i] = 1;
        if (n->n_input < 2 || n->n_output != 1 || !*n->input[0]) {
            rc = node_err(M, n, RN_ERR_FORMAT, "expected inputs x, scale [, zero point] and one output");
            break;
        }
        struct value *x = find(M, n->input[0]);
        if (is_q(n)) {
            float s;
            int zp;
            if (x && x->init) {
                rc = node_err(M, n, RN_ERR_UNSUPPORTED,
                              "quantizes the initializer %.100s; store weights quantized (the default) instead",
                              n->input[0]);
            } else if ((rc = q_params(M, n, &s, &zp)) == RN_OK) {
                rc = add_qact(M, n, n->input[0], s, zp);
            }
            continue;
        }
        if (x && x->init) { /* a weight or a bias */
            struct value *sv = find(M, n->input[1]);
            struct value *zv = n->n_input > 2 && *n->input[2] ? find(M, n->input[2]) : NULL;
            if (!sv || !sv->init || (zv && !zv->init)) {
                rc = node_err(M, n, RN_ERR_UNSUPPORTED, "its scale or zero point is not an initializer");
                break;
            }
            if (qinit_of(M, n->input[0])) {
                rc = node_err(M, n, RN_ERR_UNSUPPORTED, "initializer %.100s is dequantized twice", n->input[0]);
                break;
            }
            M->qinit[M->n_qinit++] = (struct qinit){.name = x->name, .scale = sv->init,
                                                    .zp = zv ? zv->init : NULL,
                                                    .axis = (int)attr_i(n, "axis", 1)};
            M->qalias[M->n_qalias++] = (struct qalias){.from = n->output[0], .to = x->name};
            continue;
        }
        if (!x || x->producer < 0 || !is_q(g->node[x->producer])) {
            rc = node_err(M, n, RN_ERR_UNSUPPORTED, "dequantizes %.100s, which no QuantizeLinear made",
                          n->input[0]);
            break;
        }
        const node_t *q = g->node[x->producer];
        float s, sq;
        int zp, zq;
        if ((rc = q_params(M, n, &s, &zp)) < 0 || (rc = q_params(M, q, &sq, &zq)) < 0)
            break;
        if (s != sq || zp != zq) {
            rc = node_err(M, n, RN_ERR_UNSUPPORTED, "its scale or zero point differs from its QuantizeLinear's");
            break;
        }
        M->qalias[M->n_qalias++] = (struct qalias){.from = n->output[0], .to = q->input[0]};
    }
    /* a Q output read by anything but a DQ would be integers in a float graph */
    for (size_t i = 0; i < g->n_node && rc == RN_OK; i++) {
        if (removed[i])
            continue;
        for (size_t j = 0; j < g->node[i]->n_input; j++) {
            struct value *v = find(M, g->node[i]->input[j]);
            if (v && v->producer >= 0 && is_q(g->node[v->producer])) {
                rc = node_err(M, g->node[i], RN_ERR_UNSUPPORTED, "reads the integers of QuantizeLinear %.100s",
                              nname(g->node[v->producer]));
                break;
            }
        }
    }
    /* the view: the other nodes, their inputs through the aliases */
    Onnx__GraphProto *view = own(M, malloc(sizeof *view));
    node_t **nodes = own(M, calloc(g->n_node + 1, sizeof *nodes));
    node_t *copies = own(M, calloc(g->n_node + 1, sizeof *copies));
    if (rc == RN_OK && (!view || !nodes || !copies))
        rc = nomem(M);
    size_t k = 0;
    for (size_t i = 0; i < g->n_node && rc == RN_OK; i++) {
        if (removed[i])
            continue;
        node_t *c = &copies[k];
        *c = *g->node[i];
        char **in = own(M, calloc(c->n_input + 1, sizeof *in));
        if (!in) {
            rc = nomem(M);
            break;
        }
        for (size_t j = 0; j < c->n_input; j++)
            in[j] = (char *)qresolve(M, g->node[i]->input[j]);
        c->input = in;
        nodes[k++] = c;
    }
    free(removed);
    if (rc < 0)
        return rc;
    /* activations quantized as the output of a DQ (a requantization) are
     * the values it reads */
    for (int i = 0; i < M->n_qact; i++)
        M->qact[i].name = qresolve(M, M->qact[i].name);
    *view = *g;
    view->node = nodes;
    view->n_node = k;
    M->g = view;
    free(M->vals);
    free(M->visited);
    M->vals = NULL;
    M->visited = NULL;
    M->qdq = 1;
    return 1;
}

/* A DequantizeLinear's scale or zero point, read once: one value, or one
 * per channel of n; absent (a zero point left out), every value 0. */
struct qvec {
    st_tensor s;
    int present;
};

static int qvec_open(struct matcher *M, const tensor_t *t, int64_t n, struct qvec *q)
{
    memset(q, 0, sizeof *q);
    if (!t)
        return RN_OK;
    int rc = tensor_bytes(M, t, &q->s);
    if (rc < 0)
        return rc;
    if (q->s.numel != 1 && q->s.numel != n)
        return rn_errf(M->err, M->errlen, RN_ERR_FORMAT, "%.100s: %lld values for %lld channels", t->name,
                       (long long)q->s.numel, (long long)n);
    if (q->s.dtype != ST_F32 && q->s.dtype != ST_I8 && q->s.dtype != ST_U8 && q->s.dtype != ST_I32)
        return rn_errf(M->err, M->errlen, RN_ERR_UNSUPPORTED, "%.100s: dtype %s", t->name,
                       st_dtype_name(q->s.dtype));
    q->present = 1;
    return RN_OK;
}

static double qvec_at(const struct qvec *q, int64_t o)
{
    if (!q->present)
        return 0;
    int64_t i = q->s.numel == 1 ? 0 : o;
    const uint8_t *d = q->s.data;
    float f;
    int32_t x;
    switch (q->s.dtype) {
    case ST_F32: memcpy(&f, d + 4 * i, 4); return f;
    case ST_I8: return (int8_t)d[i];
    case ST_U8: return d[i];
    default: memcpy(&x, d + 4 * i, 4); return x;
    }
}

/* A new tensor NAME of data the reader owns. */
static int add_owned(struct matcher *M, const char *name, int dtype, int ndim, const int64_t *shape,
                     const void *data)
{
    st_tensor *o = new_tensor(M);
    if (!o)
        return nomem(M);
    o->dtype = dtype;
    o->ndim = ndim;
    o->numel = 1;
    for (int i = 0; i < ndim; i++) {
        o->shape[i] = shape[i];
        o->numel *= shape[i];
    }
    o->nbytes = (size_t)o->numel * st_dtype_size(dtype);
    o->data = data;
    if (!(o->name = own(M, strdup(name))))
        return nomem(M);
    M->f->n_tensors++;
    return RN_OK;
}

static int add_scalar(struct matcher *M, const char *name, int dtype, const void *v)
{
    size_t es = st_dtype_size(dtype);
    void *d = own(M, malloc(es));
    if (!d)
        return nomem(M);
    memcpy(d, v, es);
    return add_owned(M, name, dtype, 0, NULL, d);
}

/* The initializer v dequantized, as an F32 tensor: (q - zp) * scale along
 * the DQ's axis, each in float32 as DequantizeLinear defines it. */
static int dequantize_init(struct matcher *M, const struct qinit *qi, const tensor_t *t, tensor_t **out)
{
    st_tensor q;
    int rc = tensor_bytes(M, t, &q);
    if (rc < 0)
        return rc;
    int axis = qi->axis < 0 ? qi->axis + q.ndim : qi->axis;
    if (q.ndim && (axis < 0 || axis >= q.ndim))
        return rn_errf(M->err, M->errlen, RN_ERR_FORMAT, "initializer %.100s: dequantized on axis %d of %d dimensions",
                       t->name, qi->axis, q.ndim);
    int64_t ch = q.ndim ? q.shape[axis] : 1, inner = 1;
    for (int i = axis + 1; i < q.ndim; i++)
        inner *= q.shape[i];
    struct qvec sv, zv;
    if ((rc = qvec_open(M, qi->scale, ch, &sv)) < 0 || (rc = qvec_open(M, qi->zp, ch, &zv)) < 0)
        return rc;
    float *d = own(M, malloc(q.numel ? (size_t)q.numel * 4 : 4));
    tensor_t *nt = own(M, malloc(sizeof *nt));
    if (!d || !nt)
        return nomem(M);
    for (int64_t i = 0; i < q.numel; i++) {
        double v;
        int64_t o = ch > 1 ? i / inner % ch : 0;
        double s = qvec_at(&sv, o), z = qvec_at(&zv, o);
        if (q.dtype == ST_I8)
            v = (int8_t)q.data[i];
        else if (q.dtype == ST_U8)
            v = q.data[i];
        else if (q.dtype == ST_I32) {
            int32_t x;
            memcpy(&x, q.data + 4 * i, 4);
            v = x;
        } else {
            return rn_errf(M->err, M->errlen, RN_ERR_UNSUPPORTED, "initializer %.100s: %s; expected int8 or int32",
                           t->name, st_dtype_name(q.dtype));
        }
        d[i] = (float)(v - z) * (float)s;
    }
    onnx__tensor_proto__init(nt);
    nt->name = t->name;
    nt->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    nt->n_dims = t->n_dims;
    nt->dims = t->dims;
    nt->n_float_data = (size_t)q.numel;
    nt->float_data = d;
    *out = nt;
    return RN_OK;
}

/* Convolution node c quantized, as NAME.weight (I8), .weight_scale,
 * .bias (I32), .output_scale [, .output_zero_point]: its input's scale
 * from the activation it reads (the image for the stem), its output's from
 * value qout (after the residual and the ReLU it ends in: relu). */
static int qdq_conv(struct matcher *M, const node_t *c, const char *name, const char *qout, int relu)
{
    char tn[240];
    int rc;
    const struct qact *ai = qact_of(M, c->input[0]), *ao = qact_of(M, qout);
    if (!ai)
        return node_err(M, c, RN_ERR_UNSUPPORTED, "its input %.100s is not quantized", c->input[0]);
    if (!ao)
        return node_err(M, c, RN_ERR_UNSUPPORTED, "its output %.100s is not quantized", qout);
    struct value *wv = find(M, c->input[1]);
    const struct qinit *wq = qinit_of(M, c->input[1]);
    if (!wv || !wv->init || !wq)
        return node_err(M, c, RN_ERR_UNSUPPORTED, "its weight %.100s is not quantized", c->input[1]);
    st_tensor w;
    if ((rc = tensor_bytes(M, wv->init, &w)) < 0)
        return rc;
    if (w.dtype != ST_I8 || w.ndim != 4)
        return node_err(M, c, RN_ERR_UNSUPPORTED, "weight %.100s: %s, %d dimensions; expected int8, 4", c->input[1],
                        st_dtype_name(w.dtype), w.ndim);
    int64_t out_c = w.shape[0];
    float *ws = own(M, malloc((size_t)out_c * 4 + 4));
    int32_t *bq = own(M, malloc((size_t)out_c * 4 + 4));
    if (!ws || !bq)
        return nomem(M);
    struct qvec wsv, wzv;
    if ((rc = qvec_open(M, wq->scale, out_c, &wsv)) < 0 || (rc = qvec_open(M, wq->zp, out_c, &wzv)) < 0)
        return rc;
    if (wsv.s.dtype != ST_F32 || (wsv.s.numel != 1 && wq->axis != 0))
        return node_err(M, c, RN_ERR_UNSUPPORTED,
                        "weight %.100s: %lld %s scales on axis %d; expected float, one per output channel (axis 0) or one",
                        c->input[1], (long long)wsv.s.numel, st_dtype_name(wsv.s.dtype), wq->axis);
    for (int64_t o = 0; o < out_c; o++) {
        double s = qvec_at(&wsv, o), z = qvec_at(&wzv, o);
        if (z != 0)
            return node_err(M, c, RN_ERR_UNSUPPORTED, "weight %.100s: zero point %g on channel %lld; weights are symmetric (0)",
                            c->input[1], z, (long long)o);
        if (!(isfinite(s) && s > 0))
            return node_err(M, c, RN_ERR_FORMAT, "weight scale %.100s: channel %lld is %g; expected a finite number > 0",
                            wq->scale->name ? wq->scale->name : "?", (long long)o, s);
        ws[o] = (float)s;
    }
    /* the bias: int32 at scale s_in * weight_scale as quantize_static
     * writes it, taken as it is; else (float, or another scale) quantized
     * to that scale here, half to even */
    int have_bias = c->n_input > 2 && *c->input[2];
    const struct qinit *bqi = have_bias ? qinit_of(M, c->input[2]) : NULL;
    struct value *bv = have_bias ? find(M, c->input[2]) : NULL;
    if (have_bias && (!bv || !bv->init))
        return node_err(M, c, RN_ERR_ARCH, "bias %.100s is not an initializer", c->input[2]);
    st_tensor b = {0};
    if (have_bias && (rc = tensor_bytes(M, bv->init, &b)) < 0)
        return rc;
    if (have_bias && (b.ndim != 1 || b.shape[0] != out_c))
        return node_err(M, c, RN_ERR_ARCH, "bias %.100s: %d dimensions; expected [%lld]", c->input[2], b.ndim,
                        (long long)out_c);
    struct qvec bsv, bzv;
    if (bqi && ((rc = qvec_open(M, bqi->scale, out_c, &bsv)) < 0 || (rc = qvec_open(M, bqi->zp, out_c, &bzv)) < 0))
        return rc;
    if (bqi && bsv.s.dtype != ST_F32)
        return node_err(M, c, RN_ERR_UNSUPPORTED, "bias %.100s: %s scales; expected float", c->input[2],
                        st_dtype_name(bsv.s.dtype));
    for (int64_t o = 0; o < out_c; o++) {
        float acc_scale = ai->scale * ws[o];
        double real = 0;
        if (!have_bias) {
            bq[o] = 0;
            continue;
        }
        if (bqi) {
            double s = qvec_at(&bsv, o), z = qvec_at(&bzv, o);
            if (b.dtype != ST_I32)
                return node_err(M, c, RN_ERR_UNSUPPORTED, "bias %.100s: %s; expected int32", c->input[2],
                                st_dtype_name(b.dtype));
            int32_t x;
            memcpy(&x, b.data + 4 * o, 4);
            if ((float)s == acc_scale && z == 0) {
                bq[o] = x;
                continue;
            }
            real = ((double)x - z) * (double)(float)s;
        } else if (b.dtype == ST_F32) {
            float x;
            memcpy(&x, b.data + 4 * o, 4);
            real = x;
        } else {
            return node_err(M, c, RN_ERR_UNSUPPORTED, "bias %.100s: %s; expected float or dequantized int32",
                            c->input[2], st_dtype_name(b.dtype));
        }
        double q = nearbyint(real / (double)acc_scale);
        if (!(fabs(q) <= (double)(1 << 30)))
            return node_err(M, c, RN_ERR_FORMAT, "bias %.100s: channel %lld is %g times the accumulator's scale, beyond 2^30",
                            c->input[2], (long long)o, q);
        bq[o] = (int32_t)q;
    }
    int64_t oc[1] = {out_c};
    snprintf(tn, sizeof tn, "%s.weight", name);
    if ((rc = add_tensor(M, tn, wv->init, 0)) < 0)
        return rc;
    snprintf(tn, sizeof tn, "%s.weight_scale", name);
    if ((rc = add_owned(M, tn, ST_F32, 1, oc, ws)) < 0)
        return rc;
    snprintf(tn, sizeof tn, "%s.bias", name);
    if ((rc = add_owned(M, tn, ST_I32, 1, oc, bq)) < 0)
        return rc;
    snprintf(tn, sizeof tn, "%s.output_scale", name);
    if ((rc = add_scalar(M, tn, ST_F32, &ao->scale)) < 0)
        return rc;
    if (relu && ao->zp != 0)
        return node_err(M, c, RN_ERR_UNSUPPORTED,
                        "output %.100s: zero point %d (in u8 terms) after a ReLU; expected the ReLU's 0", qout, ao->zp);
    if (!relu && ao->zp != 128) {
        int8_t z8 = (int8_t)(ao->zp - 128);
        snprintf(tn, sizeof tn, "%s.output_zero_point", name);
        if ((rc = add_scalar(M, tn, ST_I8, &z8)) < 0)
            return rc;
    }
    return RN_OK;
}

/* A pool's output keeps its input's quantization (or has none of its own). */
static int qdq_same(struct matcher *M, const char *in, const char *out, const char *what)
{
    const struct qact *a = qact_of(M, in), *b = qact_of(M, out);
    if (b && (!a || a->scale != b->scale || a->zp != b->zp))
        return rn_errf(M->err, M->errlen, RN_ERR_UNSUPPORTED,
                       "%s output %.100s is quantized unlike its input; it must keep the input's scale and zero point",
                       what, out);
    return RN_OK;
}

/* Where a v1 ResNet has a Relu and a QDQ graph has none, quantize_static
 * removed it: the value's quantization, whose range starts at 0, is the
 * clamp. Any quantized value stands for it here; qdq_conv then checks that
 * the zero point is 0 and says so where it is not. */
static int qdq_relu(const struct matcher *M, const char *value)
{
    return M->qdq && qact_of(M, value);
}

/* Initializer input i of node n, named `name`. */
static int take_init(struct matcher *M, const node_t *n, size_t i, const char *name, int transpose)
{
    if (i >= n->n_input || !*n->input[i])
        return node_err(M, n, RN_ERR_ARCH, "input %zu missing", i);
    struct value *v = find(M, n->input[i]);
    if (!v || !v->init)
        return node_err(M, n, RN_ERR_ARCH, "input %.100s is not an initializer (missing weights)", n->input[i]);
    const struct qinit *qi = M->qdq ? qinit_of(M, v->name) : NULL;
    if (qi) { /* the classifier of a QDQ graph stays float: dequantized */
        tensor_t *d = NULL;
        int rc = dequantize_init(M, qi, v->init, &d);
        return rc < 0 ? rc : add_tensor(M, name, d, transpose);
    }
    return add_tensor(M, name, v->init, transpose);
}

static const int64_t *init_dims(struct matcher *M, const node_t *n, size_t i, size_t *nd)
{
    struct value *v = i < n->n_input ? find(M, n->input[i]) : NULL;
    if (!v || !v->init)
        return NULL;
    *nd = v->init->n_dims;
    return v->init->dims;
}

/* ---- matching ---- */

/* An inference BatchNormalization node with its five inputs, its epsilon
 * the same as every other's (the builders take one). */
static int check_bn(struct matcher *M, const node_t *b)
{
    if (b->n_output < 1 || b->n_input != 5)
        return node_err(M, b, RN_ERR_ARCH, "expected inputs X, scale, B, mean, var");
    for (size_t o = 1; o < b->n_output; o++)
        if (*b->output[o])
            return node_err(M, b, RN_ERR_UNSUPPORTED, "training outputs are not supported");
    if (attr_i(b, "spatial", 1) != 1 || attr_i(b, "training_mode", 0) != 0)
        return node_err(M, b, RN_ERR_UNSUPPORTED, "only inference batch norm (spatial, not training) is supported");
    const Onnx__AttributeProto *e = attr(b, "epsilon");
    double eps = e && e->has_f ? e->f : 1e-5;
    if (M->eps_seen && (float)eps != (float)M->eps)
        return node_err(M, b, RN_ERR_UNSUPPORTED, "epsilon %g, other batch norms have %g", eps, M->eps);
    M->eps = eps;
    M->eps_seen = 1;
    return RN_OK;
}

/* Name batch norm node b's four parameters PREFIX.weight, .bias,
 * .running_mean, .running_var. */
static int name_bn(struct matcher *M, const node_t *b, const char *prefix)
{
    static const char *const f[4] = {"weight", "bias", "running_mean", "running_var"};
    char tn[200];
    for (int i = 0; i < 4; i++) {
        snprintf(tn, sizeof tn, "%s.%s", prefix, f[i]);
        int rc = take_init(M, b, (size_t)i + 1, tn, 0);
        if (rc < 0)
            return rc;
    }
    return RN_OK;
}

/* A Conv, the BatchNormalization and the Relu that may follow it alone. */
struct unit {
    int conv, bn, relu;
    const char *out;
    int k, stride, pad;
};

static int match_unit(struct matcher *M, int ci, struct unit *u)
{
    node_t *c = M->g->node[ci];
    int rc;
    if (!is_op(c, "Conv"))
        return node_err(M, c, RN_ERR_ARCH, "expected a Conv here in a ResNet");
    if (c->n_output != 1 || c->n_input < 2)
        return node_err(M, c, RN_ERR_ARCH, "expected one output and a weight");
    size_t nd = 0;
    const int64_t *wd = init_dims(M, c, 1, &nd);
    if (!wd || nd != 4)
        return node_err(M, c, RN_ERR_ARCH, "weight %.100s is not a 4-D initializer (missing weights)",
                        c->n_input > 1 ? c->input[1] : "");
    memset(u, 0, sizeof *u);
    u->conv = ci;
    u->bn = u->relu = -1;
    u->k = (int)wd[2];
    const Onnx__AttributeProto *st = attr(c, "strides"), *pads = attr(c, "pads");
    u->stride = st && st->n_ints ? (int)st->ints[0] : 1;
    u->pad = pads && pads->n_ints ? (int)pads->ints[0] : 0;
    if ((rc = check_auto_pad(M, c)) < 0)
        return rc;
    if (wd[2] != wd[3] || !ints_all(c, "strides", u->stride, 1, 2) || !ints_all(c, "pads", u->pad, 0, 4) ||
        !ints_all(c, "dilations", 1, 1, 2) || (attr(c, "kernel_shape") && !ints_all(c, "kernel_shape", wd[2], wd[2], 2)))
        return node_err(M, c, RN_ERR_UNSUPPORTED,
                        "a %lldx%lld kernel with unequal strides, pads or dilations is not a ResNet's",
                        (long long)wd[2], (long long)wd[3]);
    if (u->pad != u->k / 2)
        return node_err(M, c, RN_ERR_UNSUPPORTED, "pads %d on a %dx%d kernel; a ResNet pads %d", u->pad,
                        u->k, u->k, u->k / 2);
    if (u->stride != 1 && u->stride != 2)
        return node_err(M, c, RN_ERR_UNSUPPORTED, "stride %d", u->stride);
    M->visited[ci] = 1;
    u->out = c->output[0];
    int next = sole(M, u->out);
    if (next >= 0 && is_op(M->g->node[next], "BatchNormalization")) {
        node_t *b = M->g->node[next];
        if ((rc = check_bn(M, b)) < 0)
            return rc;
        M->visited[next] = 1;
        u->bn = next;
        u->out = b->output[0];
        next = sole(M, u->out);
    }
    if (next >= 0 && is_op(M->g->node[next], "Relu")) {
        M->visited[next] = 1;
        u->relu = next;
        u->out = M->g->node[next]->output[0];
    } else if ((next < 0 || !is_op(M->g->node[next], "Add")) && qdq_relu(M, u->out)) {
        u->relu = -2; /* removed by the quantizer: the range is the clamp */
    }
    return RN_OK;
}

/* The tensors of unit u: PREFIX.weight (and .bias), and batch norm BN.*;
 * in a QDQ graph (qdq_conv) its quantization, the output's scale that of
 * value qout (after a ReLU: relu). */
static int name_unit(struct matcher *M, const struct unit *u, const char *conv, const char *bn, const char *qout,
                     int relu)
{
    char name[200];
    node_t *c = M->g->node[u->conv];
    int rc;
    if (M->qdq) {
        if (u->bn >= 0)
            return node_err(M, M->g->node[u->bn], RN_ERR_UNSUPPORTED,
                            "a batch norm in a quantized graph: fold batch norms before quantizing");
        return qdq_conv(M, c, conv, qout, relu);
    }
    snprintf(name, sizeof name, "%s.weight", conv);
    if ((rc = take_init(M, c, 1, name, 0)) < 0)
        return rc;
    if (c->n_input > 2 && *c->input[2]) {
        snprintf(name, sizeof name, "%s.bias", conv);
        if ((rc = take_init(M, c, 2, name, 0)) < 0)
            return rc;
    }
    if (u->bn >= 0) {
        if (!bn)
            return node_err(M, M->g->node[u->bn], RN_ERR_ARCH, "a batch norm where a ResNet has none");
        if ((rc = name_bn(M, M->g->node[u->bn], bn)) < 0)
            return rc;
    }
    return RN_OK;
}

static int expect_stride(struct matcher *M, const struct unit *u, int want)
{
    if (u->stride != want)
        return node_err(M, M->g->node[u->conv], RN_ERR_UNSUPPORTED,
                        "stride %d where a torchvision/timm ResNet has %d", u->stride, want);
    return RN_OK;
}

/* A pre-activation: BatchNormalization then Relu, from value x; *out its output. */
static int match_preact(struct matcher *M, int bi, const char *name, const char **out)
{
    node_t *b = M->g->node[bi];
    int rc;
    if (!is_op(b, "BatchNormalization"))
        return node_err(M, b, RN_ERR_ARCH, "expected the BatchNormalization of a pre-activation");
    if ((rc = check_bn(M, b)) < 0)
        return rc;
    int r = sole(M, b->output[0]);
    if (r < 0 || !is_op(M->g->node[r], "Relu"))
        return node_err(M, b, RN_ERR_ARCH, "a pre-activation batch norm must be followed by Relu alone");
    if ((rc = name_bn(M, b, name)) < 0)
        return rc;
    M->visited[bi] = M->visited[r] = 1;
    *out = M->g->node[r]->output[0];
    return RN_OK;
}

/* A chain of units from Conv ci to an Add; at most 3 convolutions. */
static int match_chain(struct matcher *M, int ci, struct unit *u, int *n, int *add)
{
    *n = 0;
    for (;;) {
        if (*n == 3)
            return node_err(M, M->g->node[ci], RN_ERR_ARCH, "a residual branch of more than 3 convolutions");
        int rc = match_unit(M, ci, &u[*n]);
        if (rc < 0)
            return rc;
        int next = sole(M, u[*n].out);
        (*n)++;
        if (next < 0) {
            struct value *v = find(M, u[*n - 1].out);
            return node_err(M, M->g->node[u[*n - 1].conv], RN_ERR_ARCH,
                            "its output %.100s goes to %d nodes; a residual branch feeds one", u[*n - 1].out,
                            v ? v->n_cons : 0);
        }
        if (is_op(M->g->node[next], "Add")) {
            *add = next;
            return RN_OK;
        }
        ci = next;
    }
}

static int check_pool(struct matcher *M, int pi, int maxpool)
{
    node_t *p = M->g->node[pi];
    int rc = check_auto_pad(M, p);
    if (rc < 0)
        return rc;
    if (maxpool) {
        if (!ints_all(p, "kernel_shape", 3, 0, 2) || !ints_all(p, "strides", 2, 1, 2) ||
            !ints_all(p, "pads", 1, 0, 4) || attr_i(p, "ceil_mode", 0) || !ints_all(p, "dilations", 1, 1, 2) ||
            p->n_output != 1)
            return node_err(M, p, RN_ERR_UNSUPPORTED, "a ResNet's max pool is 3x3, stride 2, padding 1");
    } else if (!ints_all(p, "kernel_shape", 2, 0, 2) || !ints_all(p, "strides", 2, 1, 2) ||
               !ints_all(p, "pads", 0, 0, 4) || attr_i(p, "ceil_mode", 0) != 1 ||
               attr_i(p, "count_include_pad", 0) != 0) {
        return node_err(M, p, RN_ERR_UNSUPPORTED,
                        "a ResNet-D shortcut pool is 2x2, stride 2, ceil mode, padding not counted");
    }
    M->visited[pi] = 1;
    return RN_OK;
}

/* The consumers of value x, all of them. */
static int consumers(struct matcher *M, const char *x, int *out, int max)
{
    struct value *v = find(M, x);
    if (!v)
        return 0;
    if (v->n_cons > max)
        return -1;
    for (int i = 0; i < v->n_cons && i < 4; i++)
        out[i] = v->cons[i];
    return v->n_cons;
}

/* One residual block from its input *x; p: the pre-activated input (v2) or
 * x. Names it PREFIX.*, checks its strides, moves *x to its output. */
static int match_block(struct matcher *M, const char *prefix, const char **x, const char *p, int *stride_out,
                       int first)
{
    int cons[4], nc = consumers(M, p, cons, 2), rc;
    if (nc <= 0)
        return rn_errf(M->err, M->errlen, RN_ERR_ARCH, "value %.100s feeds %s nodes; a block input feeds one or two",
                       p, nc < 0 ? "more than 2" : "no");
    /* for v2, the identity shortcut reads x, which also feeds the norm */
    struct unit a[3], b[3];
    int na = 0, nb = 0, adda = -1, addb = -1, pool = -1;
    if (nc == 2 && !is_op(M->g->node[cons[0]], "Conv")) { /* the branch's Conv first */
        int t = cons[0];
        cons[0] = cons[1];
        cons[1] = t;
    }
    if ((rc = match_chain(M, cons[0], a, &na, &adda)) < 0)
        return rc;
    if (nc == 2) {
        int c1 = cons[1];
        if (is_op(M->g->node[c1], "AveragePool")) {
            if ((rc = check_pool(M, c1, 0)) < 0)
                return rc;
            if (M->qdq && (rc = qdq_same(M, M->g->node[c1]->input[0], M->g->node[c1]->output[0],
                                         "the shortcut's average pool")) < 0)
                return rc;
            pool = c1;
            c1 = sole(M, M->g->node[c1]->output[0]);
            if (c1 < 0)
                return node_err(M, M->g->node[pool], RN_ERR_ARCH, "expected a Conv alone after it");
        }
        if (is_op(M->g->node[c1], "Add")) {
            addb = c1; /* the identity, seen from the add */
        } else if ((rc = match_chain(M, c1, b, &nb, &addb)) < 0) {
            return rc;
        }
        if (nb > na && pool >= 0)
            return node_err(M, M->g->node[pool], RN_ERR_ARCH, "a pool on the residual branch");
        if (nb > na) { /* the longer chain is the branch */
            struct unit t[3];
            memcpy(t, a, sizeof t);
            memcpy(a, b, sizeof t);
            memcpy(b, t, sizeof t);
            int tn = na;
            na = nb;
            nb = tn;
        }
        if (adda != addb)
            return node_err(M, M->g->node[adda], RN_ERR_ARCH, "the two paths of a block meet in different Adds");
    }
    if (na < 2)
        return node_err(M, M->g->node[a[0].conv], RN_ERR_ARCH, "a residual branch of one convolution");
    if (nb > 1)
        return node_err(M, M->g->node[b[0].conv], RN_ERR_ARCH, "a projection shortcut of %d convolutions", nb);
    node_t *add = M->g->node[adda];
    if (add->n_input != 2 || add->n_output != 1)
        return node_err(M, add, RN_ERR_ARCH, "expected two inputs");
    const char *other = !strcmp(add->input[0], a[na - 1].out) ? add->input[1]
                        : !strcmp(add->input[1], a[na - 1].out) ? add->input[0] : NULL;
    const char *shortcut = nb ? b[0].out : *x;
    if (!other || strcmp(other, shortcut))
        return node_err(M, add, RN_ERR_ARCH, "does not add the residual branch to the shortcut");
    if (nb && pool < 0 && M->avg_down == 1 && !M->v2)
        return node_err(M, M->g->node[b[0].conv], RN_ERR_ARCH, "a conv shortcut where others pool first");
    for (int i = 0; i < na; i++)
        if ((i < na - 1) != (a[i].relu != -1))
            return node_err(M, M->g->node[a[i].conv], RN_ERR_ARCH, "%s Relu", i < na - 1 ? "expected a" : "unexpected");
    if (nb && b[0].relu != -1)
        return node_err(M, M->g->node[b[0].conv], RN_ERR_ARCH, "a Relu on the shortcut");
    M->visited[adda] = 1;
    const char *out = add->output[0];
    if (!M->v2) {
        int r = sole(M, out);
        if (r >= 0 && is_op(M->g->node[r], "Relu")) {
            M->visited[r] = 1;
            out = M->g->node[r]->output[0];
        } else if (!qdq_relu(M, out)) {
            return node_err(M, add, RN_ERR_ARCH, "expected a Relu alone after the sum");
        }
    }
    /* which convolution strides tells the variant; the builder assumes it */
    int bottleneck = na == 3, stride = 1;
    for (int i = 0; i < na; i++)
        stride = RN_MAX(stride, a[i].stride);
    if (pool >= 0)
        stride = 2;
    if (first && stride != 1)
        return node_err(M, M->g->node[a[0].conv], RN_ERR_UNSUPPORTED, "the first block strides");
    if (M->bottleneck >= 0 && M->bottleneck != bottleneck)
        return node_err(M, M->g->node[a[0].conv], RN_ERR_ARCH, "basic and bottleneck blocks mixed");
    M->bottleneck = bottleneck;
    int where = 0; /* the conv that strides */
    if (bottleneck) {
        where = a[0].stride == 2 && stride == 2 && !M->v2 ? 0 : 1;
        if (stride == 2 && !M->v2) {
            if (M->variant_seen && M->variant_v1 != (where == 0))
                return node_err(M, M->g->node[a[0].conv], RN_ERR_UNSUPPORTED, "v1 and v1.5 blocks mixed");
            M->variant_seen = 1;
            M->variant_v1 = where == 0;
        }
    }
    for (int i = 0; i < na; i++)
        if ((rc = expect_stride(M, &a[i], i == where ? stride : 1)) < 0)
            return rc;
    if (nb && (rc = expect_stride(M, &b[0], pool >= 0 ? 1 : stride)) < 0)
        return rc;
    if (!nb && stride != 1)
        return node_err(M, add, RN_ERR_ARCH, "an identity shortcut on a block that strides");
    if (pool >= 0)
        M->avg_down = 1;
    else if (nb && M->avg_down < 0)
        M->avg_down = 0;
    char cn[160], bn[160];
    for (int i = 0; i < na; i++) {
        snprintf(cn, sizeof cn, "%s.conv%d", prefix, i + 1);
        if (M->v2)
            snprintf(bn, sizeof bn, "%s.norm%d", prefix, i + 2);
        else
            snprintf(bn, sizeof bn, "%s.bn%d", prefix, i + 1);
        if ((rc = name_unit(M, &a[i], cn, M->v2 && i == na - 1 ? NULL : bn, i < na - 1 ? a[i].out : out,
                            i < na - 1 || !M->v2)) < 0)
            return rc;
    }
    if (nb) {
        if (M->v2) {
            snprintf(cn, sizeof cn, "%s.downsample.conv", prefix);
            rc = name_unit(M, &b[0], cn, NULL, b[0].out, 0);
        } else {
            snprintf(cn, sizeof cn, "%s.downsample.%d", prefix, pool >= 0 ? 1 : 0);
            snprintf(bn, sizeof bn, "%s.downsample.%d", prefix, pool >= 0 ? 2 : 1);
            rc = name_unit(M, &b[0], cn, bn, b[0].out, 0);
        }
        if (rc < 0)
            return rc;
    }
    *x = out;
    *stride_out = stride;
    return RN_OK;
}

/* A batch norm on the graph input itself, before the stem (MXNet's
 * bn_data): tensors input_norm.*, a plan op of its own (it does not fold
 * into the zero-padded convolution after it). *out: its output. */
static int match_input_norm(struct matcher *M, int bi, const char **out)
{
    node_t *b = M->g->node[bi];
    int rc;
    if ((rc = check_bn(M, b)) < 0 || (rc = name_bn(M, b, "input_norm")) < 0)
        return rc;
    M->visited[bi] = 1;
    *out = b->output[0];
    return RN_OK;
}

/* A QDQ graph's image quantization (input_scale, input_zero_point), from
 * the value the stem reads; a pool that keeps its input's quantization. */
static int qdq_input(struct matcher *M, const char *in, const char *pool_out, const char *stem_out)
{
    const struct qact *a = qact_of(M, in);
    if (!a)
        return rn_errf(M->err, M->errlen, RN_ERR_UNSUPPORTED,
                       "the stem reads %.100s, which is not quantized (a QDQ graph quantizes the image)", in);
    uint8_t z = (uint8_t)a->zp;
    int rc = add_scalar(M, "input_scale", ST_F32, &a->scale);
    if (rc == RN_OK)
        rc = add_scalar(M, "input_zero_point", ST_U8, &z);
    return rc < 0 ? rc : qdq_same(M, stem_out, pool_out, "the max pool's");
}

/* The stem, from the graph input to after its max pool. */
static int match_stem(struct matcher *M, const char *in, const char **x)
{
    int c = sole(M, in), rc;
    if (c >= 0 && is_op(M->g->node[c], "BatchNormalization")) {
        if ((rc = match_input_norm(M, c, &in)) < 0)
            return rc;
        c = sole(M, in);
    }
    if (c < 0)
        return rn_errf(M->err, M->errlen, RN_ERR_ARCH, "graph input %.100s does not feed one Conv; not a ResNet", in);
    struct unit u[3];
    int n = 0;
    for (;;) {
        if ((rc = match_unit(M, c, &u[n])) < 0)
            return rc;
        n++;
        int next = sole(M, u[n - 1].out);
        if (next < 0)
            return node_err(M, M->g->node[u[n - 1].conv], RN_ERR_ARCH, "expected a MaxPool alone after the stem");
        if (is_op(M->g->node[next], "MaxPool")) {
            if ((rc = check_pool(M, next, 1)) < 0)
                return rc;
            *x = M->g->node[next]->output[0];
            break;
        }
        if (n == 3)
            return node_err(M, M->g->node[next], RN_ERR_ARCH, "expected the stem's MaxPool");
        c = next;
    }
    if (n == 2)
        return node_err(M, M->g->node[u[1].conv], RN_ERR_ARCH, "a stem of two convolutions");
    /* pre-activation: the stem's output is not activated (timm), or it is
     * and the first block starts with a batch norm (MXNet's v2) */
    int cons[4], nc = consumers(M, *x, cons, 2), preact_blocks = 0;
    for (int i = 0; i < nc; i++)
        preact_blocks |= is_op(M->g->node[cons[i]], "BatchNormalization");
    M->v2 = u[n - 1].relu == -1 || preact_blocks;
    int stem_norm = M->v2 && u[n - 1].relu != -1;
    if (M->qdq && M->v2)
        return node_err(M, M->g->node[u[0].conv], RN_ERR_UNSUPPORTED,
                        "a pre-activation (v2) ResNet in a QDQ graph; only v1 ResNets (and ResNet-D) load from QDQ");
    if (M->qdq && (rc = qdq_input(M, in, *x, u[n - 1].out)) < 0)
        return rc;
    if (n == 1) {
        if (u[0].k != 7 || u[0].stride != 2)
            return node_err(M, M->g->node[u[0].conv], RN_ERR_UNSUPPORTED, "a %dx%d stride-%d stem; expected 7x7 stride 2",
                            u[0].k, u[0].k, u[0].stride);
        if (stem_norm && u[0].bn < 0)
            return node_err(M, M->g->node[u[0].conv], RN_ERR_UNSUPPORTED,
                            "a pre-activation stem with a Relu but no batch norm");
        if (M->v2 && !stem_norm &&
            (u[0].bn >= 0 || (M->g->node[u[0].conv]->n_input > 2 && *M->g->node[u[0].conv]->input[2])))
            return node_err(M, M->g->node[u[0].conv], RN_ERR_UNSUPPORTED, "a pre-activation stem with a bias or batch norm");
        return M->v2 ? name_unit(M, &u[0], "stem.conv", stem_norm ? "stem.norm" : NULL, NULL, 0)
                     : name_unit(M, &u[0], "conv1", "bn1", u[0].out, 1);
    }
    if (stem_norm)
        return node_err(M, M->g->node[u[0].conv], RN_ERR_UNSUPPORTED,
                        "a deep stem that activates its output before pre-activation blocks");
    for (int i = 0; i < 3; i++) {
        if (u[i].k != 3 || u[i].stride != (i ? 1 : 2))
            return node_err(M, M->g->node[u[i].conv], RN_ERR_UNSUPPORTED, "a deep stem is 3x3 convolutions, the first stride 2");
        if (i < 2 && u[i].relu == -1)
            return node_err(M, M->g->node[u[i].conv], RN_ERR_ARCH, "expected a Relu");
    }
    static const char *const c1[3] = {"conv1.0", "conv1.3", "conv1.6"}, *const b1[3] = {"conv1.1", "conv1.4", "bn1"};
    static const char *const c2[3] = {"stem.conv1", "stem.conv2", "stem.conv3"}, *const b2[3] = {"stem.norm1", "stem.norm2", NULL};
    for (int i = 0; i < 3; i++)
        if ((rc = name_unit(M, &u[i], M->v2 ? c2[i] : c1[i], M->v2 ? b2[i] : b1[i], u[i].out, u[i].relu != -1)) < 0)
            return rc;
    return RN_OK;
}

/* Global pooling, flattening and the classifier, from value x. */
static int match_head(struct matcher *M, const char *x, int gap)
{
    node_t *g = M->g->node[gap];
    M->visited[gap] = 1;
    const char *fcw = M->v2 ? "head.fc.weight" : "fc.weight", *fcb = M->v2 ? "head.fc.bias" : "fc.bias";
    int n = sole(M, g->output[0]), rc;
    if (n < 0)
        return node_err(M, g, RN_ERR_ARCH, "expected one node after the global pool");
    node_t *nd = M->g->node[n];
    if (is_op(nd, "Conv")) { /* timm's head: a 1x1 convolution, then Flatten */
        size_t nd2 = 0;
        const int64_t *wd = init_dims(M, nd, 1, &nd2);
        if (!wd || nd2 != 4 || wd[2] != 1 || wd[3] != 1 || nd->n_input != 3)
            return node_err(M, nd, RN_ERR_ARCH, "a classifier must be a 1x1 Conv with a bias");
        M->visited[n] = 1;
        if ((rc = take_init(M, nd, 1, fcw, 0)) < 0 || (rc = take_init(M, nd, 2, fcb, 0)) < 0)
            return rc;
        int fl = sole(M, nd->output[0]);
        if (fl < 0 || !(is_op(M->g->node[fl], "Flatten") || is_op(M->g->node[fl], "Reshape")))
            return node_err(M, nd, RN_ERR_ARCH, "expected a Flatten after the classifier");
        M->visited[fl] = 1;
        if (is_op(M->g->node[fl], "Reshape"))
            for (size_t i = 1; i < M->g->node[fl]->n_input; i++) {
                struct value *v = find(M, M->g->node[fl]->input[i]);
                if (v && v->producer >= 0 && is_op(M->g->node[v->producer], "Constant"))
                    M->visited[v->producer] = 1;
            }
        return RN_OK;
    }
    if (!is_op(nd, "Flatten") && !is_op(nd, "Reshape"))
        return node_err(M, nd, RN_ERR_ARCH, "expected Flatten or Reshape after the global pool");
    if (is_op(nd, "Flatten") && attr_i(nd, "axis", 1) != 1)
        return node_err(M, nd, RN_ERR_UNSUPPORTED, "axis %lld; expected 1", (long long)attr_i(nd, "axis", 1));
    M->visited[n] = 1;
    for (size_t i = 1; is_op(nd, "Reshape") && i < nd->n_input; i++) {
        struct value *v = find(M, nd->input[i]);
        if (v && v->producer >= 0) {
            if (!is_op(M->g->node[v->producer], "Constant"))
                return node_err(M, nd, RN_ERR_UNSUPPORTED, "a shape computed by other nodes");
            M->visited[v->producer] = 1;
        }
    }
    int fc = sole(M, nd->output[0]);
    if (fc < 0)
        return node_err(M, nd, RN_ERR_ARCH, "expected one classifier after it");
    node_t *f = M->g->node[fc];
    M->visited[fc] = 1;
    if (is_op(f, "Gemm")) {
        const Onnx__AttributeProto *al = attr(f, "alpha"), *be = attr(f, "beta");
        if ((al && al->f != 1.0f) || (be && be->f != 1.0f) || attr_i(f, "transA", 0) || f->n_input != 3)
            return node_err(M, f, RN_ERR_UNSUPPORTED, "only alpha 1, beta 1, transA 0 and a bias C");
        return (rc = take_init(M, f, 1, fcw, !attr_i(f, "transB", 0))) < 0 ? rc : take_init(M, f, 2, fcb, 0);
    }
    if (is_op(f, "MatMul")) {
        int a = sole(M, f->output[0]);
        if (a < 0 || !is_op(M->g->node[a], "Add") || M->g->node[a]->n_input != 2)
            return node_err(M, f, RN_ERR_ARCH, "expected an Add of the bias after the MatMul");
        node_t *ad = M->g->node[a];
        M->visited[a] = 1;
        if ((rc = take_init(M, f, 1, fcw, 1)) < 0)
            return rc;
        return take_init(M, ad, strcmp(ad->input[0], f->output[0]) ? 0 : 1, fcb, 0);
    }
    (void)x;
    return node_err(M, f, RN_ERR_ARCH, "expected the classifier (Gemm, or MatMul + Add)");
}

static int add_meta(struct matcher *M, const char *k, const char *v)
{
    st_file *f = M->f;
    const char **nk = realloc(f->meta_keys, (size_t)(f->n_meta + 2) * sizeof *nk);
    if (!nk)
        return nomem(M);
    f->meta_keys = nk;
    const char **nv = realloc(f->meta_values, (size_t)(f->n_meta + 2) * sizeof *nv);
    if (!nv)
        return nomem(M);
    f->meta_values = nv;
    char *ks = own(M, strdup(k)), *vs = ks ? own(M, strdup(v)) : NULL;
    if (!vs)
        return nomem(M);
    f->meta_keys[f->n_meta] = ks;
    f->meta_values[f->n_meta++] = vs;
    f->meta_keys[f->n_meta] = f->meta_values[f->n_meta] = NULL;
    return RN_OK;
}

static int match(struct matcher *M, const Onnx__ModelProto *model)
{
    int rc;
    if ((rc = qdq_strip(M)) < 0 || (rc = index_graph(M)) < 0)
        return rc;
    Onnx__GraphProto *g = M->g;
    const char *in = NULL;
    for (size_t i = 0; i < g->n_input && !in; i++) {
        struct value *v = find(M, g->input[i]->name);
        if (v && !v->init)
            in = v->name;
    }
    if (!in)
        return rn_errf(M->err, M->errlen, RN_ERR_ARCH, "the graph has no input that is not an initializer");
    M->bottleneck = M->avg_down = -1;
    const char *x = NULL;
    if ((rc = match_stem(M, in, &x)) < 0)
        return rc;
    int s = 0, b = 0, nblocks = 0;
    for (;;) {
        int cons[4], nc = consumers(M, x, cons, 2);
        if (nc <= 0)
            return rn_errf(M->err, M->errlen, RN_ERR_ARCH, "value %.100s feeds %s; expected a block or the head", x,
                           nc < 0 ? "more than 2 nodes" : "nothing");
        const char *p = x;
        char prefix[96];
        int head = -1;
        if (M->v2) {
            int bi = nc == 1 ? cons[0] : is_op(g->node[cons[0]], "BatchNormalization") ? cons[0] : cons[1];
            /* the final norm or a block's norm1: which, is seen after it */
            snprintf(prefix, sizeof prefix, "stages.%d.blocks.%d", s, b);
            int r = is_op(g->node[bi], "BatchNormalization") ? sole(M, g->node[bi]->output[0]) : -1;
            int after = r >= 0 ? sole(M, g->node[r]->output[0]) : -1;
            if (nc == 1 && after >= 0 && is_op(g->node[after], "GlobalAveragePool")) {
                if ((rc = match_preact(M, bi, "norm", &p)) < 0)
                    return rc;
                head = after;
            } else {
                char nn[128];
                snprintf(nn, sizeof nn, "%s.norm1", prefix); /* renamed below if the stage changes */
                if ((rc = match_preact(M, bi, nn, &p)) < 0)
                    return rc;
            }
        } else if (nc == 1 && is_op(g->node[cons[0]], "GlobalAveragePool")) {
            head = cons[0];
        }
        if (head >= 0) {
            if (!nblocks)
                return node_err(M, g->node[head], RN_ERR_ARCH, "a ResNet without residual blocks");
            if ((rc = match_head(M, p, head)) < 0)
                return rc;
            break;
        }
        if (nblocks >= 4096)
            return rn_errf(M->err, M->errlen, RN_ERR_ARCH, "more than 4096 blocks");
        int first_tensor = M->f->n_tensors, stride = 1;
        snprintf(prefix, sizeof prefix, M->v2 ? "stages.%d.blocks.%d" : "layer%d.%d", M->v2 ? s : s + 1, b);
        if ((rc = match_block(M, prefix, &x, p, &stride, nblocks == 0)) < 0)
            return rc;
        if (stride == 2) { /* a new stage: rename this block's tensors */
            if (s + 1 >= RN_MAX_STAGES)
                return rn_errf(M->err, M->errlen, RN_ERR_ARCH, "more than %d stages", RN_MAX_STAGES);
            s++;
            b = 0;
            char np[96];
            snprintf(np, sizeof np, M->v2 ? "stages.%d.blocks.%d" : "layer%d.%d", M->v2 ? s : s + 1, b);
            int from = M->v2 ? first_tensor - 4 : first_tensor; /* v2: norm1 came first */
            for (int t = from; t < M->f->n_tensors; t++) {
                const char *old = M->f->tensors[t].name;
                char nn[256];
                snprintf(nn, sizeof nn, "%s%s", np, old + strlen(prefix));
                char *dup = own(M, strdup(nn));
                if (!dup)
                    return nomem(M);
                M->f->tensors[t].name = dup;
            }
        }
        b++;
        nblocks++;
    }
    /* every node must have been part of the ResNet */
    for (size_t i = 0; i < g->n_node; i++)
        if (!M->visited[i])
            return node_err(M, g->node[i], RN_ERR_UNSUPPORTED, "not part of a ResNet this reader knows");
    /* the classifier's output is the graph's */
    /* metadata: the graph's own, then what the names cannot say */
    for (size_t i = 0; i < model->n_metadata_props; i++) {
        const Onnx__StringStringEntryProto *e = model->metadata_props[i];
        if (e->key && e->value && strcmp(e->key, "resnet.variant") && strcmp(e->key, "resnet.bn_eps") &&
            strcmp(e->key, "resnet.quantization") &&
            (rc = add_meta(M, e->key, e->value)) < 0)
            return rc;
    }
    char buf[64];
    if (!M->v2 && M->variant_v1 && (rc = add_meta(M, "resnet.variant", "v1")) < 0)
        return rc;
    snprintf(buf, sizeof buf, "%.7g", M->eps_seen ? M->eps : 1e-5);
    if ((rc = add_meta(M, "resnet.bn_eps", buf)) < 0)
        return rc;
    if (M->v2 && (rc = add_meta(M, "resnet.avg_down", M->avg_down == 1 ? "true" : "false")) < 0)
        return rc;
    if (M->qdq && (rc = add_meta(M, "resnet.quantization",
                                 "{\"version\":1,\"from\":\"ONNX QDQ\",\"weights\":\"s8 per-channel\","
                                 "\"activations\":\"per-tensor, with zero points\"}")) < 0)
        return rc;
    char src[300];
    const char *pv = model->producer_version ? model->producer_version : "";
    snprintf(src, sizeof src, "ONNX graph %.80s (ir_version %lld, by %.60s%s%.40s)", g->name ? g->name : "",
             (long long)model->ir_version, model->producer_name ? model->producer_name : "unknown",
             *pv ? " " : "", pv);
    if (!st_meta(M->f, "resnet.source") && (rc = add_meta(M, "resnet.source", src)) < 0)
        return rc;
    return RN_OK;
}

/* protobuf-c decodes nested messages recursively, so a graph nested in an
 * attribute of a node of a graph ... a million deep would exhaust the stack:
 * the wire format is walked first along onnx.proto's recursive fields, and
 * nesting deeper than MAX_DEPTH is refused. */
#define MAX_DEPTH 32
enum { W_MODEL, W_GRAPH, W_NODE, W_ATTR, W_VINFO, W_TYPE, W_TYPE1, W_TYPE2, W_TRAIN, W_FUNC, W_NONE };

static int sub_of(int kind, uint64_t field)
{
    static const struct { int kind; int field; int sub; } t[] = {
        {W_MODEL, 7, W_GRAPH},  {W_MODEL, 20, W_TRAIN}, {W_MODEL, 25, W_FUNC},  {W_GRAPH, 1, W_NODE},
        {W_GRAPH, 11, W_VINFO}, {W_GRAPH, 12, W_VINFO}, {W_GRAPH, 13, W_VINFO}, {W_NODE, 5, W_ATTR},
        {W_ATTR, 6, W_GRAPH},   {W_ATTR, 11, W_GRAPH},  {W_ATTR, 14, W_TYPE},   {W_ATTR, 15, W_TYPE},
        {W_VINFO, 2, W_TYPE},   {W_TYPE, 4, W_TYPE1},   {W_TYPE, 9, W_TYPE1},   {W_TYPE, 5, W_TYPE2},
        {W_TYPE1, 1, W_TYPE},   {W_TYPE2, 2, W_TYPE},   {W_TRAIN, 1, W_GRAPH},  {W_TRAIN, 2, W_GRAPH},
        {W_FUNC, 7, W_NODE},
    };
    for (size_t i = 0; i < RN_ARRAY_LEN(t); i++)
        if (t[i].kind == kind && (uint64_t)t[i].field == field)
            return t[i].sub;
    return W_NONE;
}

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int s = 0; s < 64 && *p < end; s += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << s;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

/* 0, or -1 when too deep; malformed bytes are left to protobuf-c. An
 * explicit stack: nothing here recurses either. */
static int depth_ok(const uint8_t *p, size_t size)
{
    struct { const uint8_t *p, *end; int kind; } st[MAX_DEPTH + 1];
    int top = 0;
    st[0].p = p;
    st[0].end = p + size;
    st[0].kind = W_MODEL;
    while (top >= 0) {
        if (st[top].p >= st[top].end) {
            top--;
            continue;
        }
        uint64_t key, v;
        if (varint(&st[top].p, st[top].end, &key) < 0)
            return 0;
        switch (key & 7) {
        case 0:
            if (varint(&st[top].p, st[top].end, &v) < 0)
                return 0;
            break;
        case 1:
        case 5: {
            size_t n = (key & 7) == 1 ? 8 : 4;
            if ((size_t)(st[top].end - st[top].p) < n)
                return 0;
            st[top].p += n;
            break;
        }
        case 2: {
            if (varint(&st[top].p, st[top].end, &v) < 0 || v > (uint64_t)(st[top].end - st[top].p))
                return 0;
            const uint8_t *body = st[top].p;
            st[top].p += v;
            int sub = sub_of(st[top].kind, key >> 3);
            if (sub != W_NONE) {
                if (top == MAX_DEPTH)
                    return -1;
                top++;
                st[top].p = body;
                st[top].end = body + v;
                st[top].kind = sub;
            }
            break;
        }
        default:
            return 0;
        }
    }
    return 0;
}

int onnx_is_onnx(const void *data, size_t size)
{
    /* field 1 (ir_version, varint) first, as every exporter writes it */
    const uint8_t *p = data;
    return size >= 2 && p[0] == 0x08 && p[1] >= 1 && p[1] < 0x80;
}

int onnx_parse(const void *data, size_t size, const char *dir, st_file *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    struct onnx_priv *P = calloc(1, sizeof *P);
    if (!P)
        return rn_errf(err, errlen, RN_ERR_NOMEM, "out of memory");
    f->base = data;
    f->size = size;
    f->format = "onnx";
    f->priv = P;
    f->release = release;
    struct matcher M = {.f = f, .P = P, .dir = dir, .err = err, .errlen = errlen};
    int rc;
    if (depth_ok(data, size) < 0) {
        rc = rn_errf(err, errlen, RN_ERR_FORMAT, "graphs or types nested more than %d deep", MAX_DEPTH);
        goto out;
    }
    P->model = onnx__model_proto__unpack(NULL, size, data);
    if (!P->model) {
        rc = rn_errf(err, errlen, RN_ERR_FORMAT, "not a valid ONNX ModelProto (protobuf decoding failed)");
        goto out;
    }
    if (!P->model->graph) {
        rc = rn_errf(err, errlen, RN_ERR_FORMAT, "the ModelProto has no graph");
        goto out;
    }
    M.g = P->model->graph;
    rc = match(&M, P->model);
out:
    free(M.vals);
    free(M.visited);
    if (rc < 0) {
        rn_err_prefix(err, errlen, "onnx");
        st_close(f);
    }
    return rc;
}
