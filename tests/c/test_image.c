/*
 * test_image.c -- cmocka tests of host/image/image.c (libusagi_image): canvas arguments and
 * allocation failures, exact pixels of lines, rectangles, markers and text
 * (upright and turned), polylines broken by NaN and painted once where they
 * overlap, clipping (shapes and text partly or far outside, huge and
 * non-finite coordinates never write past the pixel buffer: the canvas is
 * planted inside guard bands that must stay untouched), and the PNG bytes:
 * signature, IHDR, every CRC, the inflated IDAT of a canvas and the exact
 * bytes of small tensor images; and the decoder: every filter, bit depths
 * 1 to 16, palettes, and damaged, cut or unsupported files refused.
 */
#include <stdlib.h>
#include <zlib.h>

#include "testutil.h"
#include "usagi/image.h"

static const usg_rgb WHITE = {255, 255, 255}, BLACK = {0, 0, 0}, RED = {255, 0, 0};

static void expect_px(const usg_image *im, int x, int y, int r, int g, int b)
{
    usg_rgb c = usg_image_get(im, x, y);
    if (c.r != r || c.g != g || c.b != b)
        fail_msg("pixel (%d, %d): got (%d, %d, %d), want (%d, %d, %d)", x, y, c.r, c.g, c.b,
                 r, g, b);
}

static usg_image *canvas(int w, int h)
{
    usg_image *im = NULL;
    assert_int_equal(usg_image_new(&im, w, h, WHITE), USG_OK);
    return im;
}

/* Pixels that are not pure white. */
static int inked(const usg_image *im)
{
    int n = 0;
    for (int y = 0; y < im->height; y++)
        for (int x = 0; x < im->width; x++) {
            usg_rgb c = usg_image_get(im, x, y);
            n += c.r != 255 || c.g != 255 || c.b != 255;
        }
    return n;
}

/* ==== Canvas ============================================================ */

static void test_new_and_errors(void **state)
{
    usg_image *im = canvas(4, 3);
    assert_int_equal(im->width, 4);
    assert_int_equal(im->height, 3);
    expect_px(im, 3, 2, 255, 255, 255);
    usg_image_fill(im, (usg_rgb){1, 2, 3});
    expect_px(im, 0, 0, 1, 2, 3);
    expect_px(im, 3, 2, 1, 2, 3);
    expect_px(im, 4, 0, 0, 0, 0);     /* outside reads black */
    expect_px(im, -1, 0, 0, 0, 0);
    usg_image_free(im);
    usg_image_free(NULL);

    im = (usg_image *)0x1;
    expect_err(usg_image_new(&im, 0, 5, WHITE), USG_ARG, "image.canvas: width must be in 1..32768, got 0");
    assert_null(im);
    expect_err(usg_image_new(&im, 5, 40000, WHITE), USG_ARG, "height must be in 1..32768, got 40000");
    expect_err(usg_image_new(&im, 32768, 32768, WHITE), USG_ARG, "at most 268435456 pixels");
}

static void test_new_nomem(void **state)
{
    size_t before = usg_alloc_live_bytes();
    int fails = 0;
    for (long k = 1; k < 10; k++) {
        usg_image *im = (usg_image *)0x1;
        usg_alloc_fail_after(k);
        usg_status s = usg_image_new(&im, 8, 8, WHITE);
        usg_alloc_fail_after(0);
        if (s == USG_OK) {
            usg_image_free(im);
            break;
        }
        assert_int_equal(s, USG_NOMEM);
        assert_null(im);
        assert_int_equal(usg_alloc_live_bytes(), before);
        fails++;
    }
    assert_int_equal(fails, 3);
    assert_int_equal(usg_alloc_live_bytes(), before);
}

/* ==== Shapes ============================================================ */

