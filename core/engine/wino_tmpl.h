/* The Winograd transforms of the blocked engine (core/engine/kernels.h: rn_wino_in_fn,
 * rn_wino_out_fn), written once over one SIMD register and instantiated by
 * each ISA file that includes this header: kern_avx512.c (zmm, a whole block
 * of 16 channels), kern_avx2.c (ymm, a block as two halves) and kern_neon.c
 * (q registers, four quarters). Each part of a block is transformed on its
 * own, so that a tile's 16 (F(2x2)) or 36 (F(4x4)) positions of one part fit
 * the register file. The plain-C table keeps its own array version
 * (kern_c.c), written differently on purpose: the oracle.
 *
 * Before including it, the ISA file defines:
 *   V_VEC              the register type; V_PARTS registers make a block of 16
 *   V_INLINE           "static inline" with the file's target attribute, always inlined
 *   V_FN               "static" with the file's target attribute
 *   V_LOAD(p), V_STORE(p, v)    aligned loads and stores of one register
 *   V_ADD(a, b), V_SUB(a, b), V_MAX(a, b), V_ZERO()
 *   V_FMA(k, a, c)     k * a + c, k a float constant
 *   V_BIAS(bias, ch, out_c, part)  bias[ch + part*16/V_PARTS ...], 0 past
 *                       out_c and for a NULL bias, the array not read past its end
 * and, for tables with bf16 tiles, V_BF16 with
 *   V_LOAD_BF16(p), V_STORE_BF16(p, v)  one register from / to bf16 values
 * which adds wino2_input_bf16 and bf16 output (rn_conv_args.out_b).
 *
 * It defines wino2_input, wino4_input, wino2_output, wino4_output (and
 * wino2_input_bf16), static, for the file's table.
 */

#define V_LANES (16 / V_PARTS)

/* r = B^T d for F(4x4, 3x3), B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0;
 * 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1], with FMAs:
 * r0 = 4 d0 - 5 d2 + d4, r1,2 = (d4 - 4 d2) +- (d3 - 4 d1),
 * r3,4 = (d4 - d2) +- 2 (d3 - d1), r5 = 4 d1 - 5 d3 + d5. */
V_INLINE void wino4_bt(const V_VEC d[6], V_VEC r[6])
{
    V_VEC a = V_FMA(-4.0f, d[2], d[4]), b = V_FMA(-4.0f, d[1], d[3]);
    V_VEC c = V_SUB(d[4], d[2]), e = V_SUB(d[3], d[1]);
    e = V_ADD(e, e);
    r[0] = V_FMA(4.0f, d[0], V_FMA(-5.0f, d[2], d[4]));
    r[1] = V_ADD(a, b);
    r[2] = V_SUB(a, b);
    r[3] = V_ADD(c, e);
    r[4] = V_SUB(c, e);
    r[5] = V_FMA(4.0f, d[1], V_FMA(-5.0f, d[3], d[5]));
}

/* r = B^T d for F(2x2, 3x3), B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]. */
V_INLINE void wino2_bt(const V_VEC d[4], V_VEC r[4])
{
    r[0] = V_SUB(d[0], d[2]);
    r[1] = V_ADD(d[1], d[2]);
    r[2] = V_SUB(d[2], d[1]);
    r[3] = V_SUB(d[1], d[3]);
}

/* One part of input pixel `at` (elements), or zero outside the image. */
V_INLINE V_VEC wino_load_in(const void *in, size_t at, int inside, const int BF)
{
    if (!inside)
        return V_ZERO();
#ifdef V_BF16
    if (BF)
        return V_LOAD_BF16((const uint16_t *)in + at);
#endif
    return V_LOAD((const float *)in + at);
}

/* V[p][ib][tl] = (B^T d B)[p] for the tl-th tile of the chunk from t0, with
 * MT x MT output tiles from (MT + 2) x (MT + 2) input patches; BF: the input
 * is bf16 (in_b) and V is stored as bf16. Input block by input block, tiles
 * in order, every part of a block per tile (one pass over the input chunk):
 * a tile's patch overlaps its left neighbour's by two columns, whose
 * transforms (down the columns) are reused. */
