/* JPEG decoding with libjpeg-turbo, producing the pixels PIL's JpegImagePlugin produces. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "image.h"
#include "rn_internal.h"

#define JPEG_MAX_SCANS 1000 /* a progressive file with more is a CPU bomb */

/* libjpeg's default error handler exit()s: this one longjmps back with the
 * library's own message and our status. */
typedef struct jerr {
    struct jpeg_error_mgr pub;
    struct jpeg_progress_mgr progress;
    struct jpeg_source_mgr src;
    int eof; /* the data ran out: a fake EOI was inserted */
    jmp_buf jb;
    int status;
    char msg[JMSG_LENGTH_MAX + 32];
} jerr;

static void fail(j_common_ptr c, int status)
{
    jerr *e = (jerr *)c->err;
    char m[JMSG_LENGTH_MAX];
    e->status = status;
    (*c->err->format_message)(c, m);
    snprintf(e->msg, sizeof e->msg, "%s%s", e->eof ? "truncated data: " : "", m);
    longjmp(e->jb, 1);
}

/* A memory source like jpeg_mem_src, except that running out of data is
 * recorded instead of warned about: a baseline file missing only its EOI
 * is complete (PIL takes it), a truncated scan still fails with "premature
 * end of data segment" when the entropy decoder finds the fake EOI. */
static void src_init(j_decompress_ptr d)
{
    (void)d;
}

static boolean src_fill(j_decompress_ptr d)
{
    static const JOCTET eoi[2] = {0xFF, JPEG_EOI};
    ((jerr *)d->err)->eof = 1;
    d->src->next_input_byte = eoi;
    d->src->bytes_in_buffer = 2;
    return TRUE;
}

static void src_skip(j_decompress_ptr d, long n)
{
    while (n > (long)d->src->bytes_in_buffer) {
        n -= (long)d->src->bytes_in_buffer;
        src_fill(d);
    }
    if (n > 0) {
        d->src->next_input_byte += n;
        d->src->bytes_in_buffer -= (size_t)n;
    }
}

static void on_error(j_common_ptr c)
{
    int code = c->err->msg_code;
    fail(c, code == JERR_EMPTY_IMAGE || code == JERR_IMAGE_TOO_BIG          ? RN_ERR_IMAGE_TOO_LARGE
            : code == JERR_OUT_OF_MEMORY                                    ? RN_ERR_NOMEM
            : code == JERR_CONVERSION_NOTIMPL || code == JERR_BAD_PRECISION ? RN_ERR_UNSUPPORTED
                                                                            : RN_ERR_IMAGE_CORRUPT);
}

/* Warnings that mean pixels are missing or garbage fail the decode: libjpeg
 * would pad a truncated file with gray and carry on, where PIL raises. The
 * harmless ones (junk between segments, odd JFIF/Adobe/ICC metadata) pass,
 * as they do in PIL. Trace messages (level >= 0) are dropped. */
static void on_message(j_common_ptr c, int level)
{
    if (level >= 0)
        return;
    switch (c->err->msg_code) {
    case JWRN_JPEG_EOF:
    case JWRN_HIT_MARKER:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_ARITH_BAD_CODE:
    case JWRN_MUST_RESYNC: fail(c, RN_ERR_IMAGE_CORRUPT); break;
    default: c->err->num_warnings++;
    }
}

static void on_progress(j_common_ptr c)
{
    j_decompress_ptr d = (j_decompress_ptr)c;
    if (d->is_decompressor && d->input_scan_number > JPEG_MAX_SCANS) {
        jerr *e = (jerr *)c->err;
        e->status = RN_ERR_IMAGE_CORRUPT;
        snprintf(e->msg, sizeof e->msg, "more than %d progressive scans", JPEG_MAX_SCANS);
        longjmp(e->jb, 1);
    }
}