static void test_line_pixels(void **state)
{
    usg_image *im = canvas(20, 20);
    /* along the centres of row 10: exactly that row, fully black */
    usg_image_line(im, 4, 10.5, 12, 10.5, BLACK, 1);
    for (int x = 4; x < 12; x++) expect_px(im, x, 10, 0, 0, 0);
    expect_px(im, 8, 9, 255, 255, 255);
    expect_px(im, 8, 11, 255, 255, 255);
    /* the round cap reaches half a pixel past the end: half coverage */
    expect_px(im, 3, 10, 127, 127, 127);
    expect_px(im, 13, 10, 255, 255, 255);
    /* on a pixel edge, two rows share it half and half */
    usg_image_line(im, 4, 5, 12, 5, RED, 1);
    expect_px(im, 8, 4, 255, 127, 127);
    expect_px(im, 8, 5, 255, 127, 127);
    /* width 3 covers three rows */
    usg_image_fill(im, WHITE);
    usg_image_line(im, 10.5, 2, 10.5, 18, BLACK, 3);
    for (int x = 9; x <= 11; x++) expect_px(im, x, 10, 0, 0, 0);
    expect_px(im, 8, 10, 255, 255, 255);
    expect_px(im, 12, 10, 255, 255, 255);
    /* thinner than a pixel: fainter, same footprint */
    usg_image_fill(im, WHITE);
    usg_image_line(im, 2, 3.5, 18, 3.5, BLACK, 0.5);
    expect_px(im, 10, 3, 127, 127, 127);
    expect_px(im, 10, 2, 255, 255, 255);
    /* zero, negative and NaN widths draw nothing */
    usg_image_fill(im, WHITE);
    usg_image_line(im, 0, 0, 20, 20, BLACK, 0);
    usg_image_line(im, 0, 0, 20, 20, BLACK, -1);
    usg_image_line(im, 0, 0, 20, 20, BLACK, NAN);
    assert_int_equal(inked(im), 0);
    /* a diagonal is anti-aliased: some grey pixels, symmetric about it */
    usg_image_line(im, 2, 2, 18, 18, BLACK, 1.5);
    usg_rgb a = usg_image_get(im, 10, 9), b = usg_image_get(im, 9, 10);
    assert_int_equal(a.r, b.r);
    assert_true(a.r > 0 && a.r < 255);
    expect_px(im, 10, 10, 0, 0, 0);
    usg_image_free(im);
}

static void test_polyline_breaks_and_overlap(void **state)
{
    usg_image *im = canvas(30, 10);
    double xs[] = {1.5, 8.5, NAN, 20.5, 28.5}, ys[] = {4.5, 4.5, 4.5, 4.5, 4.5};
    usg_image_polyline(im, xs, ys, 5, BLACK, 1);
    expect_px(im, 5, 4, 0, 0, 0);
    expect_px(im, 24, 4, 0, 0, 0);
    expect_px(im, 14, 4, 255, 255, 255);   /* the gap stays empty */
    /* a point alone between breaks draws nothing */
    usg_image_fill(im, WHITE);
    double xs2[] = {NAN, 15.5, INFINITY}, ys2[] = {4.5, 4.5, 4.5};
    usg_image_polyline(im, xs2, ys2, 3, BLACK, 3);
    assert_int_equal(inked(im), 0);
    /* there and back again at half strength: painted once, not twice */
    double xs3[] = {2.5, 25.5, 2.5}, ys3[] = {4.5, 4.5, 4.5};
    usg_image_polyline(im, xs3, ys3, 3, BLACK, 0.5);
    expect_px(im, 12, 4, 127, 127, 127);
    /* n = 0 and 1 are fine */
    usg_image_polyline(im, xs3, ys3, 1, BLACK, 1);
    usg_image_polyline(im, xs3, ys3, 0, BLACK, 1);
    usg_image_free(im);
}

static void test_rect_and_markers(void **state)
{
    usg_image *im = canvas(12, 12);
    usg_image_rect(im, 2, 3, 4, 2, RED);
    expect_px(im, 2, 3, 255, 0, 0);
    expect_px(im, 5, 4, 255, 0, 0);
    expect_px(im, 6, 4, 255, 255, 255);
    expect_px(im, 3, 5, 255, 255, 255);
    assert_int_equal(inked(im), 8);
    /* half a pixel of coverage on the right edge */
    usg_image_fill(im, WHITE);
    usg_image_rect(im, 1, 1, 2.5, 1, BLACK);
    expect_px(im, 2, 1, 0, 0, 0);
    expect_px(im, 3, 1, 127, 127, 127);
    usg_image_rect(im, 1, 1, -2, 1, BLACK);   /* empty: nothing */
    usg_image_rect(im, NAN, 1, 2, 1, BLACK);
    assert_int_equal(inked(im), 3);
    /* square marker of side 4 centred on a pixel corner: 16 pixels */
    usg_image_fill(im, WHITE);
    usg_image_marker(im, 6, 6, 4, BLACK, USG_MARKER_SQUARE);
    assert_int_equal(inked(im), 16);
    /* round marker: the centre full, symmetric, corners untouched */
    usg_image_fill(im, WHITE);
    usg_image_marker(im, 6, 6, 6, BLACK, USG_MARKER_CIRCLE);
    expect_px(im, 5, 5, 0, 0, 0);
    expect_px(im, 6, 6, 0, 0, 0);
    expect_px(im, 3, 3, 255, 255, 255);
    usg_rgb l = usg_image_get(im, 3, 5), r = usg_image_get(im, 8, 5);
    assert_int_equal(l.r, r.r);
    usg_image_free(im);
}

