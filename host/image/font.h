/*
 * font.h -- the built-in bitmap font of image.c (private to libusagi_image).
 *
 * One fixed-width face for ASCII 32..126 in 6x13 cells (see USG_FONT_* in
 * usagi/image.h). Each glyph is 11 rows of 5 bits, the cell's rows 2..12:
 * rows 2..10 hold capitals and digits (row 10 sits on the baseline), rows
 * 11..12 the descenders; rows 0..1 and the sixth column stay empty, as the
 * gap between lines and letters. Bit 4 of a row is its leftmost pixel.
 */
#ifndef USAGI_FONT_H
#define USAGI_FONT_H

#include <stdint.h>

#define USG_FONT_FIRST 32
#define USG_FONT_LAST 126
#define USG_FONT_ROWS 11    /* stored rows per glyph */
#define USG_FONT_TOP 2      /* cell row of the first stored row */

extern const uint8_t usg_font_glyphs[USG_FONT_LAST - USG_FONT_FIRST + 1][USG_FONT_ROWS];

#endif