/* PIL reads every 4-component JPEG as inverted (Adobe) CMYK, "CMYK;I", and
 * converts to RGB with Convert.c's cmyk2rgb: nk = 255 - k, v = nk - c*nk/255
 * with its MULDIV255 rounding. libjpeg has already turned YCCK into CMYK. */
static void cmyk_row(const uint8_t *in, uint8_t *out, int w)
{
    for (int x = 0; x < w; x++, in += 4, out += 3) {
        int nk = in[3]; /* 255 - (255 - K) */
        for (int i = 0; i < 3; i++) {
            int t = (255 - in[i]) * nk + 128;
            int v = nk - (((t >> 8) + t) >> 8);
            out[i] = (uint8_t)(v < 0 ? 0 : v);
        }
    }
}

/* The DCT scale 1/8, 1/4 or 1/2 that keeps the shorter side >= min_side. */
static int pick_denom(const struct jpeg_decompress_struct *d, int min_side)
{
    long shorter = RN_MIN((long)d->image_width, (long)d->image_height);
    for (int denom = 8; denom >= 2; denom /= 2)
        if ((shorter + denom - 1) / denom >= min_side)
            return denom;
    return 1;
}

/* Pixels decoded around the preprocessing's rectangle: libjpeg-turbo's fancy
 * upsampling may treat the edges of a cropped row as the image's edges
 * (libjpeg.txt, "Decompressing partial scanlines"), so those edges must stay
 * out of what the resize reads; an iMCU (at most 32 pixels) keeps them well
 * clear. */
#define CROP_MARGIN 32