/* ==== Text ============================================================== */

static void test_text(void **state)
{
    assert_int_equal(usg_image_text_width("abc", 1), 18);
    assert_int_equal(usg_image_text_width("abc", 2), 36);
    assert_int_equal(usg_image_text_width("", 1), 0);
    assert_int_equal(usg_image_text_width("\xc3\xa9t\xc3\xa9", 1), 18);   /* one glyph per character */
    assert_int_equal(usg_image_text_width("x", 0), 6);

    /* '-' is one full row, 4 pixels above the baseline, columns 0..4 */
    usg_image *im = canvas(40, 40);
    usg_image_text(im, 10, 20, "-", BLACK, 1, USG_ANCHOR_START, false);
    for (int x = 10; x < 15; x++) expect_px(im, x, 16, 0, 0, 0);
    expect_px(im, 15, 16, 255, 255, 255);
    assert_int_equal(inked(im), 5);
    /* anchored at its end, the ink stops just before x; the middle is the
     * ink's middle (the blank column after the glyph does not count) */
    usg_image_fill(im, WHITE);
    usg_image_text(im, 15, 20, "-", BLACK, 1, USG_ANCHOR_END, false);
    for (int x = 10; x < 15; x++) expect_px(im, x, 16, 0, 0, 0);
    assert_int_equal(inked(im), 5);
    usg_image_fill(im, WHITE);
    usg_image_text(im, 12, 20, "-", BLACK, 1, USG_ANCHOR_MIDDLE, false);
    for (int x = 10; x < 15; x++) expect_px(im, x, 16, 0, 0, 0);
    assert_int_equal(inked(im), 5);
    /* turned: the dash becomes a column 4 pixels left of the anchor,
     * rising from it */
    usg_image_fill(im, WHITE);
    usg_image_text(im, 10, 20, "-", BLACK, 1, USG_ANCHOR_START, true);
    for (int y = 15; y < 20; y++) expect_px(im, 6, y, 0, 0, 0);
    assert_int_equal(inked(im), 5);
    /* scale 2: blocks of 2x2 */
    usg_image_fill(im, WHITE);
    usg_image_text(im, 10, 30, "-", BLACK, 2, USG_ANCHOR_START, false);
    assert_int_equal(inked(im), 20);
    expect_px(im, 10, 22, 0, 0, 0);
    expect_px(im, 19, 23, 0, 0, 0);
    /* the letters differ: 'I' and 'l' and '1' each have their own shape */
    usg_image_fill(im, WHITE);
    usg_image_text(im, 2, 15, "Hg_", BLACK, 1, USG_ANCHOR_START, false);
    expect_px(im, 2, 6, 0, 0, 0);        /* H's top-left, 9 rows above the baseline */
    expect_px(im, 2, 5, 255, 255, 255);
    expect_px(im, 9, 16, 0, 0, 0);        /* g's descender reaches below the baseline */
    expect_px(im, 8, 16, 255, 255, 255);
    assert_true(inked(im) > 30);
    usg_image_free(im);
}

/* ==== Clipping ========================================================== */

/* A canvas planted in a larger buffer whose margins hold a pattern, so a
 * write past either end of rgb or cov shows. */
#define GUARD 4096
typedef struct guarded { usg_image im; uint8_t *rgb_mem, *cov_mem; } guarded;

