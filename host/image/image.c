/*
 * image.c -- RGB8 canvases, a small anti-aliasing rasteriser, bitmap text
 * and PNG encoding (see usagi/image.h for the coordinate rules).
 *
 * For figures and sample grids, not for photographs or a GUI: shapes are
 * painted in one colour each, coverage comes from the distance of a pixel
 * centre to the shape (cheap, and good enough at chart sizes), and text is
 * the 1-bit font of font.c. No Lua, no files: the PNG goes to memory and
 * the binding writes it. zlib does the deflate and the CRCs.
 *
 * This is libusagi_image, a library beside the tensor core rather than
 * inside it, so that libusagi links no zlib and a program that only
 * computes never loads a rasteriser. It uses the core's public API alone
 * (usagi/core.h: allocation, errors, tensors).
 *
 * Lines and markers first collect coverage in the canvas's scratch plane
 * (the maximum over every segment of one call) and then blend it once, so
 * a polyline's joins and overlaps are painted exactly once.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "usagi/image.h"
#include "font.h"

/* ==== Canvas ============================================================ */

usg_status usg_image_new(usg_image **out, int width, int height, usg_rgb bg)
{
    *out = NULL;
    if (width < 1 || width > USG_IMAGE_MAX_SIDE)
        return usg_fail(USG_ARG, "image.canvas: width must be in 1..%d, got %d",
                        USG_IMAGE_MAX_SIDE, width);
    if (height < 1 || height > USG_IMAGE_MAX_SIDE)
        return usg_fail(USG_ARG, "image.canvas: height must be in 1..%d, got %d",
                        USG_IMAGE_MAX_SIDE, height);
    if ((int64_t)width * height > USG_IMAGE_MAX_PIXELS)
        return usg_fail(USG_ARG, "image.canvas: at most %lld pixels, got %d x %d",
                        (long long)USG_IMAGE_MAX_PIXELS, width, height);
    size_t n = (size_t)width * (size_t)height;
    usg_image *im = usg_alloc(sizeof *im);
    if (!im) return USG_NOMEM;
    im->width = width;
    im->height = height;
    im->rgb = usg_alloc(3 * n);
    im->cov = im->rgb ? usg_alloc(n) : NULL;
    if (!im->cov) {
        usg_free(im->rgb);
        usg_free(im);
        return USG_NOMEM;
    }
    memset(im->cov, 0, n);
    usg_image_fill(im, bg);
    *out = im;
    return USG_OK;
}

void usg_image_free(usg_image *im)
{
    if (!im) return;
    usg_free(im->rgb);
    usg_free(im->cov);
    usg_free(im);
}

void usg_image_fill(usg_image *im, usg_rgb c)
{
    size_t n = (size_t)im->width * (size_t)im->height;
    for (size_t i = 0; i < n; i++) {
        im->rgb[3 * i] = c.r;
        im->rgb[3 * i + 1] = c.g;
        im->rgb[3 * i + 2] = c.b;
    }
}

usg_rgb usg_image_get(const usg_image *im, int x, int y)
{
    usg_rgb c = {0, 0, 0};
    if (x < 0 || y < 0 || x >= im->width || y >= im->height) return c;
    const uint8_t *p = im->rgb + 3 * ((size_t)y * (size_t)im->width + (size_t)x);
    c.r = p[0];
    c.g = p[1];
    c.b = p[2];
    return c;
}

/* p = p (1 - a) + c a, with a in 0..255, rounded. */
static void blend(uint8_t *p, usg_rgb c, unsigned a)
{
    p[0] = (uint8_t)((p[0] * (255 - a) + c.r * a + 127) / 255);
    p[1] = (uint8_t)((p[1] * (255 - a) + c.g * a + 127) / 255);
    p[2] = (uint8_t)((p[2] * (255 - a) + c.b * a + 127) / 255);
}

/* ==== Coverage plane ==================================================== */

/* The pixels one call touched in the scratch plane (inclusive bounds). */
typedef struct box { int x0, y0, x1, y1; } box;

static box box_empty(void) { return (box){INT32_MAX, INT32_MAX, -1, -1}; }

