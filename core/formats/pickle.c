/* A safe subset of Python's unpickler (see core/formats/pickle.h), in the spirit of
 * PyTorch's weights-only unpickler: the opcodes of protocols 0-5 that
 * torch.save emits, a stack machine over values kept in one arena, and an
 * interpretation of the few globals that rebuild tensors. Nothing is ever
 * called: an unknown global is a name, and calling it yields a value that
 * says so. Nothing recurses, so a deeply nested pickle costs only memory,
 * which the bounds below cap.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pickle.h"

#define PK_MAX_VALUES (1u << 20) /* a ResNet-152 state_dict makes about 25,000 */
#define PK_MAX_MEMO (1u << 20)   /* memo indices are dense from 0 */
#define PK_MAX_STACK (1u << 20)
#define PK_MAX_MARKS 64          /* torch.save nests marks 3 deep */

struct machine {
    const uint8_t *p, *end, *start;
    size_t base;
    pk_arena *a;
    pk_value **stack;
    size_t n, cap;
    size_t marks[PK_MAX_MARKS];
    int n_marks;
    pk_value **memo;
    size_t memo_cap, memo_n;
    int fail; /* the status of new_value's failure */
    size_t at; /* the opcode's offset, for messages */
    char *err;
    size_t errlen;
};

/* A message "pickle byte N: ..." and status. */
__attribute__((format(printf, 3, 4))) static int fail(struct machine *M, int status,
                                                      const char *fmt, ...)
{
    if (M->err && M->errlen) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(M->err, M->errlen, "pickle byte %zu: %s", M->base + M->at, msg);
    }
    return status;
}
#define FAIL fail

static pk_value *new_value(struct machine *M, int kind)
{
    pk_arena *a = M->a;
    M->fail = RN_ERR_FORMAT;
    if (a->n >= PK_MAX_VALUES) {
        FAIL(M, RN_ERR_FORMAT, "more than %u values; not a state_dict", PK_MAX_VALUES);
        return NULL;
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 1024;
        pk_value **na = realloc(a->all, cap * sizeof *na);
        if (!na)
            goto nomem;
        a->all = na;
        a->cap = cap;
    }
    pk_value *v = calloc(1, sizeof *v);
    if (!v)
        goto nomem;
    v->kind = kind;
    v->at = M->base + M->at;
    a->all[a->n++] = v;
    return v;
nomem:
    M->fail = rn_errf(M->err, M->errlen, RN_ERR_NOMEM, "out of memory");
    return NULL;
}

static int push(struct machine *M, pk_value *v)
{
    if (!v)
        return M->fail;
    if (M->n >= PK_MAX_STACK)
        return FAIL(M, RN_ERR_FORMAT, "stack deeper than %u", PK_MAX_STACK);
    if (M->n == M->cap) {
        size_t cap = M->cap ? 2 * M->cap : 256;
        pk_value **ns = realloc(M->stack, cap * sizeof *ns);
        if (!ns)
            return rn_errf(M->err, M->errlen, RN_ERR_NOMEM, "out of memory");
        M->stack = ns;
        M->cap = cap;
    }
    M->stack[M->n++] = v;
    return RN_OK;
}

static pk_value *pop(struct machine *M)
{
    size_t floor = M->n_marks ? M->marks[M->n_marks - 1] : 0;
    if (M->n <= floor) {
        FAIL(M, RN_ERR_FORMAT, "stack underflow");
        return NULL;
    }
    return M->stack[--M->n];
}

static pk_value *top(struct machine *M)
{
    size_t floor = M->n_marks ? M->marks[M->n_marks - 1] : 0;
    if (M->n <= floor) {
        FAIL(M, RN_ERR_FORMAT, "stack underflow");
        return NULL;
    }
    return M->stack[M->n - 1];
}

/* The items since the last mark: *first indexes the stack; the mark is popped. */
static int pop_mark(struct machine *M, size_t *first)
{
    if (!M->n_marks)
        return FAIL(M, RN_ERR_FORMAT, "no mark on the stack");
    *first = M->marks[--M->n_marks];
    return RN_OK;
}