static void guarded_init(guarded *g, int w, int h)
{
    size_t n = (size_t)w * h;
    g->rgb_mem = malloc(3 * n + 2 * GUARD);
    g->cov_mem = malloc(n + 2 * GUARD);
    memset(g->rgb_mem, 0xA5, 3 * n + 2 * GUARD);
    memset(g->cov_mem, 0xA5, n + 2 * GUARD);
    memset(g->cov_mem + GUARD, 0, n);
    g->im = (usg_image){w, h, g->rgb_mem + GUARD, g->cov_mem + GUARD};
    usg_image_fill(&g->im, WHITE);
}

static void guarded_check_free(guarded *g)
{
    size_t n = (size_t)g->im.width * g->im.height;
    for (size_t i = 0; i < GUARD; i++) {
        if (g->rgb_mem[i] != 0xA5 || g->rgb_mem[GUARD + 3 * n + i] != 0xA5)
            fail_msg("rgb guard byte %zu written", i);
        if (g->cov_mem[i] != 0xA5 || g->cov_mem[GUARD + n + i] != 0xA5)
            fail_msg("cov guard byte %zu written", i);
    }
    for (size_t i = 0; i < n; i++)
        if (g->im.cov[i]) fail_msg("coverage scratch left dirty at %zu", i);
    free(g->rgb_mem);
    free(g->cov_mem);
}

static void test_clipping(void **state)
{
    guarded g;
    guarded_init(&g, 17, 11);
    usg_image *im = &g.im;
    static const double far[] = {-1e300, -1e12, -50, -3, -0.4, 5, 10.9, 16.6, 20, 1e9, 1e300};
    int nf = (int)(sizeof far / sizeof far[0]);
    for (int a = 0; a < nf; a++)
        for (int b = 0; b < nf; b++) {
            usg_image_line(im, far[a], far[b], far[nf - 1 - b], far[(a + 3) % nf], BLACK, 2.5);
            usg_image_line(im, far[a], far[b], far[a], far[b], RED, 40);
            usg_image_rect(im, far[a], far[b], far[(a + 5) % nf] - far[a], 30, RED);
            usg_image_marker(im, far[a], far[b], 7, BLACK, USG_MARKER_CIRCLE);
            usg_image_marker(im, far[a], far[b], 7, BLACK, USG_MARKER_SQUARE);
            for (int rot = 0; rot < 2; rot++)
                for (int an = 0; an < 3; an++)
                    usg_image_text(im, far[a], far[b], "Clip me, gently_", BLACK, 1 + (a + b) % 3,
                                   (usg_anchor)an, rot);
        }
    static const double odd[] = {NAN, INFINITY, -INFINITY, 1e308, -1e308, 3};
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 6; b++) {
            double xs[] = {odd[a], 3, odd[b], 8}, ys[] = {odd[b], 4, 5, odd[a]};
            usg_image_polyline(im, xs, ys, 4, BLACK, 1.5);
            usg_image_line(im, odd[a], odd[b], 4, 4, BLACK, odd[(a + b) % 6]);
            usg_image_text(im, odd[a], odd[b], "x", BLACK, 3, USG_ANCHOR_MIDDLE, a % 2);
            usg_image_rect(im, odd[a], 2, odd[b], 3, RED);
        }
    /* a huge scale is clamped, not overflowed: g's descender at scale
     * 1000 covers the canvas below the baseline */
    usg_image_fill(im, WHITE);
    usg_image_text(im, 3, 3, "g", BLACK, 1 << 30, USG_ANCHOR_START, false);
    expect_px(im, 5, 5, 0, 0, 0);
    expect_px(im, 4, 2, 255, 255, 255);
    guarded_check_free(&g);
}