static void cov_put(usg_image *im, box *b, int x, int y, double a)
{
    if (a <= 0) return;
    unsigned v = a >= 1 ? 255u : (unsigned)(a * 255 + 0.5);
    uint8_t *p = im->cov + (size_t)y * (size_t)im->width + (size_t)x;
    if (v > *p) *p = (uint8_t)v;
    if (x < b->x0) b->x0 = x;
    if (x > b->x1) b->x1 = x;
    if (y < b->y0) b->y0 = y;
    if (y > b->y1) b->y1 = y;
}

/* Blend colour c through the coverage in b, then clear it for the next call. */
static void cov_flush(usg_image *im, const box *b, usg_rgb c)
{
    for (int y = b->y0; y <= b->y1; y++) {
        uint8_t *cov = im->cov + (size_t)y * (size_t)im->width;
        uint8_t *px = im->rgb + 3 * (size_t)y * (size_t)im->width;
        for (int x = b->x0; x <= b->x1; x++) {
            if (cov[x]) blend(px + 3 * x, c, cov[x]);
            cov[x] = 0;
        }
    }
}

static double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Liang-Barsky: cut the segment to the rectangle; false when nothing is
 * left. Done first so that the per-pixel work below only ever sees
 * coordinates near the canvas, however far the caller's points lie. */
static bool clip_segment(double *x0, double *y0, double *x1, double *y1,
                         double xmin, double ymin, double xmax, double ymax)
{
    double dx = *x1 - *x0, dy = *y1 - *y0, t0 = 0, t1 = 1;
    if (!isfinite(dx) || !isfinite(dy)) return false;
    double p[4] = {-dx, dx, -dy, dy};
    double q[4] = {*x0 - xmin, xmax - *x0, *y0 - ymin, ymax - *y0};
    for (int k = 0; k < 4; k++) {
        if (p[k] == 0) {
            if (q[k] < 0) return false;
            continue;
        }
        double t = q[k] / p[k];
        if (p[k] < 0) {
            if (t > t1) return false;
            if (t > t0) t0 = t;
        } else {
            if (t < t0) return false;
            if (t < t1) t1 = t;
        }
    }
    double ax = *x0 + t0 * dx, ay = *y0 + t0 * dy;
    *x1 = *x0 + t1 * dx;
    *y1 = *y0 + t1 * dy;
    *x0 = ax;
    *y0 = ay;
    return true;
}

/* Coverage of a capsule (the segment thickened by radius r) times `alpha`:
 * a pixel whose centre lies at distance d gets r + 1/2 - d, clamped to
 * [0, 1], which is its area coverage for a straight edge. Each row only
 * visits the x span where the capsule can reach. */
static void cov_segment(usg_image *im, box *b, double x0, double y0, double x1, double y1,
                        double r, double alpha)
{
    if (!isfinite(x0) || !isfinite(y0) || !isfinite(x1) || !isfinite(y1)) return;
    double R = r + 1;
    if (!clip_segment(&x0, &y0, &x1, &y1, -R, -R, im->width + R, im->height + R)) return;
    double dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
    int ja = (int)clampd(floor(fmin(y0, y1) - R), 0, im->height - 1);
    int jb = (int)clampd(ceil(fmax(y0, y1) + R), 0, im->height - 1);
    for (int j = ja; j <= jb; j++) {
        double py = j + 0.5, xa, xb;
        if (fabs(dy) < 1e-12) {
            xa = fmin(x0, x1);
            xb = fmax(x0, x1);
        } else {
            double ta = clampd((py - R - y0) / dy, 0, 1), tb = clampd((py + R - y0) / dy, 0, 1);
            xa = fmin(x0 + ta * dx, x0 + tb * dx);
            xb = fmax(x0 + ta * dx, x0 + tb * dx);
        }
        int ia = (int)clampd(floor(xa - R), 0, im->width - 1);
        int ib = (int)clampd(ceil(xb + R), 0, im->width - 1);
        for (int i = ia; i <= ib; i++) {
            double px = i + 0.5;
            double t = len2 > 0 ? clampd(((px - x0) * dx + (py - y0) * dy) / len2, 0, 1) : 0;
            double d = hypot(px - (x0 + t * dx), py - (y0 + t * dy));
            cov_put(im, b, i, j, clampd(r + 0.5 - d, 0, 1) * alpha);
        }
    }
}