V_INLINE void wino_input_t(const rn_wino *j, int t0, int tc, void *V, const int MT, const int BF)
{
    enum { A = 6 }; /* MT + 2 at most */
    const int NA = MT + 2;
    const void *in = BF ? (const void *)j->a->in_b : (const void *)j->a->in;
    size_t plane = (size_t)j->h * j->w * 16, vp = j->vp;
    int per_img = j->th * j->tw;
    for (int ib = 0; ib < j->ib_n; ib++) {
        int img = t0 / per_img, ty = t0 % per_img / j->tw, tx = t0 % j->tw;
        V_VEC c[V_PARTS][A][A]; /* the tile's input columns, transformed, per part */
        for (int tl = 0; tl < tc; tl++) {
            size_t src = ((size_t)img * j->ib_n + ib) * plane;
            int y0 = ty * MT - 1, x0 = tx * MT - 1, x = 0;
            if (tl > 0 && tx > 0) {
                for (int h = 0; h < V_PARTS; h++)
                    for (int k = 0; k < NA; k++) {
                        c[h][0][k] = c[h][MT][k];
                        c[h][1][k] = c[h][MT + 1][k];
                    }
                x = 2;
            }
            for (; x < NA; x++)
                for (int h = 0; h < V_PARTS; h++) {
                    V_VEC d[A];
                    for (int k = 0; k < NA; k++) {
                        int y = y0 + k, xx = x0 + x;
                        d[k] = wino_load_in(in, src + ((size_t)y * j->w + xx) * 16 + h * V_LANES,
                                            xx >= 0 && xx < j->w && y >= 0 && y < j->h, BF);
                    }
                    if (MT == 4)
                        wino4_bt(d, c[h][x]);
                    else
                        wino2_bt(d, c[h][x]);
                }
            size_t v = ((size_t)ib * j->T + tl) * 16;
            for (int a = 0; a < NA; a++)
                for (int h = 0; h < V_PARTS; h++) {
                    V_VEC row[A], r[A];
                    for (int k = 0; k < NA; k++)
                        row[k] = c[h][k][a];
                    if (MT == 4)
                        wino4_bt(row, r);
                    else
                        wino2_bt(row, r);
                    for (int b = 0; b < NA; b++) {
                        size_t at = v + (NA * a + b) * vp + h * V_LANES;
#ifdef V_BF16
                        if (BF) {
                            V_STORE_BF16((uint16_t *)V + at, r[b]);
                            continue;
                        }
#endif
                        V_STORE((float *)V + at, r[b]);
                    }
                }
            if (++tx == j->tw) {
                tx = 0;
                if (++ty == j->th) {
                    ty = 0;
                    img++;
                }
            }
        }
    }
}

V_FN void wino2_input(const rn_wino *j, int t0, int tc, void *V)
{
    wino_input_t(j, t0, tc, V, 2, 0);
}

V_FN void wino4_input(const rn_wino *j, int t0, int tc, void *V)
{
    wino_input_t(j, t0, tc, V, 4, 0);
}

#ifdef V_BF16
/* BF16 models use F(2x2, 3x3) only (core/engine/pack.c). */
V_FN void wino2_input_bf16(const rn_wino *j, int t0, int tc, void *V)
{
    wino_input_t(j, t0, tc, V, 2, 1);
}
#endif

/* y = A^T m A for F(2x2, 3x3), A^T = [1 1 1 0; 0 1 -1 -1]; m: the 16
 * positions of one part of a tile, mp floats apart. */
V_INLINE void wino2_out(const float *m, size_t mp, V_VEC y[4][4])
{
    V_VEC s[2][4];
    for (int b = 0; b < 4; b++) {
        V_VEC m0 = V_LOAD(m + b * mp), m1 = V_LOAD(m + (4 + b) * mp),
               m2 = V_LOAD(m + (8 + b) * mp), m3 = V_LOAD(m + (12 + b) * mp);
        s[0][b] = V_ADD(V_ADD(m0, m1), m2);
        s[1][b] = V_SUB(V_SUB(m1, m2), m3);
    }
    for (int r = 0; r < 2; r++) {
        y[r][0] = V_ADD(V_ADD(s[r][0], s[r][1]), s[r][2]);
        y[r][1] = V_SUB(V_SUB(s[r][1], s[r][2]), s[r][3]);
    }
}

