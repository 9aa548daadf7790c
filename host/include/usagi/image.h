/*
 * usagi/image.h -- RGB8 raster canvases and PNG encoding, for figures
 * (scripts/usagi/plot.lua draws line charts through the Lua face in
 * host/lua/image_lua.c) and for saving tensors as images.
 *
 * This is a small rasteriser, not a graphics library: anti-aliased lines
 * of any width with round caps and joins, filled rectangles, round and
 * square markers, and text in one built-in fixed-width bitmap font
 * (ASCII 32..126, 6x13 cells) at integer scales, upright or turned 90
 * degrees. No file I/O: PNG bytes go to a memory buffer and the binding
 * writes them.
 *
 * Coordinates are pixels as in SVG: the origin is the top-left corner of
 * the canvas, x grows right, y grows down, and pixel (i, j) covers the
 * square [i, i+1) x [j, j+1), so its centre is (i + 0.5, j + 0.5). A
 * 1-pixel line along y = 10.5 is exactly one row of pixels. Anything
 * outside the canvas is clipped; no coordinate, however large, NaN or
 * infinite, writes outside the pixel buffer (a segment with a non-finite
 * end is skipped).
 *
 * Errors: the calls that allocate return usg_status (usg_errmsg() names the
 * function and the argument); drawing calls cannot fail.
 */
#ifndef USAGI_IMAGE_H
#define USAGI_IMAGE_H

#include "usagi/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The largest canvas side, and the largest pixel count. */
#define USG_IMAGE_MAX_SIDE 32768
#define USG_IMAGE_MAX_PIXELS ((int64_t)1 << 28)

/* The built-in font: cells of USG_FONT_W x USG_FONT_H pixels at scale 1;
 * the baseline lies USG_FONT_ASCENT pixels below the top of the cell,
 * capitals and digits stand USG_FONT_CAP pixels tall on it, and
 * descenders reach USG_FONT_H - USG_FONT_ASCENT below it. */
#define USG_FONT_W 6
#define USG_FONT_H 13
#define USG_FONT_ASCENT 11
#define USG_FONT_CAP 9

typedef struct usg_rgb { uint8_t r, g, b; } usg_rgb;

typedef struct usg_image {
    int width, height;
    uint8_t *rgb;     /* (height, width, 3), rows top to bottom, owned */
    uint8_t *cov;     /* (height, width) coverage scratch, zero between calls */
} usg_image;

/* Where a text's anchor point sits along the text. */
typedef enum usg_anchor {
    USG_ANCHOR_START = 0, USG_ANCHOR_MIDDLE = 1, USG_ANCHOR_END = 2
} usg_anchor;

typedef enum usg_marker { USG_MARKER_CIRCLE = 0, USG_MARKER_SQUARE = 1 } usg_marker;

/* A new canvas filled with bg; 1 <= width, height <= USG_IMAGE_MAX_SIDE.
 * Freed with usg_image_free (NULL is fine). */
USG_API usg_status usg_image_new(usg_image **out, int width, int height, usg_rgb bg);
USG_API void usg_image_free(usg_image *im);

USG_API void usg_image_fill(usg_image *im, usg_rgb c);
/* The pixel at (x, y), 0-based; black outside the canvas. */
USG_API usg_rgb usg_image_get(const usg_image *im, int x, int y);

/* A segment of the given width (> 0; thinner than 1 is drawn fainter) with
 * round caps, anti-aliased by the pixel's distance to it. */
USG_API void usg_image_line(usg_image *im, double x0, double y0, double x1, double y1,
                            usg_rgb c, double width);
/* Segments through n points with round joins; a NaN or infinite
 * coordinate breaks the line there. Overlapping parts are painted once
 * (coverage is the maximum over segments, not a sum), so joins never show
 * darker spots. A point alone between two breaks draws nothing. */
USG_API void usg_image_polyline(usg_image *im, const double *xs, const double *ys, int64_t n,
                                usg_rgb c, double width);
/* The rectangle [x, x+w) x [y, y+h), edges anti-aliased by area. */
USG_API void usg_image_rect(usg_image *im, double x, double y, double w, double h, usg_rgb c);
/* A filled marker of diameter (or side) `size` centred on (x, y). */
USG_API void usg_image_marker(usg_image *im, double x, double y, double size, usg_rgb c,
                              usg_marker shape);

/* Text in the built-in font, scale >= 1 (1 when less). The anchor point
 * (x, y) is on the baseline: its start, middle or end by `anchor` (the
 * middle and end of the ink: the blank column that follows each glyph is
 * left out after the last one, so 'end' text stops just before x). With
 * `rotate` the text turns 90 degrees counter-clockwise (it reads bottom to
 * top, as a y-axis label) about the anchor point. Bytes outside 32..126
 * draw '?', one per UTF-8 character. */
USG_API void usg_image_text(usg_image *im, double x, double y, const char *s, usg_rgb c,
                            int scale, usg_anchor anchor, bool rotate);
/* The advance width of s in pixels at that scale (as drawn by text). */
USG_API int64_t usg_image_text_width(const char *s, int scale);

/* ==== PNG ============================================================== */

/* The canvas as a PNG file in memory (8-bit RGB, no interlace). *buf is
 * allocated with usg_alloc; the caller gives it back with usg_free. */
USG_API usg_status usg_image_encode_png(const usg_image *im, uint8_t **buf, size_t *len);
/* A tensor as a PNG: f32/f64 (H, W) grey or (H, W, 3) RGB with values in
 * [0, 1] (clamped; NaN is 0), or i32 in 0..255 (anything else is an error).
 * (H, W, 1) is grey too. Any strides. */
USG_API usg_status usg_tensor_encode_png(const usg_tensor *t, uint8_t **buf, size_t *len);
/* The image of a PNG file in memory as a new f32 tensor with values in
 * [0, 1]: (H, W) for grey, (H, W, 2) grey + alpha, (H, W, 3) RGB (palette
 * images too), (H, W, 4) RGBA. Bit depths 1 to 16; interlaced files and
 * damaged ones (a CRC, a length, the deflate stream) are USG_ARG errors. */
USG_API usg_status usg_image_decode_png(const uint8_t *png, size_t n, usg_tensor **out);

#ifdef __cplusplus
}
#endif
#endif