int rn_jpeg_decode(const uint8_t *data, size_t len, const rn_image_params *params,
                   const rn_preprocess *for_pp, rn_image *out, int *full_w, int *full_h, char *err,
                   size_t errlen)
{
    struct jpeg_decompress_struct d;
    jerr e;
    uint8_t *volatile rgb = NULL;
    uint8_t *volatile row = NULL;
    memset(out, 0, sizeof *out);
    d.err = jpeg_std_error(&e.pub);
    e.pub.error_exit = on_error;
    e.pub.emit_message = on_message;
    e.status = RN_OK;
    if (setjmp(e.jb)) {
        jpeg_destroy_decompress(&d);
        free(rgb);
        free(row);
        return rn_errf(err, errlen, e.status, "JPEG: %s", e.msg);
    }
    jpeg_create_decompress(&d);
    e.progress.progress_monitor = on_progress;
    d.progress = &e.progress;
    e.eof = 0;
    e.src = (struct jpeg_source_mgr){
        .next_input_byte = data,
        .bytes_in_buffer = len,
        .init_source = src_init,
        .fill_input_buffer = src_fill,
        .skip_input_data = src_skip,
        .resync_to_restart = jpeg_resync_to_restart,
        .term_source = src_init,
    };
    d.src = &e.src;
    if (jpeg_read_header(&d, TRUE) != JPEG_HEADER_OK) {
        e.status = RN_ERR_IMAGE_CORRUPT;
        snprintf(e.msg, sizeof e.msg, "no image in the data (tables only)");
        longjmp(e.jb, 1);
    }
    int64_t pixels = (int64_t)d.image_width * d.image_height;
    if (pixels > params->max_pixels) {
        e.status = RN_ERR_IMAGE_TOO_LARGE;
        snprintf(e.msg, sizeof e.msg, "%ux%u is %lld pixels, over the limit of %lld", d.image_width,
                 d.image_height, (long long)pixels, (long long)params->max_pixels);
        longjmp(e.jb, 1);
    }
    int comps = d.num_components;
    if (comps == 1)
        d.out_color_space = JCS_GRAYSCALE;
    else if (comps == 3)
        d.out_color_space = JCS_RGB;
    else if (comps == 4)
        d.out_color_space = JCS_CMYK;
    else {
        e.status = RN_ERR_UNSUPPORTED;
        snprintf(e.msg, sizeof e.msg, "%d color components", comps);
        longjmp(e.jb, 1);
    }
    /* PIL's defaults: JDCT_ISLOW and fancy upsampling, which libjpeg also defaults to */
    if (params->dct_scaling && params->min_side > 0) {
        d.scale_num = 1;
        d.scale_denom = (unsigned)pick_denom(&d, params->min_side);
    }
    jpeg_start_decompress(&d);
    if (e.eof && jpeg_has_multiple_scans(&d)) { /* later scans missing: PIL refuses too */
        e.status = RN_ERR_IMAGE_CORRUPT;
        snprintf(e.msg, sizeof e.msg, "Premature end of JPEG file (truncated between scans)");
        longjmp(e.jb, 1);
    }
    int w = (int)d.output_width, h = (int)d.output_height;
    /* decode columns [x0, x0 + cw) of rows [y0, y1) into their places */
    int y0 = 0, y1 = h;
    JDIMENSION x0 = 0, cw = (JDIMENSION)w;
    if (for_pp && d.output_width == d.image_width && d.output_height == d.image_height) {
        int r[4];
        rn_preprocess_source_rect(w, h, for_pp, r);
        int a = RN_MAX(0, r[0] - CROP_MARGIN), b = RN_MIN(w, r[1] + CROP_MARGIN);
        if (b - a < w) {
            x0 = (JDIMENSION)a;
            cw = (JDIMENSION)(b - a);
            jpeg_crop_scanline(&d, &x0, &cw); /* x0 moves left to an iMCU boundary */
        }
        y0 = RN_MAX(0, r[2] - CROP_MARGIN);
        y1 = RN_MIN(h, r[3] + CROP_MARGIN);
    }
    rgb = malloc((size_t)w * h * 3);
    row = malloc((size_t)cw * RN_MAX(comps, 3)); /* a row of other components, or the last */
    if (!rgb || !row) {
        e.status = RN_ERR_NOMEM;
        snprintf(e.msg, sizeof e.msg, "out of memory for %dx%d pixels", w, h);
        longjmp(e.jb, 1);
    }
    if (y0 > 0)
        jpeg_skip_scanlines(&d, (JDIMENSION)y0);
    while ((int)d.output_scanline < y1) {
        uint8_t *o = rgb + ((size_t)d.output_scanline * w + x0) * 3;
        if (comps == 3) {
            JSAMPROW rows[16];
            int n = RN_MIN(16, y1 - (int)d.output_scanline);
            for (int i = 0; i < n; i++)
                rows[i] = o + (size_t)i * w * 3;
            jpeg_read_scanlines(&d, rows, (JDIMENSION)n);
            continue;
        }
        JSAMPROW r = row;
        jpeg_read_scanlines(&d, &r, 1);
        if (comps == 1) {
            for (int x = 0; x < (int)cw; x++)
                o[3 * x] = o[3 * x + 1] = o[3 * x + 2] = row[x];
        } else {
            cmyk_row(row, o, (int)cw);
        }
    }
    /* The rows below still go through the entropy decoder, so that a
     * corrupt or truncated end fails here as in a whole decode: skipped up to
     * the last, which is read (libjpeg-turbo skips to the very end without
     * decoding anything). */
    if (d.output_scanline < d.output_height) {
        if (d.output_height - d.output_scanline > 1)
            jpeg_skip_scanlines(&d, d.output_height - 1 - d.output_scanline);
        JSAMPROW r = row;
        jpeg_read_scanlines(&d, &r, 1);
    }
    /* Like PIL, stop at the last scanline: a missing EOI after complete image
     * data is no error (jpeg_finish_decompress would only look for it). */
    *full_w = (int)d.image_width;
    *full_h = (int)d.image_height;
    jpeg_destroy_decompress(&d);
    free(row);
    out->width = w;
    out->height = h;
    out->rgb = rgb;
    return RN_OK;
}