/* Lines thinner than a pixel keep a one-pixel footprint and fade instead. */
static void stroke_params(double width, double *r, double *alpha)
{
    if (!(width > 0)) width = 0;
    *r = fmax(width, 1.0) / 2;
    *alpha = fmin(width, 1.0);
}

/* ==== Shapes ============================================================ */

void usg_image_line(usg_image *im, double x0, double y0, double x1, double y1,
                    usg_rgb c, double width)
{
    double xs[2] = {x0, x1}, ys[2] = {y0, y1};
    usg_image_polyline(im, xs, ys, 2, c, width);
}

void usg_image_polyline(usg_image *im, const double *xs, const double *ys, int64_t n,
                        usg_rgb c, double width)
{
    double r, alpha;
    stroke_params(width, &r, &alpha);
    if (alpha <= 0) return;
    box b = box_empty();
    for (int64_t k = 0; k + 1 < n; k++)
        cov_segment(im, &b, xs[k], ys[k], xs[k + 1], ys[k + 1], r, alpha);
    cov_flush(im, &b, c);
}

/* Length of [a, a+1) inside [lo, hi). */
static double overlap(double a, double lo, double hi)
{
    return fmax(0, fmin(a + 1, hi) - fmax(a, lo));
}

void usg_image_rect(usg_image *im, double x, double y, double w, double h, usg_rgb c)
{
    if (!isfinite(x) || !isfinite(y) || !isfinite(w) || !isfinite(h) || w <= 0 || h <= 0) return;
    int ja = (int)clampd(floor(y), 0, im->height), jb = (int)clampd(ceil(y + h), 0, im->height);
    int ia = (int)clampd(floor(x), 0, im->width), ib = (int)clampd(ceil(x + w), 0, im->width);
    for (int j = ja; j < jb; j++) {
        double cy = overlap(j, y, y + h);
        uint8_t *row = im->rgb + 3 * (size_t)j * (size_t)im->width;
        for (int i = ia; i < ib; i++) {
            double a = cy * overlap(i, x, x + w);
            if (a > 0) blend(row + 3 * i, c, a >= 1 ? 255u : (unsigned)(a * 255 + 0.5));
        }
    }
}

void usg_image_marker(usg_image *im, double x, double y, double size, usg_rgb c,
                      usg_marker shape)
{
    if (!(size > 0)) return;
    if (shape == USG_MARKER_SQUARE) {
        usg_image_rect(im, x - size / 2, y - size / 2, size, size, c);
        return;
    }
    box b = box_empty();
    cov_segment(im, &b, x, y, x, y, size / 2, 1);
    cov_flush(im, &b, c);
}

/* ==== Text ============================================================== */

/* The glyph index of the character starting at s[*i] (advancing *i past
 * it), or -1 at the end. A UTF-8 sequence counts as one unknown character. */
static int next_glyph(const char *s, size_t *i)
{
    unsigned char ch = (unsigned char)s[*i];
    if (!ch) return -1;
    (*i)++;
    if (ch >= 0xC0)
        while (((unsigned char)s[*i] & 0xC0) == 0x80) (*i)++;
    if (ch < USG_FONT_FIRST || ch > USG_FONT_LAST) ch = '?';
    return ch - USG_FONT_FIRST;
}

int64_t usg_image_text_width(const char *s, int scale)
{
    if (scale < 1) scale = 1;
    int64_t n = 0;
    size_t i = 0;
    while (next_glyph(s, &i) >= 0) n++;
    return n * USG_FONT_W * scale;
}

/* Paint the square [x, x+s) x [y, y+s), clipped. */
static void fill_block(usg_image *im, int64_t x, int64_t y, int s, usg_rgb c)
{
    int64_t xa = x < 0 ? 0 : x, ya = y < 0 ? 0 : y;
    int64_t xb = x + s > im->width ? im->width : x + s, yb = y + s > im->height ? im->height : y + s;
    for (int64_t j = ya; j < yb; j++)
        for (int64_t i = xa; i < xb; i++) {
            uint8_t *p = im->rgb + 3 * ((size_t)j * (size_t)im->width + (size_t)i);
            p[0] = c.r;
            p[1] = c.g;
            p[2] = c.b;
        }
}