static int add_item(struct machine *M, pk_value *c, pk_value *v)
{
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 4;
        if (cap > (int)PK_MAX_STACK * 2)
            return FAIL(M, RN_ERR_FORMAT, "container of more than %u items", PK_MAX_STACK);
        pk_value **nv = realloc(c->v, (size_t)cap * sizeof *nv);
        if (!nv)
            return rn_errf(M->err, M->errlen, RN_ERR_NOMEM, "out of memory");
        c->v = nv;
        c->cap = cap;
    }
    c->v[c->n++] = v;
    return RN_OK;
}

static int make_tuple(struct machine *M, size_t first)
{
    pk_value *t = new_value(M, PK_TUPLE);
    if (!t)
        return RN_ERR_NOMEM;
    for (size_t i = first; i < M->n; i++)
        if (add_item(M, t, M->stack[i]) < 0)
            return RN_ERR_NOMEM;
    M->n = first;
    return push(M, t);
}

static int memo_put(struct machine *M, uint64_t idx)
{
    if (idx >= PK_MAX_MEMO)
        return FAIL(M, RN_ERR_FORMAT, "memo index %llu too large (at most %u)",
                    (unsigned long long)idx, PK_MAX_MEMO - 1);
    pk_value *v = top(M);
    if (!v)
        return RN_ERR_FORMAT;
    if (idx >= M->memo_cap) {
        size_t cap = M->memo_cap ? M->memo_cap : 256;
        while (cap <= idx)
            cap *= 2;
        pk_value **nm = realloc(M->memo, cap * sizeof *nm);
        if (!nm)
            return rn_errf(M->err, M->errlen, RN_ERR_NOMEM, "out of memory");
        memset(nm + M->memo_cap, 0, (cap - M->memo_cap) * sizeof *nm);
        M->memo = nm;
        M->memo_cap = cap;
    }
    if (!M->memo[idx])
        M->memo_n++;
    M->memo[idx] = v;
    return RN_OK;
}

static int memo_get(struct machine *M, uint64_t idx)
{
    if (idx >= M->memo_cap || !M->memo[idx])
        return FAIL(M, RN_ERR_FORMAT, "memo index %llu was never stored", (unsigned long long)idx);
    return push(M, M->memo[idx]);
}

static int need(struct machine *M, size_t n)
{
    if ((size_t)(M->end - M->p) < n)
        return FAIL(M, RN_ERR_FORMAT, "truncated: %zu bytes wanted, %zu left", n,
                    (size_t)(M->end - M->p));
    return RN_OK;
}

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* A newline-terminated text argument (protocol 0): its length, p past it. */
static int line(struct machine *M, const char **s, size_t *len)
{
    const uint8_t *nl = memchr(M->p, '\n', (size_t)(M->end - M->p));
    if (!nl)
        return FAIL(M, RN_ERR_FORMAT, "truncated: text argument without a newline");
    *s = (const char *)M->p;
    *len = (size_t)(nl - M->p);
    M->p = nl + 1;
    return RN_OK;
}

static int text_uint(struct machine *M, uint64_t *out)
{
    const char *s = NULL;
    size_t len = 0;
    int rc = line(M, &s, &len);
    if (rc < 0)
        return rc;
    uint64_t v = 0;
    if (len == 0 || len > 18)
        return FAIL(M, RN_ERR_FORMAT, "bad decimal argument");
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return FAIL(M, RN_ERR_FORMAT, "bad decimal argument");
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return RN_OK;
}

static int push_int(struct machine *M, int64_t i)
{
    pk_value *v = new_value(M, PK_INT);
    if (v)
        v->i = i;
    return push(M, v);
}

static int push_str(struct machine *M, int kind, size_t len)
{
    int rc = need(M, len);
    if (rc < 0)
        return rc;
    pk_value *v = new_value(M, kind);
    if (v) {
        v->s = (const char *)M->p;
        v->len = len;
    }
    M->p += len;
    return push(M, v);
}