/* ==== PNG =============================================================== */

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Walk the chunks of a PNG, checking each CRC, and return the IDAT data
 * inflated (malloc'd, *rawlen bytes) with width, height and colour type. */
static uint8_t *png_inflate(const uint8_t *buf, size_t len, uint32_t *w, uint32_t *h, int *ct,
                            size_t *rawlen, size_t expect_raw)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    assert_true(len > 8);
    assert_memory_equal(buf, sig, 8);
    uint8_t *z = malloc(len);
    size_t zlen = 0, o = 8;
    int nchunks = 0;
    bool end = false;
    while (o + 12 <= len && !end) {
        uint32_t n = get32(buf + o);
        assert_true(o + 12 + n <= len);
        const uint8_t *type = buf + o + 4;
        uLong crc = crc32(crc32(0L, Z_NULL, 0), type, 4 + n);
        assert_int_equal(get32(buf + o + 8 + n), (uint32_t)crc);
        if (nchunks == 0) {
            assert_memory_equal(type, "IHDR", 4);
            assert_int_equal(n, 13);
            *w = get32(type + 4);
            *h = get32(type + 8);
            assert_int_equal(type[12], 8);
            *ct = type[13];
            assert_int_equal(type[14], 0);
            assert_int_equal(type[15], 0);
            assert_int_equal(type[16], 0);
        } else if (!memcmp(type, "IDAT", 4)) {
            memcpy(z + zlen, type + 4, n);
            zlen += n;
        } else {
            assert_memory_equal(type, "IEND", 4);
            assert_int_equal(n, 0);
            end = true;
        }
        o += 12 + n;
        nchunks++;
    }
    assert_true(end);
    assert_int_equal(o, len);
    uLongf out_len = (uLongf)expect_raw + 16;
    uint8_t *raw = malloc(out_len);
    assert_int_equal(uncompress(raw, &out_len, z, zlen), Z_OK);
    free(z);
    *rawlen = out_len;
    return raw;
}

static void test_png_canvas(void **state)
{
    usg_image *im = canvas(7, 3);
    usg_image_rect(im, 1, 1, 2, 1, (usg_rgb){10, 20, 30});
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(usg_image_encode_png(im, &buf, &len), USG_OK);
    uint32_t w, h;
    int ct;
    size_t rawlen;
    uint8_t *raw = png_inflate(buf, len, &w, &h, &ct, &rawlen, 3 * (1 + 3 * 7));
    assert_int_equal(w, 7);
    assert_int_equal(h, 3);
    assert_int_equal(ct, 2);
    assert_int_equal(rawlen, 3 * (1 + 3 * 7));
    for (int y = 0; y < 3; y++) {
        assert_int_equal(raw[y * 22], 0);      /* filter: none */
        assert_memory_equal(raw + y * 22 + 1, im->rgb + y * 21, 21);
    }
    assert_int_equal(raw[22 + 1 + 3], 10);
    assert_int_equal(raw[22 + 1 + 3 + 2], 30);
    free(raw);
    usg_free(buf);

    /* a larger canvas, and every allocation failing in turn leaks nothing */
    usg_image_free(im);
    im = canvas(300, 200);
    usg_image_line(im, 0, 0, 300, 200, RED, 2);
    size_t before = usg_alloc_live_bytes();
    int fails = 0;
    for (long k = 1; k < 10; k++) {
        usg_alloc_fail_after(k);
        usg_status s = usg_image_encode_png(im, &buf, &len);
        usg_alloc_fail_after(0);
        if (s == USG_OK) break;
        assert_int_equal(s, USG_NOMEM);
        assert_null(buf);
        assert_int_equal(usg_alloc_live_bytes(), before);
        fails++;
    }
    assert_int_equal(fails, 3);
    raw = png_inflate(buf, len, &w, &h, &ct, &rawlen, 200 * (1 + 3 * 300));
    assert_int_equal(w, 300);
    assert_int_equal(h, 200);
    assert_int_equal(rawlen, 200 * (1 + 3 * 300));
    free(raw);
    usg_free(buf);
    usg_image_free(im);
}

/* Encode t and compare the inflated rows with `want`. */
static void expect_tensor_png(usg_tensor *t, uint32_t w, uint32_t h, int ct, const uint8_t *want,
                              size_t n)
{
    uint8_t *buf = NULL;
    size_t len = 0, rawlen;
    assert_int_equal(usg_tensor_encode_png(t, &buf, &len), USG_OK);
    uint32_t gw, gh;
    int gct;
    uint8_t *raw = png_inflate(buf, len, &gw, &gh, &gct, &rawlen, n);
    assert_int_equal(gw, w);
    assert_int_equal(gh, h);
    assert_int_equal(gct, ct);
    assert_int_equal(rawlen, n);
    assert_memory_equal(raw, want, n);
    free(raw);
    usg_free(buf);
}