/* Glyph pixel (u, v) -- u along the text from the anchor, v down from the
 * baseline -- lands at (x + u, y + v) upright, or at (x + v, y - u - s)
 * turned counter-clockwise: the text direction (1, 0) becomes (0, -1). */
static void draw_glyph(usg_image *im, int g, int64_t u0, int64_t x, int64_t y, int s,
                       usg_rgb c, bool rotate)
{
    for (int row = 0; row < USG_FONT_ROWS; row++) {
        uint8_t bits = usg_font_glyphs[g][row];
        int64_t v = (int64_t)(USG_FONT_TOP + row - USG_FONT_ASCENT) * s;
        for (int col = 0; bits && col < 5; col++) {
            if (!(bits & (0x10 >> col))) continue;
            int64_t u = u0 + (int64_t)col * s;
            if (rotate) fill_block(im, x + v, y - u - s, s, c);
            else fill_block(im, x + u, y + v, s, c);
        }
    }
}

void usg_image_text(usg_image *im, double x, double y, const char *s, usg_rgb c,
                    int scale, usg_anchor anchor, bool rotate)
{
    /* far outside, the text cannot reach the canvas; this keeps the
     * integer arithmetic below small */
    if (!(fabs(x) < 1e9) || !(fabs(y) < 1e9)) return;
    if (scale < 1) scale = 1;
    if (scale > 1000) scale = 1000;
    /* centre and end by the ink, without the blank column after the last glyph */
    int64_t w = usg_image_text_width(s, scale);
    int64_t ink = w > 0 ? w - scale : 0;
    int64_t u = anchor == USG_ANCHOR_MIDDLE ? -ink / 2 : anchor == USG_ANCHOR_END ? -ink : 0;
    int64_t ax = (int64_t)floor(x + 0.5), ay = (int64_t)floor(y + 0.5);
    int64_t step = (int64_t)USG_FONT_W * scale, reach = (int64_t)USG_FONT_H * scale;
    size_t i = 0;
    for (int g; (g = next_glyph(s, &i)) >= 0; u += step) {
        /* skip glyphs wholly off the canvas (cheap for long strings) */
        int64_t lo = rotate ? ay - u - step : ax + u, hi = lo + step;
        int64_t span = rotate ? im->height : im->width;
        if (hi < 0 || lo > span) continue;
        int64_t cross = rotate ? ax : ay;
        int64_t cspan = rotate ? im->width : im->height;
        if (cross + reach < 0 || cross - reach > cspan) continue;
        draw_glyph(im, g, u, ax, ay, scale, c, rotate);
    }
}

/* ==== PNG =============================================================== */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Length, type, data, CRC of type + data; returns the bytes written. */
static size_t put_chunk(uint8_t *p, const char *type, const uint8_t *data, size_t n)
{
    put32(p, (uint32_t)n);
    memcpy(p + 4, type, 4);
    if (n) memcpy(p + 8, data, n);
    uLong crc = crc32(0L, p + 4, 4);
    if (n) crc = crc32(crc, data, (uInt)n);
    put32(p + 8 + n, (uint32_t)crc);
    return 12 + n;
}

/* IDAT chunks stay far below the format's 2^31 - 1 limit. */
#define IDAT_MAX ((size_t)1 << 24)

/* Deflate `raw` (rows already prefixed by their filter byte) and wrap it in
 * the PNG signature, IHDR, IDAT chunks and IEND. Frees nothing. */
static usg_status png_assemble(uint8_t **buf, size_t *len, int w, int h, int color_type,
                               const uint8_t *raw, size_t rawlen, const char *fn)
{
    uLongf zlen = compressBound((uLong)rawlen);
    uint8_t *z = usg_alloc(zlen);
    if (!z) return USG_NOMEM;
    int zs = compress2(z, &zlen, raw, (uLong)rawlen, 6);
    if (zs != Z_OK) {
        usg_free(z);
        return usg_fail(zs == Z_MEM_ERROR ? USG_NOMEM : USG_ARG,
                        "%s: zlib compress2 failed (%d)", fn, zs);
    }
    size_t nidat = zlen / IDAT_MAX + 1;
    size_t total = 8 + 25 + zlen + 12 * nidat + 12;
    uint8_t *out = usg_alloc(total);
    if (!out) {
        usg_free(z);
        return USG_NOMEM;
    }
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    uint8_t ihdr[13];
    put32(ihdr, (uint32_t)w);
    put32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 8;                    /* bits per sample */
    ihdr[9] = (uint8_t)color_type;  /* 0 grey, 2 RGB */
    ihdr[10] = ihdr[11] = ihdr[12] = 0;   /* deflate, adaptive filters, no interlace */
    size_t o = 8;
    memcpy(out, sig, 8);
    o += put_chunk(out + o, "IHDR", ihdr, 13);
    for (size_t k = 0; k < nidat; k++) {
        size_t a = k * IDAT_MAX, n = zlen - a < IDAT_MAX ? zlen - a : IDAT_MAX;
        o += put_chunk(out + o, "IDAT", z + a, n);
    }
    o += put_chunk(out + o, "IEND", NULL, 0);
    usg_free(z);
    *buf = out;
    *len = o;
    return USG_OK;
}

