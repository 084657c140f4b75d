/* Max pooling and batch norm + ReLU of the blocked engine (core/engine/kernels.h:
 * rn_kernels.maxpool, .bn_relu), written once over one SIMD register with the
 * operations core/engine/wino_tmpl.h lists (V_VEC, V_PARTS, V_FN, V_LOAD, V_STORE,
 * V_ADD, V_MAX, V_ZERO) and V_SET1(x), V_MUL(a, b), and instantiated by each
 * ISA file that includes it. The plain-C table has its own loops (kern_c.c). */

#include <float.h>

/* 3x3, stride 2, padding 1 (padding never wins) of one block of 16
 * channels: in h x w pixels, out oh x ow. Each output is the running max
 * from -FLT_MAX over the window in (row, column) order, as kern_c.c's. */
V_FN void maxpool3x3s2(const float *in, int h, int w, float *out, int oh, int ow)
{
    const V_VEC lowest = V_SET1(-FLT_MAX);
    for (int oy = 0; oy < oh; oy++) {
        int y0 = RN_MAX(oy * 2 - 1, 0), y1 = RN_MIN(oy * 2 + 2, h);
        for (int ox = 0; ox < ow; ox++) {
            int x0 = RN_MAX(ox * 2 - 1, 0), x1 = RN_MIN(ox * 2 + 2, w);
            for (int part = 0; part < V_PARTS; part++) {
                V_VEC m = lowest;
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++)
                        m = V_MAX(V_LOAD(in + ((size_t)y * w + x) * 16 + part * (16 / V_PARTS)), m);
                V_STORE(out + ((size_t)oy * ow + ox) * 16 + part * (16 / V_PARTS), m);
            }
        }
    }
}

/* out = max(in * scale + shift, 0) on pixels pixels of one block of 16
 * channels, a multiply then an add (not fused), as kern_c.c's. */
V_FN void bn_relu16(const float *in, size_t pixels, const float *scale, const float *shift, float *out)
{
    V_VEC sc[V_PARTS], sh[V_PARTS];
    const V_VEC zero = V_ZERO();
    for (int part = 0; part < V_PARTS; part++) {
        sc[part] = V_LOAD(scale + part * (16 / V_PARTS));
        sh[part] = V_LOAD(shift + part * (16 / V_PARTS));
    }
    for (size_t q = 0; q < pixels; q++)
        for (int part = 0; part < V_PARTS; part++) {
            size_t at = q * 16 + part * (16 / V_PARTS);
            V_STORE(out + at, V_MAX(V_ADD(V_MUL(V_LOAD(in + at), sc[part]), sh[part]), zero));
        }
}