static void test_png_tensor(void **state)
{
    /* grey f32: clamped, rounded, NaN black */
    usg_tensor *t = mk(USG_F32, 2, SHAPE(2, 2), VALS(0, 0.5, 1, 2));
    expect_tensor_png(t, 2, 2, 0, (const uint8_t[]){0, 0, 128, 0, 255, 255}, 6);
    usg_tensor_release(t);
    t = mk(USG_F64, 2, SHAPE(2, 2), VALS(-1, NAN, 0.25, 1.0 / 255));
    expect_tensor_png(t, 2, 2, 0, (const uint8_t[]){0, 0, 0, 0, 64, 1}, 6);
    /* a transposed view is read in its logical order */
    t = transposed(t);
    expect_tensor_png(t, 2, 2, 0, (const uint8_t[]){0, 0, 64, 0, 0, 1}, 6);
    usg_tensor_release(t);
    /* RGB (H, W, 3) */
    t = mk(USG_F64, 3, SHAPE(2, 2, 3), VALS(1, 0, 0, 0, 1, 0, 0, 0, 1, 0.5, 0.5, 0.5));
    expect_tensor_png(t, 2, 2, 2,
                      (const uint8_t[]){0, 255, 0, 0, 0, 255, 0, 0, 0, 0, 255, 128, 128, 128}, 14);
    usg_tensor_release(t);
    /* i32 bytes as they are; (H, W, 1) is grey */
    t = mk(USG_I32, 3, SHAPE(1, 3, 1), VALS(0, 7, 255));
    expect_tensor_png(t, 3, 1, 0, (const uint8_t[]){0, 0, 7, 255}, 4);
    usg_tensor_release(t);
}

static void test_png_tensor_errors(void **state)
{
    uint8_t *buf = (uint8_t *)0x1;
    size_t len = 1;
    usg_tensor *t = mk(USG_I32, 2, SHAPE(1, 2), VALS(3, 256));
    expect_err(usg_tensor_encode_png(t, &buf, &len), USG_ARG,
               "image.save_png: i32 values must be in 0..255, got 256 at element 2");
    assert_null(buf);
    usg_tensor_release(t);
    t = mk(USG_F32, 1, SHAPE(3), VALS(0, 0, 0));
    expect_err(usg_tensor_encode_png(t, &buf, &len), USG_SHAPE,
               "tensor must be (H, W), (H, W, 1) or (H, W, 3), got (3,)");
    usg_tensor_release(t);
    t = mk(USG_F32, 3, SHAPE(1, 1, 2), VALS(0, 0));
    expect_err(usg_tensor_encode_png(t, &buf, &len), USG_SHAPE, "got (1, 1, 2)");
    usg_tensor_release(t);
    assert_int_equal(usg_tensor_zeros(&t, USG_F32, 2, SHAPE(0, 4)), USG_OK);
    expect_err(usg_tensor_encode_png(t, &buf, &len), USG_SHAPE,
               "height and width must be in 1..32768, got (0, 4)");
    usg_tensor_release(t);
}

/* ==== PNG decoding ====================================================== */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* Append a chunk to buf at *o (its CRC right unless `bad_crc`). */
static void chunk(uint8_t *buf, size_t *o, const char *type, const uint8_t *data, uint32_t n,
                  bool bad_crc)
{
    put_be32(buf + *o, n);
    memcpy(buf + *o + 4, type, 4);
    if (n) memcpy(buf + *o + 8, data, n);
    uLong crc = crc32(0L, buf + *o + 4, 4);
    if (n) crc = crc32(crc, data, n);           /* crc32 of NULL is its initial value */
    put_be32(buf + *o + 8 + n, (uint32_t)crc ^ (bad_crc ? 1u : 0u));
    *o += 12 + n;
}

/* A PNG of the given header and raw (filtered) rows, in buf (4096 bytes);
 * returns its length. pal/npal: a PLTE chunk when npal > 0. */
static size_t make_png(uint8_t *buf, uint32_t w, uint32_t h, int depth, int ctype, int interlace,
                       const uint8_t *raw, size_t rawlen, const uint8_t *pal, int npal)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    size_t o = 8;
    memcpy(buf, sig, 8);
    uint8_t ihdr[13];
    put_be32(ihdr, w);
    put_be32(ihdr + 4, h);
    ihdr[8] = (uint8_t)depth, ihdr[9] = (uint8_t)ctype, ihdr[10] = ihdr[11] = 0;
    ihdr[12] = (uint8_t)interlace;
    chunk(buf, &o, "IHDR", ihdr, 13, false);
    if (npal) chunk(buf, &o, "PLTE", pal, (uint32_t)npal * 3, false);
    uint8_t z[2048];
    uLongf zlen = sizeof z;
    assert_int_equal(compress2(z, &zlen, raw, (uLong)rawlen, 9), Z_OK);
    /* two IDAT chunks: a reader must join them */
    chunk(buf, &o, "IDAT", z, (uint32_t)(zlen / 2), false);
    chunk(buf, &o, "IDAT", z + zlen / 2, (uint32_t)(zlen - zlen / 2), false);
    chunk(buf, &o, "IEND", NULL, 0, false);
    return o;
}