/* Rows go out with filter 0 (none): figures are mostly flat colour, which
 * deflate already packs well, and the bytes stay easy to check. */
usg_status usg_image_encode_png(const usg_image *im, uint8_t **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    size_t row = 1 + 3 * (size_t)im->width, rawlen = row * (size_t)im->height;
    uint8_t *raw = usg_alloc(rawlen);
    if (!raw) return USG_NOMEM;
    for (int y = 0; y < im->height; y++) {
        raw[row * y] = 0;
        memcpy(raw + row * y + 1, im->rgb + 3 * (size_t)y * (size_t)im->width, row - 1);
    }
    usg_status s = png_assemble(buf, len, im->width, im->height, 2, raw, rawlen,
                                "canvas:save_png");
    usg_free(raw);
    return s;
}

/* One sample as a byte: floats clamped to [0, 1] and scaled; i32 as is. */
static uint8_t sample_byte(usg_dtype dt, double v)
{
    if (dt == USG_I32) return (uint8_t)v;
    if (!(v > 0)) return 0;
    if (v >= 1) return 255;
    return (uint8_t)floor(v * 255 + 0.5);
}

usg_status usg_tensor_encode_png(const usg_tensor *t, uint8_t **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    char sh[128];
    bool shape_ok = t->ndim == 2 || (t->ndim == 3 && (t->shape[2] == 1 || t->shape[2] == 3));
    if (!shape_ok)
        return usg_fail(USG_SHAPE, "image.save_png: tensor must be (H, W), (H, W, 1) or "
                        "(H, W, 3), got %s", usg_shape_str(sh, sizeof sh, t->ndim, t->shape));
    int64_t h = t->shape[0], w = t->shape[1], ch = t->ndim == 3 ? t->shape[2] : 1;
    if (h < 1 || w < 1 || h > USG_IMAGE_MAX_SIDE || w > USG_IMAGE_MAX_SIDE)
        return usg_fail(USG_SHAPE, "image.save_png: height and width must be in 1..%d, got %s",
                        USG_IMAGE_MAX_SIDE, usg_shape_str(sh, sizeof sh, t->ndim, t->shape));
    int64_t n = h * w * ch;
    if (t->dtype == USG_I32)
        for (int64_t i = 0; i < n; i++) {
            double v = usg_tensor_get_flat(t, i);
            if (v < 0 || v > 255)
                return usg_fail(USG_ARG, "image.save_png: i32 values must be in 0..255, got %.0f "
                                "at element %lld", v, (long long)i + 1);
        }
    size_t row = 1 + (size_t)(w * ch), rawlen = row * (size_t)h;
    uint8_t *raw = usg_alloc(rawlen);
    if (!raw) return USG_NOMEM;
    for (int64_t y = 0; y < h; y++) {
        uint8_t *r = raw + row * (size_t)y;
        r[0] = 0;
        for (int64_t k = 0; k < w * ch; k++)
            r[1 + k] = sample_byte(t->dtype, usg_tensor_get_flat(t, y * w * ch + k));
    }
    usg_status s = png_assemble(buf, len, (int)w, (int)h, ch == 3 ? 2 : 0, raw, rawlen,
                                "image.save_png");
    usg_free(raw);
    return s;
}