/* y = A^T m for F(4x4, 3x3) along one dimension, A^T = [1 1 1 1 1 0;
 * 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]. */
V_INLINE void wino4_at(const V_VEC m[6], V_VEC y[4])
{
    V_VEC s12 = V_ADD(m[1], m[2]), d12 = V_SUB(m[1], m[2]);
    V_VEC s34 = V_ADD(m[3], m[4]), d34 = V_SUB(m[3], m[4]);
    y[0] = V_ADD(V_ADD(m[0], s12), s34);
    y[1] = V_FMA(2.0f, d34, d12);
    y[2] = V_FMA(4.0f, s34, s12);
    y[3] = V_ADD(V_FMA(8.0f, d34, d12), m[5]);
}

/* y = A^T m A for F(4x4, 3x3): m, the 36 positions of one part of a tile. */
V_INLINE void wino4_out(const float *m, size_t mp, V_VEC y[4][4])
{
    V_VEC s[4][6];
    for (int b = 0; b < 6; b++) {
        V_VEC col[6], r[4];
        for (int k = 0; k < 6; k++)
            col[k] = V_LOAD(m + (6 * k + b) * mp);
        wino4_at(col, r);
        for (int k = 0; k < 4; k++)
            s[k][b] = r[k];
    }
    for (int r = 0; r < 4; r++)
        wino4_at(s[r], y[r]);
}

/* The output of the chunk's tiles for output blocks [ob0, ob1): Y = A^T M A
 * plus bias and the residual, ReLU, into out, or into out_b as bf16; tile
 * by tile, part by part (the tile's M and output stay in L1); MT, the tile
 * size j->m as a constant. */
V_INLINE void wino_output_t(const rn_wino *j, int t0, int tc, int ob0, int ob1, const float *M,
                             const int MT)
{
    const rn_conv_args *a = j->a;
    size_t mp = j->mp; /* floats between positions */
    const V_VEC zero = V_ZERO();
    for (int ob = ob0; ob < ob1; ob++) {
        V_VEC bias[V_PARTS];
        for (int h = 0; h < V_PARTS; h++)
            bias[h] = V_BIAS(a->bias, ob * 16, a->c->out_c, h);
        for (int tl = 0; tl < tc; tl++) {
            int t = t0 + tl, img = t / (j->th * j->tw), q = t % (j->th * j->tw);
            int oy = q / j->tw * MT, ox = q % j->tw * MT;
            for (int h = 0; h < V_PARTS; h++) {
                const float *m = M + ((size_t)(ob - ob0) * j->T + tl) * 16 + h * V_LANES;
                V_VEC y[4][4];
                if (MT == 4)
                    wino4_out(m, mp, y);
                else
                    wino2_out(m, mp, y);
                size_t o = (((size_t)img * j->ob_n + ob) * j->h + oy) * j->w * 16 + ox * 16 +
                           h * V_LANES;
                for (int dy = 0; dy < MT && oy + dy < j->h; dy++)
                    for (int dx = 0; dx < MT && ox + dx < j->w; dx++) {
                        size_t at = o + ((size_t)dy * j->w + dx) * 16;
                        V_VEC v = V_ADD(bias[h], y[dy][dx]);
                        if (a->accumulate)
                            v = V_ADD(v, V_LOAD(a->out + at));
                        if (a->relu)
                            v = V_MAX(v, zero);
#ifdef V_BF16
                        if (a->out_b) {
                            V_STORE_BF16(a->out_b + at, v);
                            continue;
                        }
#endif
                        V_STORE(a->out + at, v);
                    }
            }
        }
    }
}

V_FN void wino2_output(const rn_wino *j, int t0, int tc, int ob0, int ob1, const float *M)
{
    wino_output_t(j, t0, tc, ob0, ob1, M, 2);
}

V_FN void wino4_output(const rn_wino *j, int t0, int tc, int ob0, int ob1, const float *M)
{
    wino_output_t(j, t0, tc, ob0, ob1, M, 4);
}