static int paeth_ref(int a, int b, int c)
{
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* Rows of plain pixel bytes, each filtered with filter (y % 5) as an
 * encoder would: raw gets h rows of 1 + stride bytes. */
static void filter_rows(uint8_t *raw, const uint8_t *px, size_t stride, uint32_t h, size_t bpp)
{
    for (uint32_t y = 0; y < h; y++) {
        const uint8_t *x = px + y * stride, *up = y ? px + (y - 1) * stride : NULL;
        uint8_t *r = raw + y * (stride + 1), f = (uint8_t)(y % 5);
        r[0] = f;
        for (size_t i = 0; i < stride; i++) {
            int a = i >= bpp ? x[i - bpp] : 0, b = up ? up[i] : 0, c = up && i >= bpp ? up[i - bpp] : 0;
            int pred = f == 1 ? a : f == 2 ? b : f == 3 ? (a + b) / 2 : f == 4 ? paeth_ref(a, b, c) : 0;
            r[1 + i] = (uint8_t)(x[i] - pred);
        }
    }
}

static void test_png_decode(void **state)
{
    uint8_t png[4096], raw[1024], px[1024];
    usg_tensor *t = NULL;
    /* 8-bit RGB, 6 rows so that every filter (0..4, then 0) appears */
    uint32_t w = 5, h = 6;
    for (size_t i = 0; i < w * h * 3; i++) px[i] = (uint8_t)(i * 37 + 11);
    filter_rows(raw, px, w * 3, h, 3);
    size_t n = make_png(png, w, h, 8, 2, 0, raw, h * (1 + w * 3), NULL, 0);
    if (usg_image_decode_png(png, n, &t) != USG_OK) fail_msg("%s", usg_errmsg());
    assert_int_equal(t->ndim, 3);
    assert_int_equal(t->shape[0], 6);
    assert_int_equal(t->shape[1], 5);
    assert_int_equal(t->shape[2], 3);
    const float *v = usg_tensor_data(t);
    for (size_t i = 0; i < w * h * 3; i++)
        if (fabsf(v[i] - px[i] / 255.0f) > 1e-6f) fail_msg("sample %zu: %g, want %d/255", i, v[i], px[i]);
    usg_tensor_release(t);

    /* 16-bit grey: (H, W), each sample /65535 */
    uint8_t g16[2 * (1 + 4)] = {0, 0x00, 0x00, 0xff, 0xff, 0, 0x80, 0x00, 0x12, 0x34};
    n = make_png(png, 2, 2, 16, 0, 0, g16, sizeof g16, NULL, 0);
    assert_int_equal(usg_image_decode_png(png, n, &t), USG_OK);
    assert_int_equal(t->ndim, 2);
    v = usg_tensor_data(t);
    assert_true(v[0] == 0.0f && v[1] == 1.0f);
    assert_true(fabsf(v[2] - 0x8000 / 65535.0f) < 1e-7f && fabsf(v[3] - 0x1234 / 65535.0f) < 1e-7f);
    usg_tensor_release(t);

    /* 1-bit grey, 10 pixels a row: bits from the high one */
    uint8_t g1[1 + 2] = {0, 0xa5, 0xc0};
    n = make_png(png, 10, 1, 1, 0, 0, g1, sizeof g1, NULL, 0);
    assert_int_equal(usg_image_decode_png(png, n, &t), USG_OK);
    v = usg_tensor_data(t);
    const float bits[10] = {1, 0, 1, 0, 0, 1, 0, 1, 1, 1};
    for (int i = 0; i < 10; i++) assert_true(v[i] == bits[i]);
    usg_tensor_release(t);

    /* a 2-bit palette image: RGB from the palette */
    const uint8_t pal[9] = {255, 0, 0, 0, 255, 0, 0, 0, 255};
    uint8_t p2[1 + 1] = {0, 0x24};          /* indices 0, 2, 1, 0 */
    n = make_png(png, 4, 1, 2, 3, 0, p2, sizeof p2, pal, 3);
    assert_int_equal(usg_image_decode_png(png, n, &t), USG_OK);
    assert_int_equal(t->shape[2], 3);
    v = usg_tensor_data(t);
    assert_true(v[0] == 1 && v[1] == 0 && v[5] == 1 && v[7] == 1 && v[9] == 1);
    usg_tensor_release(t);
    p2[1] = 0xff;                            /* index 3 of a 3-colour palette */
    n = make_png(png, 4, 1, 2, 3, 0, p2, sizeof p2, pal, 3);
    expect_err(usg_image_decode_png(png, n, &t), USG_ARG, "names colour 3 of a palette of 3");
    assert_null(t);
}

static void test_png_decode_errors(void **state)
{
    uint8_t png[4096], raw[8] = {0, 1, 2, 0, 3, 4};
    usg_tensor *t = (usg_tensor *)0x1;
    size_t n = make_png(png, 2, 2, 8, 0, 0, raw, 6, NULL, 0);
    expect_err(usg_image_decode_png((const uint8_t *)"GIF89a..", 8, &t), USG_ARG, "not a PNG file");
    assert_null(t);
    /* cut short anywhere: an error, never a read past the end */
    for (size_t k = 8; k < n; k++) assert_int_equal(usg_image_decode_png(png, k, &t), USG_ARG);
    expect_err(usg_image_decode_png(png, n - 12, &t), USG_ARG, "cut short (no IEND chunk)");
    /* a flipped bit fails a CRC */
    png[40] ^= 0x10;
    expect_err(usg_image_decode_png(png, n, &t), USG_ARG, "fails its CRC check");
    png[40] ^= 0x10;
    assert_int_equal(usg_image_decode_png(png, n, &t), USG_OK);
    usg_tensor_release(t);
    /* rows that do not match the size, a bad filter, interlace, a bad depth */
    n = make_png(png, 3, 2, 8, 0, 0, raw, 6, NULL, 0);
    expect_err(usg_image_decode_png(png, n, &t), USG_ARG, "does not inflate to 2 rows of 4 bytes");
    raw[3] = 9;
    n = make_png(png, 2, 2, 8, 0, 0, raw, 6, NULL, 0);
    expect_err(usg_image_decode_png(png, n, &t), USG_ARG, "row 2 has filter 9");
    raw[3] = 0;
    n = make_png(png, 2, 2, 8, 0, 1, raw, 6, NULL, 0);
    expect_err(usg_image_decode_png(png, n, &t), USG_ARG, "interlaced (Adam7)");
    n = make_png(png, 2, 2, 4, 2, 0, raw, 6, NULL, 0);
    expect_err(usg_image_decode_png(png, n, &t), USG_ARG, "colour type 2 at bit depth 4");
    n = make_png(png, 2, 2, 8, 3, 0, raw, 6, NULL, 0);
    expect_err(usg_image_decode_png(png, n, &t), USG_ARG, "a palette image without PLTE");
    n = make_png(png, 0, 2, 8, 0, 0, raw, 6, NULL, 0);
    expect_err(usg_image_decode_png(png, n, &t), USG_ARG, "an image of 0 x 2 pixels");
    /* every allocation failing in turn: NOMEM, nothing leaked */
    n = make_png(png, 2, 2, 8, 0, 0, raw, 6, NULL, 0);
    size_t before = usg_alloc_live_bytes();
    for (long k = 1; k < 4; k++) {
        usg_alloc_fail_after(k);
        usg_status s = usg_image_decode_png(png, n, &t);
        usg_alloc_fail_after(0);
        if (s == USG_OK) { usg_tensor_release(t); break; }
        assert_int_equal(s, USG_NOMEM);
        assert_int_equal(usg_alloc_live_bytes(), before);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_and_errors),
        cmocka_unit_test(test_new_nomem),
        cmocka_unit_test(test_line_pixels),
        cmocka_unit_test(test_polyline_breaks_and_overlap),
        cmocka_unit_test(test_rect_and_markers),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_clipping),
        cmocka_unit_test(test_png_canvas),
        cmocka_unit_test(test_png_tensor),
        cmocka_unit_test(test_png_tensor_errors),
        cmocka_unit_test(test_png_decode),
        cmocka_unit_test(test_png_decode_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