/* ==== PNG decoding =======================================================
 * Enough of the format to read back what people hand a model: 8- and
 * 16-bit grey, grey + alpha, RGB and RGBA, palettes and 1-, 2- and 4-bit
 * grey, without interlace (Adam7 is refused with a message). Every length
 * and CRC is checked before it is used, since the file comes from outside. */

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int paeth(int a, int b, int c)
{
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    if (pa <= pb && pa <= pc) return a;
    return pb <= pc ? b : c;
}

/* Undo the filter of each row in place; bpp = bytes per complete pixel
 * (at least 1). raw holds h rows of 1 + stride bytes. */
static usg_status png_unfilter(uint8_t *raw, size_t stride, int64_t h, size_t bpp)
{
    const uint8_t *prev = NULL;
    for (int64_t y = 0; y < h; y++) {
        uint8_t *r = raw + (size_t)y * (stride + 1), f = r[0], *x = r + 1;
        if (f > 4)
            return usg_fail(USG_ARG, "image.load_png: row %lld has filter %d (0..4 expected)",
                            (long long)y + 1, f);
        for (size_t i = 0; i < stride; i++) {
            int a = i >= bpp ? x[i - bpp] : 0, b = prev ? prev[i] : 0;
            int c = prev && i >= bpp ? prev[i - bpp] : 0;
            int add = f == 1 ? a : f == 2 ? b : f == 3 ? (a + b) / 2 : f == 4 ? paeth(a, b, c) : 0;
            x[i] = (uint8_t)(x[i] + add);
        }
        prev = x;
    }
    return USG_OK;
}

/* Sample k (0-based, in channel order) of row x at bit depth d, in [0, 1]
 * (pal: the raw index instead). */
static unsigned png_sample(const uint8_t *x, size_t k, int d)
{
    if (d == 16) return (unsigned)x[2 * k] << 8 | x[2 * k + 1];
    if (d == 8) return x[k];
    size_t bit = k * (size_t)d;
    return (x[bit / 8] >> (8 - d - bit % 8)) & ((1u << d) - 1);
}

