/* libFuzzer target: ONNX QDQ graphs (core/formats/onnx.c's QDQ reader and the
 * INT8 loader behind it). Random bytes seldom decode as a quantized ResNet,
 * so an input here is a list of edits to a real one, the fixture
 * tests/fixtures/int8/basic.u8s8.qdq.onnx (RN_FUZZ_QDQ_MODEL to use
 * another), read once: initializer bytes overwritten (scales become NaN, 0,
 * negative or huge, zero points and weights change), data types and
 * dimensions changed, nodes dropped, inputs and outputs exchanged between
 * nodes, attributes changed, initializers renamed. The edited graph is
 * packed again and read as fuzz_onnx reads any bytes: refused with a
 * message, or loaded, and nothing crashes or leaks.
 *
 * An edit is 4 bytes: op, a 16-bit index, a value; op 0 takes 4 more bytes,
 * the bytes written. */
#include <stdio.h>
#include <string.h>

#include "fuzz_weights.h"
#include "onnx.pb-c.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *seed;
static size_t seed_len;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *path = getenv("RN_FUZZ_QDQ_MODEL");
    if (!path)
        path = "tests/fixtures/int8/basic.u8s8.qdq.onnx";
    FILE *f = fopen(path, "rb");
    if (!f || fseek(f, 0, SEEK_END) || (seed_len = (size_t)ftell(f)) == 0 || fseek(f, 0, SEEK_SET) ||
        !(seed = malloc(seed_len)) || fread(seed, 1, seed_len, f) != seed_len) {
        fprintf(stderr, "fuzz_qdq: cannot read the seed graph %s (run from the repository's root)\n", path);
        exit(1);
    }
    fclose(f);
    return 0;
}

static int parse(const void *data, size_t size, st_file *f, char *err, size_t errlen)
{
    return onnx_parse(data, size, NULL, f, err, errlen);
}

static void swap_str(char **a, char **b)
{
    char *t = *a;
    *a = *b;
    *b = t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, seed_len, seed);
    if (!m || !m->graph)
        abort();
    Onnx__GraphProto *g = m->graph;
    size_t n_node = g->n_node; /* nodes past g->n_node were dropped, and are freed with the rest */
    const uint8_t *p = data, *end = data + size;
    for (int edits = 0; end - p >= 4 && edits < 64; edits++) {
        unsigned op = p[0] % 8, idx = p[1] | (unsigned)p[2] << 8, v = p[3];
        p += 4;
        Onnx__TensorProto *t = g->n_initializer ? g->initializer[idx % g->n_initializer] : NULL;
        Onnx__NodeProto *nd = g->n_node ? g->node[idx % g->n_node] : NULL;
        switch (op) {
        case 0: /* overwrite up to 4 bytes of an initializer's data */
            if (end - p < 4)
                break;
            if (t && t->has_raw_data && t->raw_data.len) {
                size_t off = ((size_t)v * 4) % t->raw_data.len, n = t->raw_data.len - off < 4 ? t->raw_data.len - off : 4;
                memcpy(t->raw_data.data + off, p, n);
            }
            p += 4;
            break;
        case 1: /* another data type */
            if (t)
                t->data_type = (int32_t)(v % 18);
            break;
        case 2: /* a dimension changed */
            if (t && t->n_dims)
                t->dims[v % t->n_dims] = (int8_t)(v ^ idx);
            break;
        case 3: /* a node dropped (moved past the end) */
            if (nd && g->n_node > 1) {
                size_t i = idx % g->n_node;
                Onnx__NodeProto *d = g->node[i];
                memmove(&g->node[i], &g->node[i + 1], (g->n_node - i - 1) * sizeof *g->node);
                g->node[--g->n_node] = d;
            }
            break;
        case 4: /* an input of one node exchanged with an input of another */
            if (nd && nd->n_input && g->n_node) {
                Onnx__NodeProto *o = g->node[(idx + v + 1) % g->n_node];
                if (o->n_input)
                    swap_str(&nd->input[v % nd->n_input], &o->input[idx % o->n_input]);
            }
            break;
        case 5: /* an output exchanged with an input */
            if (nd && nd->n_output && nd->n_input)
                swap_str(&nd->output[0], &nd->input[v % nd->n_input]);
            break;
        case 6: /* an attribute's value */
            if (nd && nd->n_attribute) {
                Onnx__AttributeProto *a = nd->attribute[v % nd->n_attribute];
                a->i = (int8_t)(v ^ idx);
                a->has_i = 1;
                if (a->n_ints)
                    a->ints[idx % a->n_ints] = (int8_t)v;
            }
            break;
        case 7: /* two initializers' names exchanged */
            if (t && g->n_initializer > 1)
                swap_str(&t->name, &g->initializer[(idx + v + 1) % g->n_initializer]->name);
            break;
        }
    }
    size_t len = onnx__model_proto__get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        abort();
    onnx__model_proto__pack(m, buf);
    g->n_node = n_node;
    onnx__model_proto__free_unpacked(m, NULL);
    fuzz_weights(parse, buf, len);
    free(buf);
    return 0;
}