static int push_global(struct machine *M, const char *mod, size_t ml, const char *name, size_t nl)
{
    if (ml > 200 || nl > 200)
        return FAIL(M, RN_ERR_FORMAT, "global name longer than 200 bytes");
    pk_value *v = new_value(M, PK_GLOBAL);
    if (!v)
        return RN_ERR_NOMEM;
    char *s = malloc(ml + nl + 2);
    if (!s)
        return rn_errf(M->err, M->errlen, RN_ERR_NOMEM, "out of memory");
    memcpy(s, mod, ml);
    s[ml] = '.';
    memcpy(s + ml + 1, name, nl);
    s[ml + nl + 1] = '\0';
    for (size_t i = 0; i < ml + nl + 1; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
            s[i] = '?';
    v->s = s;
    v->len = ml + nl + 1;
    return push(M, v);
}

static int is_str(const pk_value *v, const char *s)
{
    return v && v->kind == PK_STR && v->len == strlen(s) && !memcmp(v->s, s, v->len);
}

static int is_global(const pk_value *v, const char *name)
{
    return v && v->kind == PK_GLOBAL && !strcmp(v->s, name);
}

/* An inert value standing for what Python would have run. */
static pk_value *inert(struct machine *M, const char *what, const pk_value *callable)
{
    pk_value *v = new_value(M, PK_CALL);
    if (!v)
        return NULL;
    const char *name = callable->kind == PK_GLOBAL || callable->kind == PK_CALL ? callable->s : "?";
    size_t len = strlen(what) + strlen(name) + 2;
    char *s = malloc(len);
    if (!s) {
        M->fail = rn_errf(M->err, M->errlen, RN_ERR_NOMEM, "out of memory");
        return NULL;
    }
    snprintf(s, len, "%s %s", what, name);
    v->s = s;
    v->len = len - 1;
    return v;
}

static const struct {
    const char *name;
    int dtype;
} storage_types[] = {
    {"torch.FloatStorage", ST_F32}, {"torch.HalfStorage", ST_F16},
    {"torch.BFloat16Storage", ST_BF16}, {"torch.DoubleStorage", ST_F64},
    {"torch.LongStorage", ST_I64},  {"torch.IntStorage", ST_I32},
    {"torch.ShortStorage", ST_I16}, {"torch.CharStorage", ST_I8},
    {"torch.ByteStorage", ST_U8},   {"torch.BoolStorage", ST_BOOL},
};

/* BINPERSID: ('storage', torch.XStorage, key, location, numel[, view]) */
static int persistent(struct machine *M)
{
    pk_value *pid = pop(M);
    if (!pid)
        return RN_ERR_FORMAT;
    if (pid->kind != PK_TUPLE || pid->n < 5 || !is_str(pid->v[0], "storage"))
        return FAIL(M, RN_ERR_FORMAT, "persistent id is not ('storage', type, key, location, numel)");
    const pk_value *type = pid->v[1], *key = pid->v[2], *numel = pid->v[4];
    if (type->kind != PK_GLOBAL)
        return FAIL(M, RN_ERR_FORMAT, "storage type is not a global");
    int dtype = -1;
    for (size_t i = 0; i < RN_ARRAY_LEN(storage_types); i++)
        if (!strcmp(type->s, storage_types[i].name))
            dtype = storage_types[i].dtype;
    if (dtype < 0)
        return FAIL(M, RN_ERR_UNSUPPORTED, "storage type %s is not supported", type->s);
    if (key->kind != PK_STR || key->len == 0 || key->len > 64)
        return FAIL(M, RN_ERR_FORMAT, "storage key is not a short string");
    if (numel->kind != PK_INT || numel->i < 0 || numel->i > (1ll << 40))
        return FAIL(M, RN_ERR_FORMAT, "storage size is not a valid count");
    if (pid->n > 5 && pid->v[5]->kind != PK_NONE)
        return FAIL(M, RN_ERR_UNSUPPORTED, "storage %.*s: views of storages (torch < 0.4) are not supported",
                    (int)key->len, key->s);
    pk_value *s = new_value(M, PK_STORAGE);
    if (!s)
        return RN_ERR_NOMEM;
    s->dtype = dtype;
    s->key = key->s;
    s->key_len = key->len;
    s->numel = numel->i;
    return push(M, s);
}

static int int_tuple(const pk_value *t, int64_t *out, int *n)
{
    if (t->kind != PK_TUPLE || t->n > PK_MAX_DIMS)
        return -1;
    for (int i = 0; i < t->n; i++) {
        if (t->v[i]->kind != PK_INT || t->v[i]->i < 0 || t->v[i]->i > (1ll << 40))
            return -1;
        out[i] = t->v[i]->i;
    }
    *n = t->n;
    return 0;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, ...) and _rebuild_tensor */
static pk_value *rebuild_tensor(struct machine *M, const pk_value *args)
{
    if (args->n < 4 || args->v[0]->kind != PK_STORAGE || args->v[1]->kind != PK_INT ||
        args->v[1]->i < 0 || args->v[1]->i > (1ll << 40)) {
        FAIL(M, RN_ERR_FORMAT, "_rebuild_tensor_v2: arguments are not (storage, offset, size, stride, ...)");
        return NULL;
    }
    pk_value *t = new_value(M, PK_TENSOR);
    if (!t)
        return NULL;
    int ns;
    t->storage = args->v[0];
    t->offset = args->v[1]->i;
    if (int_tuple(args->v[2], t->shape, &t->ndim) < 0 || int_tuple(args->v[3], t->stride, &ns) < 0 ||
        ns != t->ndim) {
        FAIL(M, RN_ERR_FORMAT, "_rebuild_tensor_v2: size and stride are not tuples of up to %d counts",
             PK_MAX_DIMS);
        return NULL;
    }
    return t;
}

/* REDUCE: the globals that rebuild tensors and containers are interpreted;
 * anything else becomes an inert value naming what would have been called. */
static int reduce(struct machine *M)
{
    pk_value *args = pop(M), *f = args ? pop(M) : NULL, *r;
    if (!f)
        return RN_ERR_FORMAT;
    if (args->kind != PK_TUPLE)
        return FAIL(M, RN_ERR_FORMAT, "REDUCE arguments are not a tuple");
    /* torch 2's _rebuild_from_type_v2(func, type, args, state): func(*args) */
    if (is_global(f, "torch._tensor._rebuild_from_type_v2") && args->n >= 3 &&
        args->v[2]->kind == PK_TUPLE) {
        f = args->v[0];
        args = args->v[2];
        if (is_global(f, "torch._tensor._rebuild_from_type_v2"))
            return FAIL(M, RN_ERR_FORMAT, "_rebuild_from_type_v2 of itself");
    }
    if (is_global(f, "torch._utils._rebuild_tensor_v2") || is_global(f, "torch._utils._rebuild_tensor")) {
        r = rebuild_tensor(M, args);
    } else if (is_global(f, "torch._utils._rebuild_parameter") ||
               is_global(f, "torch._utils._rebuild_parameter_with_state")) {
        if (args->n < 1 || args->v[0]->kind != PK_TENSOR)
            return FAIL(M, RN_ERR_FORMAT, "%s: first argument is not a tensor", f->s);
        r = args->v[0];
    } else if (is_global(f, "collections.OrderedDict")) {
        if (args->n != 0)
            return FAIL(M, RN_ERR_UNSUPPORTED, "collections.OrderedDict with arguments");
        r = new_value(M, PK_DICT);
    } else {
        r = inert(M, "a call of", f);
    }
    return r ? push(M, r) : RN_ERR_FORMAT;
}

static int setitems(struct machine *M, size_t first)
{
    if (first == 0)
        return FAIL(M, RN_ERR_FORMAT, "SETITEMS without a dict");
    pk_value *d = M->stack[first - 1];
    if ((M->n - first) % 2)
        return FAIL(M, RN_ERR_FORMAT, "SETITEMS with an odd number of items");
    if (d->kind == PK_CALL) { /* items of an object never made: dropped */
        M->n = first;
        return RN_OK;
    }
    if (d->kind != PK_DICT)
        return FAIL(M, RN_ERR_FORMAT, "SETITEMS on %s", pk_describe(d, (char[64]){0}, 64));
    for (size_t i = first; i < M->n; i++)
        if (add_item(M, d, M->stack[i]) < 0)
            return RN_ERR_NOMEM;
    M->n = first;
    return RN_OK;
}

static int appends(struct machine *M, size_t first)
{
    if (first == 0)
        return FAIL(M, RN_ERR_FORMAT, "APPENDS without a list");
    pk_value *l = M->stack[first - 1];
    if (l->kind == PK_CALL) {
        M->n = first;
        return RN_OK;
    }
    if (l->kind != PK_LIST)
        return FAIL(M, RN_ERR_FORMAT, "APPENDS on %s", pk_describe(l, (char[64]){0}, 64));
    for (size_t i = first; i < M->n; i++)
        if (add_item(M, l, M->stack[i]) < 0)
            return RN_ERR_NOMEM;
    M->n = first;
    return RN_OK;
}

static int step(struct machine *M, int op, int *stop)
{
    int rc;
    size_t first = 0;
    pk_value *v, *w;
    const char *s1 = NULL, *s2 = NULL;
    size_t l1 = 0, l2 = 0;
    uint64_t u = 0;
    switch (op) {
    case 0x80: /* PROTO */
        if ((rc = need(M, 1)) < 0)
            return rc;
        if (*M->p > 5)
            return FAIL(M, RN_ERR_UNSUPPORTED, "pickle protocol %d", *M->p);
        M->p++;
        return RN_OK;
    case 0x95: /* FRAME: a length hint */
        if ((rc = need(M, 8)) < 0)
            return rc;
        M->p += 8;
        return RN_OK;
    case '.': /* STOP */
        *stop = 1;
        return RN_OK;
    case '(': /* MARK */
        if (M->n_marks == PK_MAX_MARKS)
            return FAIL(M, RN_ERR_FORMAT, "marks nested deeper than %d", PK_MAX_MARKS);
        M->marks[M->n_marks++] = M->n;
        return RN_OK;
    case '0': /* POP */
        return pop(M) ? RN_OK : RN_ERR_FORMAT;
    case '1': /* POP_MARK */
        if ((rc = pop_mark(M, &first)) < 0)
            return rc;
        M->n = first;
        return RN_OK;
    case '2': /* DUP */
        return (v = top(M)) ? push(M, v) : RN_ERR_FORMAT;
    case 'N':
        return push(M, new_value(M, PK_NONE));
    case 0x88: /* NEWTRUE */
    case 0x89: /* NEWFALSE */
        if ((v = new_value(M, PK_BOOL)))
            v->i = op == 0x88;
        return push(M, v);
    case 'J': /* BININT */
        if ((rc = need(M, 4)) < 0)
            return rc;
        u = le(M->p, 4);
        M->p += 4;
        return push_int(M, (int32_t)(uint32_t)u);
    case 'K': /* BININT1 */
    case 'M': /* BININT2 */
        if ((rc = need(M, op == 'K' ? 1 : 2)) < 0)
            return rc;
        u = le(M->p, op == 'K' ? 1 : 2);
        M->p += op == 'K' ? 1 : 2;
        return push_int(M, (int64_t)u);
    case 'I': /* INT, text; "I01" is True */
        if ((rc = line(M, &s1, &l1)) < 0)
            return rc;
        {
            char buf[32];
            if (l1 == 0 || l1 >= sizeof buf)
                return FAIL(M, RN_ERR_FORMAT, "bad INT argument");
            memcpy(buf, s1, l1);
            buf[l1] = '\0';
            char *end;
            long long x = strtoll(buf, &end, 10);
            if (*end)
                return FAIL(M, RN_ERR_FORMAT, "bad INT argument");
            return push_int(M, x);
        }
    case 0x8a: /* LONG1 */
    case 0x8b: /* LONG4 */
        if ((rc = need(M, op == 0x8a ? 1 : 4)) < 0)
            return rc;
        u = le(M->p, op == 0x8a ? 1 : 4);
        M->p += op == 0x8a ? 1 : 4;
        if (u > 64)
            return FAIL(M, RN_ERR_FORMAT, "integer of %llu bytes", (unsigned long long)u);
        if ((rc = need(M, (size_t)u)) < 0)
            return rc;
        if (u > 8) { /* the legacy format's magic number: kept as bytes */
            if ((rc = push_str(M, PK_BYTES, (size_t)u)) < 0)
                return rc;
            M->stack[M->n - 1]->kind = PK_INT;
            M->stack[M->n - 1]->i = INT64_MIN;
            return RN_OK;
        }
        {
            uint64_t x = u ? le(M->p, (int)u) : 0;
            if (u && u < 8 && (M->p[u - 1] & 0x80))
                x |= ~0ull << (8 * u);
            M->p += u;
            return push_int(M, (int64_t)x);
        }
    case 'G': /* BINFLOAT, big-endian */
        if ((rc = need(M, 8)) < 0)
            return rc;
        if ((v = new_value(M, PK_FLOAT))) {
            uint64_t b = 0;
            for (int i = 0; i < 8; i++)
                b = b << 8 | M->p[i];
            memcpy(&v->f, &b, 8);
        }
        M->p += 8;
        return push(M, v);
    case 'X':  /* BINUNICODE */
    case 'T':  /* BINSTRING */
    case 'B':  /* BINBYTES */
    case 0x8c: /* SHORT_BINUNICODE */
    case 'U':  /* SHORT_BINSTRING */
    case 'C':  /* SHORT_BINBYTES */
    case 0x8d: /* BINUNICODE8 */
    case 0x8e: /* BINBYTES8 */
    {
        int n = op == 0x8c || op == 'U' || op == 'C' ? 1 : op == 0x8d || op == 0x8e ? 8 : 4;
        if ((rc = need(M, (size_t)n)) < 0)
            return rc;
        u = le(M->p, n);
        M->p += n;
        if (op == 'T' && u >= 0x80000000u)
            return FAIL(M, RN_ERR_FORMAT, "negative string length");
        if (u > (uint64_t)(M->end - M->p))
            return FAIL(M, RN_ERR_FORMAT, "string of %llu bytes runs past the end",
                        (unsigned long long)u);
        return push_str(M, op == 'B' || op == 'C' || op == 0x8e ? PK_BYTES : PK_STR, (size_t)u);
    }
    case ')': /* EMPTY_TUPLE */
        return push(M, new_value(M, PK_TUPLE));
    case 0x85: /* TUPLE1..3 */
    case 0x86:
    case 0x87:
        first = (size_t)(op - 0x84);
        if (M->n < first + (M->n_marks ? M->marks[M->n_marks - 1] : 0))
            return FAIL(M, RN_ERR_FORMAT, "stack underflow");
        return make_tuple(M, M->n - first);
    case 't': /* TUPLE */
        if ((rc = pop_mark(M, &first)) < 0)
            return rc;
        return make_tuple(M, first);
    case ']': /* EMPTY_LIST */
        return push(M, new_value(M, PK_LIST));
    case '}': /* EMPTY_DICT */
        return push(M, new_value(M, PK_DICT));
    case 'l': /* LIST */
    case 'd': /* DICT */
        if ((rc = pop_mark(M, &first)) < 0)
            return rc;
        if (op == 'd' && (M->n - first) % 2)
            return FAIL(M, RN_ERR_FORMAT, "DICT with an odd number of items");
        if (!(v = new_value(M, op == 'l' ? PK_LIST : PK_DICT)))
            return RN_ERR_NOMEM;
        for (size_t i = first; i < M->n; i++)
            if ((rc = add_item(M, v, M->stack[i])) < 0)
                return rc;
        M->n = first;
        return push(M, v);
    case 'a': /* APPEND */
        if (M->n < 2 + (M->n_marks ? M->marks[M->n_marks - 1] : 0))
            return FAIL(M, RN_ERR_FORMAT, "stack underflow");
        return appends(M, M->n - 1);
    case 'e': /* APPENDS */
        if ((rc = pop_mark(M, &first)) < 0)
            return rc;
        return appends(M, first);
    case 's': /* SETITEM */
        if (M->n < 3 + (M->n_marks ? M->marks[M->n_marks - 1] : 0))
            return FAIL(M, RN_ERR_FORMAT, "stack underflow");
        return setitems(M, M->n - 2);
    case 'u': /* SETITEMS */
        if ((rc = pop_mark(M, &first)) < 0)
            return rc;
        return setitems(M, first);
    case 'q': /* BINPUT */
    case 'r': /* LONG_BINPUT */
    case 'h': /* BINGET */
    case 'j': /* LONG_BINGET */
    {
        int n = op == 'q' || op == 'h' ? 1 : 4;
        if ((rc = need(M, (size_t)n)) < 0)
            return rc;
        u = le(M->p, n);
        M->p += n;
        return op == 'q' || op == 'r' ? memo_put(M, u) : memo_get(M, u);
    }
    case 'p': /* PUT, text */
    case 'g': /* GET, text */
        if ((rc = text_uint(M, &u)) < 0)
            return rc;
        return op == 'p' ? memo_put(M, u) : memo_get(M, u);
    case 0x94: /* MEMOIZE: the next index is the memo's size */
        return memo_put(M, M->memo_n);
    case 'c': /* GLOBAL module\nname\n */
        if ((rc = line(M, &s1, &l1)) < 0 || (rc = line(M, &s2, &l2)) < 0)
            return rc;
        return push_global(M, s1, l1, s2, l2);
    case 0x93: /* STACK_GLOBAL */
        if (!(w = pop(M)) || !(v = pop(M)))
            return RN_ERR_FORMAT;
        if (v->kind != PK_STR || w->kind != PK_STR)
            return FAIL(M, RN_ERR_FORMAT, "STACK_GLOBAL of non-strings");
        return push_global(M, v->s, v->len, w->s, w->len);
    case 'R': /* REDUCE */
        return reduce(M);
    case 0x81: /* NEWOBJ cls args */
    case 0x92: /* NEWOBJ_EX cls args kwargs */
        if (op == 0x92 && !pop(M))
            return RN_ERR_FORMAT;
        if (!pop(M) || !(v = pop(M)))
            return RN_ERR_FORMAT;
        return push(M, inert(M, "an instance of", v));
    case 'b': /* BUILD: the state of an object is not applied (OrderedDict's _metadata) */
        if (!pop(M) || !top(M))
            return RN_ERR_FORMAT;
        return RN_OK;
    case 'Q': /* BINPERSID */
        return persistent(M);
    }
    return FAIL(M, RN_ERR_UNSUPPORTED, "opcode 0x%02x (%c) is not supported", op,
                op >= 0x20 && op < 0x7f ? op : '?');
}

int pk_load(const uint8_t *data, size_t size, size_t base_offset, pk_arena *a, pk_value **root,
            size_t *used, char *err, size_t errlen)
{
    struct machine M = {.p = data, .end = data + size, .start = data, .base = base_offset, .a = a,
                        .err = err, .errlen = errlen};
    if (err && errlen)
        err[0] = '\0';
    int rc = RN_OK, stop = 0;
    while (!stop) {
        M.at = (size_t)(M.p - M.start);
        if (M.p == M.end) {
            rc = FAIL(&M, RN_ERR_FORMAT, "truncated: no STOP opcode");
            goto out;
        }
        int op = *M.p++;
        if ((rc = step(&M, op, &stop)) < 0)
            goto out;
    }
    if (M.n != 1 || M.n_marks) {
        rc = FAIL(&M, RN_ERR_FORMAT, "STOP with %zu values on the stack, expected one", M.n);
        goto out;
    }
    *root = M.stack[0];
    *used = (size_t)(M.p - M.start);
out:
    free(M.stack);
    free(M.memo);
    return rc;
}

void pk_free(pk_arena *a)
{
    for (size_t i = 0; i < a->n; i++) {
        pk_value *v = a->all[i];
        if (v->kind == PK_GLOBAL || v->kind == PK_CALL)
            free((char *)v->s);
        free(v->v);
        free(v);
    }
    free(a->all);
    memset(a, 0, sizeof *a);
}

pk_value *pk_dict_get(const pk_value *d, const char *key)
{
    if (!d || d->kind != PK_DICT)
        return NULL;
    for (int i = 0; i + 1 < d->n; i += 2)
        if (is_str(d->v[i], key))
            return d->v[i + 1];
    return NULL;
}

const char *pk_describe(const pk_value *v, char *buf, size_t len)
{
    static const char *const names[] = {
        [PK_NONE] = "None",     [PK_BOOL] = "a bool",   [PK_INT] = "an int",
        [PK_FLOAT] = "a float", [PK_STR] = "a string",  [PK_BYTES] = "bytes",
        [PK_TUPLE] = "a tuple", [PK_LIST] = "a list",   [PK_DICT] = "a dict",
        [PK_STORAGE] = "a storage", [PK_TENSOR] = "a tensor", [PK_MARK] = "a mark",
    };
    if (v->kind == PK_GLOBAL)
        snprintf(buf, len, "the global %s", v->s);
    else if (v->kind == PK_CALL)
        snprintf(buf, len, "%s (not run)", v->s);
    else
        snprintf(buf, len, "%s", names[v->kind]);
    return buf;
}