usg_status usg_image_decode_png(const uint8_t *png, size_t n, usg_tensor **out)
{
    static const char *fn = "image.load_png";
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    *out = NULL;
    if (n < 8 || memcmp(png, sig, 8) != 0)
        return usg_fail(USG_ARG, "%s: not a PNG file (its first 8 bytes are not the PNG signature)", fn);
    uint32_t w = 0, h = 0;
    int depth = 0, ctype = -1, interlace = 0, npal = 0;
    uint8_t pal[256 * 3];
    size_t zlen = 0, o = 8;
    bool end = false;
    /* first pass: the header, the palette, and how many IDAT bytes there are */
    while (!end) {
        if (n - o < 12) return usg_fail(USG_ARG, "%s: the file is cut short (no IEND chunk)", fn);
        uint32_t len = get32(png + o);
        if (len > n - o - 12) return usg_fail(USG_ARG, "%s: a chunk runs past the end of the file", fn);
        const uint8_t *type = png + o + 4, *data = png + o + 8;
        if (get32(data + len) != (uint32_t)crc32(crc32(0L, type, 4), data, len))
            return usg_fail(USG_ARG, "%s: the %.4s chunk fails its CRC check (a damaged file)", fn,
                            (const char *)type);
        if (o == 8 && memcmp(type, "IHDR", 4) != 0)
            return usg_fail(USG_ARG, "%s: the first chunk is not IHDR", fn);
        if (memcmp(type, "IHDR", 4) == 0) {
            if (len != 13) return usg_fail(USG_ARG, "%s: IHDR has %u bytes, not 13", fn, len);
            w = get32(data), h = get32(data + 4), depth = data[8], ctype = data[9];
            if (data[10] != 0 || data[11] != 0)
                return usg_fail(USG_ARG, "%s: unknown compression or filter method", fn);
            interlace = data[12];
        } else if (memcmp(type, "PLTE", 4) == 0) {
            if (len % 3 || len > sizeof pal) return usg_fail(USG_ARG, "%s: a palette of %u bytes", fn, len);
            memcpy(pal, data, len);
            npal = (int)(len / 3);
        } else if (memcmp(type, "IDAT", 4) == 0) {
            zlen += len;
        } else if (memcmp(type, "IEND", 4) == 0) {
            end = true;
        }
        o += 12 + (size_t)len;
    }
    if (w < 1 || h < 1 || w > USG_IMAGE_MAX_SIDE || h > USG_IMAGE_MAX_SIDE ||
        (int64_t)w * h > USG_IMAGE_MAX_PIXELS)
        return usg_fail(USG_ARG, "%s: an image of %u x %u pixels (1..%d a side, at most %lld pixels)",
                        fn, w, h, USG_IMAGE_MAX_SIDE, (long long)USG_IMAGE_MAX_PIXELS);
    int chans = ctype == 0 ? 1 : ctype == 2 ? 3 : ctype == 3 ? 1 : ctype == 4 ? 2 : ctype == 6 ? 4 : 0;
    bool depth_ok = ctype == 0 ? (depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16)
                  : ctype == 3 ? (depth == 1 || depth == 2 || depth == 4 || depth == 8)
                  : (depth == 8 || depth == 16);
    if (!chans || !depth_ok)
        return usg_fail(USG_ARG, "%s: colour type %d at bit depth %d is not a valid PNG", fn, ctype, depth);
    if (interlace)
        return usg_fail(USG_ARG, "%s: an interlaced (Adam7) PNG; save it without interlace", fn);
    if (ctype == 3 && npal == 0) return usg_fail(USG_ARG, "%s: a palette image without PLTE", fn);
    if (zlen == 0) return usg_fail(USG_ARG, "%s: no image data (IDAT)", fn);
    /* the IDAT chunks, joined, inflate to h rows of 1 + stride bytes */
    size_t stride = ((size_t)w * (size_t)chans * (size_t)depth + 7) / 8;
    size_t bpp = (size_t)chans * (size_t)depth / 8 ? (size_t)chans * (size_t)depth / 8 : 1;
    size_t rawlen = (stride + 1) * h;
    uint8_t *z = usg_alloc(zlen), *raw = usg_alloc(rawlen + 1);
    if (!z || !raw) {
        usg_free(z);
        usg_free(raw);
        return USG_NOMEM;
    }
    size_t zo = 0;
    for (o = 8; zo < zlen; o += 12 + (size_t)get32(png + o))
        if (memcmp(png + o + 4, "IDAT", 4) == 0) {
            memcpy(z + zo, png + o + 8, get32(png + o));
            zo += get32(png + o);
        }
    uLongf got = (uLongf)rawlen + 1;
    int zs = uncompress(raw, &got, z, (uLong)zlen);
    usg_free(z);
    usg_status s = USG_OK;
    if (zs == Z_MEM_ERROR) s = USG_NOMEM;
    else if (zs != Z_OK || got != rawlen)
        s = usg_fail(USG_ARG, "%s: the image data does not inflate to %u rows of %zu bytes "
                     "(zlib says %d; a damaged file)", fn, h, stride + 1, zs);
    if (s == USG_OK) s = png_unfilter(raw, stride, h, bpp);
    int outc = ctype == 3 ? 3 : chans;
    int64_t shape[3] = {h, w, outc};
    usg_tensor *t = NULL;
    if (s == USG_OK) s = usg_tensor_empty(&t, USG_F32, outc == 1 ? 2 : 3, shape);
    if (s != USG_OK) {
        usg_free(raw);
        return s;
    }
    float *px = usg_tensor_data(t);
    double top = depth == 16 ? 65535.0 : (double)((1u << depth) - 1);
    for (uint32_t y = 0; y < h; y++) {
        const uint8_t *x = raw + (size_t)y * (stride + 1) + 1;
        for (uint32_t i = 0; i < w; i++) {
            float *p = px + ((size_t)y * w + i) * (size_t)outc;
            if (ctype == 3) {
                unsigned k = png_sample(x, i, depth);
                if ((int)k >= npal) {
                    usg_free(raw);
                    usg_tensor_release(t);
                    return usg_fail(USG_ARG, "%s: pixel (%u, %u) names colour %u of a palette of %d",
                                    fn, y + 1, i + 1, k, npal);
                }
                for (int c = 0; c < 3; c++) p[c] = (float)(pal[3 * k + c] / 255.0);
            } else {
                for (int c = 0; c < chans; c++)
                    p[c] = (float)(png_sample(x, (size_t)i * chans + c, depth) / top);
            }
        }
    }
    usg_free(raw);
    *out = t;
    return USG_OK;
}
