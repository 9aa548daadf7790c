/*
 * w2v_io.c -- word vectors in the formats of Mikolov's word2vec tool, which
 * gensim, fastText and most other tools read and write:
 *
 *   text:    "V D\n" then V lines "word x_1 x_2 ... x_D\n"
 *   binary:  "V D\n" then V records "word " + D little-endian float32
 *            (+ "\n" after each in Mikolov's files; gensim writes none)
 *
 * Reading skips any whitespace before a word, so both binary flavours load.
 * Files may be gzipped. Text is written with 9 significant digits, enough
 * for a float32 to come back bit for bit. The HDF5 form is in word2vec.lua.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "word2vec.h"

typedef struct in {
    gzFile gz;
    const char *path;
    int pos, len;
    bool eof;
    unsigned char buf[1 << 16];     /* last: the loader clears what comes before it */
} in;

static int in_peek(in *f)
{
    if (f->pos < f->len) return f->buf[f->pos];
    if (f->eof) return -1;
    int n = gzread(f->gz, f->buf, sizeof f->buf);
    if (n <= 0) { f->eof = true; return -1; }
    f->pos = 0;
    f->len = n;
    return f->buf[0];
}

static bool ws(int c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

/* The next whitespace-delimited token into tok (cap bytes); false at the
 * end of the file or when the token is too long. The delimiter is left. */
static bool in_token(in *f, char *tok, size_t cap)
{
    int c;
    while ((c = in_peek(f)) >= 0 && ws(c)) f->pos++;
    size_t n = 0;
    while ((c = in_peek(f)) >= 0 && !ws(c)) {
        if (n + 1 >= cap) return false;
        tok[n++] = (char)c;
        f->pos++;
    }
    tok[n] = 0;
    return n > 0;
}

static bool in_bytes(in *f, void *dst, size_t n)
{
    unsigned char *d = dst;
    while (n > 0) {
        if (in_peek(f) < 0) return false;
        size_t k = (size_t)(f->len - f->pos) < n ? (size_t)(f->len - f->pos) : n;
        memcpy(d, f->buf + f->pos, k);
        f->pos += (int)k;
        d += k;
        n -= k;
    }
    return true;
}

void usg_w2v_words_free(char **words, int64_t n)
{
    for (int64_t i = 0; words && i < n; i++) usg_free(words[i]);
    usg_free(words);
}

usg_status usg_w2v_load(const char *path, bool binary, char ***words_out, int64_t *n_out,
                        usg_tensor **vec_out)
{
    *words_out = NULL;
    *vec_out = NULL;
    in *f = malloc(sizeof *f);
    if (!f) return usg_fail(USG_NOMEM, "word2vec.load: out of memory");
    memset(f, 0, offsetof(in, buf));
    f->path = path;
    if (!(f->gz = gzopen(path, "rb"))) { free(f); return usg_fail(USG_IO, "word2vec.load: cannot open '%s'", path); }
    char tok[USG_W2V_MAX_WORD], *end;
    usg_status s = USG_OK;
    long long V = 0, D = 0;
    if (!in_token(f, tok, sizeof tok) || (V = strtoll(tok, &end, 10)) < 1 || *end ||
        !in_token(f, tok, sizeof tok) || (D = strtoll(tok, &end, 10)) < 1 || *end || V > (1LL << 31) || D > 100000)
        s = usg_fail(USG_ARG, "word2vec.load: '%s': expected a header \"V D\" (1 <= V <= 2^31, 1 <= D <= 100000)", path);
    char **words = NULL;
    usg_tensor *vec = NULL;
    if (s == USG_OK && (s = usg_tensor_empty(&vec, USG_F32, 2, (int64_t[]){V, D})) == USG_OK) {
        if (!(words = usg_alloc((size_t)V * sizeof *words))) s = USG_NOMEM;
        else memset(words, 0, (size_t)V * sizeof *words);
    }
    float *x = s == USG_OK ? usg_tensor_data(vec) : NULL;
    for (long long i = 0; s == USG_OK && i < V; i++) {
        if (!in_token(f, tok, sizeof tok)) {
            s = usg_fail(USG_ARG, "word2vec.load: '%s': the file ends (or a word is too long) at word %lld of %lld", path, i + 1, V);
            break;
        }
        size_t len = strlen(tok);
        if (!(words[i] = usg_alloc(len + 1))) { s = USG_NOMEM; break; }
        memcpy(words[i], tok, len + 1);
        if (binary) {
            if (in_peek(f) == ' ') f->pos++;
            if (!in_bytes(f, x + i * D, (size_t)D * sizeof(float)))
                s = usg_fail(USG_ARG, "word2vec.load: '%s': the file ends inside the vector of word %lld ('%s')", path, i + 1, tok);
        } else {
            for (long long d = 0; s == USG_OK && d < D; d++) {
                if (!in_token(f, tok, sizeof tok) || (x[i * D + d] = strtof(tok, &end), *end))
                    s = usg_fail(USG_ARG, "word2vec.load: '%s': word %lld ('%s') needs %lld numbers; number %lld is %s",
                                 path, i + 1, words[i], D, d + 1, f->eof && !*tok ? "missing" : "not a number");
            }
        }
    }
    gzclose(f->gz);
    free(f);
    if (s != USG_OK) {
        usg_w2v_words_free(words, V);
        usg_tensor_release(vec);
        return s;
    }
    *words_out = words;
    *n_out = V;
    *vec_out = vec;
    return USG_OK;
}

usg_status usg_w2v_save(const char *path, bool binary, const char *const *words, int64_t n,
                        const float *x, int64_t D)
{
    FILE *f = fopen(path, "wb");
    if (!f) return usg_fail(USG_IO, "word2vec.save: cannot write '%s'", path);
    fprintf(f, "%lld %lld\n", (long long)n, (long long)D);
    for (int64_t i = 0; i < n; i++) {
        fputs(words[i], f);
        if (binary) {
            fputc(' ', f);
            fwrite(x + i * D, sizeof(float), (size_t)D, f);
        } else {
            for (int64_t d = 0; d < D; d++) fprintf(f, " %.9g", x[i * D + d]);
        }
        fputc('\n', f);
    }
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0) bad = true;
    return bad ? usg_fail(USG_IO, "word2vec.save: write error on '%s'", path) : USG_OK;
}
