/*
 * w2v_vocab.c -- word2vec's vocabulary, its Huffman tree and negative
 * sampling table, and the corpus reader that streams sentences of ids.
 *
 * Text comes through zlib's gz* functions, which read plain and gzip files
 * alike, a buffer at a time: memory is the vocabulary, never the corpus.
 * Tokens are split on ASCII whitespace; a line end ends a sentence (Mikolov's
 * tool turns it into the token </s>; here it only ends the sentence, as in
 * gensim's LineSentence, and </s> is not a word of the vocabulary).
 * Not here: training (word2vec.c), Lua (word2vec_lua.c).
 */
#define _GNU_SOURCE   /* qsort_r */
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <zlib.h>

#include "word2vec.h"

/* ==== Tokens ============================================================ */

typedef struct src {
    gzFile gz;
    const char *path;
    int pos, len;
    bool eof, lower;
    unsigned char buf[1 << 16];     /* last: src_open clears what comes before it */
} src;

enum { TOK_WORD, TOK_EOL, TOK_EOF, TOK_ERR };

static usg_status src_open(src *s, const char *path, bool lower)
{
    memset(s, 0, offsetof(src, buf));
    s->path = path;
    s->lower = lower;
    s->gz = gzopen(path, "rb");
    if (!s->gz) return usg_fail(USG_IO, "word2vec: cannot open '%s'", path);
    gzbuffer(s->gz, 1 << 17);
    return USG_OK;
}

static void src_close(src *s)
{
    if (s->gz) gzclose(s->gz);
    s->gz = NULL;
}

/* The next byte, -1 at the end, -2 on a read error. */
static inline int src_peek(src *s)
{
    if (s->pos < s->len) return s->buf[s->pos];
    if (s->eof) return -1;
    int n = gzread(s->gz, s->buf, sizeof s->buf);
    if (n < 0) return -2;
    if (n == 0) { s->eof = true; return -1; }
    s->pos = 0;
    s->len = n;
    return s->buf[0];
}

static inline bool is_space(int c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* The next token into word (NUL-terminated, *len bytes, cut at
 * USG_W2V_MAX_WORD - 1), or a line end, or the end of the file. */
static int src_token(src *s, char *word, size_t *len)
{
    int c;
    while ((c = src_peek(s)) >= 0 && is_space(c)) s->pos++;
    if (c == -2) return usg_fail(USG_IO, "word2vec: read error in '%s'", s->path), TOK_ERR;
    if (c == -1) return TOK_EOF;
    if (c == '\n') { s->pos++; return TOK_EOL; }
    size_t n = 0;
    while ((c = src_peek(s)) >= 0 && !is_space(c) && c != '\n') {
        if (n < USG_W2V_MAX_WORD - 1) word[n++] = (char)(s->lower && c >= 'A' && c <= 'Z' ? c + 32 : c);
        s->pos++;
    }
    if (c == -2) return usg_fail(USG_IO, "word2vec: read error in '%s'", s->path), TOK_ERR;
    word[n] = 0;
    *len = n;
    return TOK_WORD;
}

/* ==== Hash ============================================================== */

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

/* The slot of word in hash (its id there, or -1 where it would go). */
static int64_t slot_of(int64_t *hash, int64_t hcap, char **words, const char *w, size_t len)
{
    int64_t i = (int64_t)(fnv1a(w, len) & (uint64_t)(hcap - 1));
    while (hash[i] >= 0 && !(strlen(words[hash[i]]) == len && memcmp(words[hash[i]], w, len) == 0))
        i = (i + 1) & (hcap - 1);
    return i;
}

int64_t usg_w2v_vocab_find(const usg_w2v_vocab *v, const char *word, size_t len)
{
    return v->hash[slot_of(v->hash, v->hcap, v->words, word, len)];
}

/* A hash of the first n words at load <= 1/2. */
static usg_status rehash(int64_t **hash, int64_t *hcap, char **words, int64_t n)
{
    int64_t cap = 1024;
    while (cap < 2 * n + 2) cap *= 2;
    int64_t *h = usg_alloc((size_t)cap * sizeof *h);
    if (!h) return USG_NOMEM;
    memset(h, 0xff, (size_t)cap * sizeof *h);           /* all -1 */
    for (int64_t k = 0; k < n; k++) h[slot_of(h, cap, words, words[k], strlen(words[k]))] = k;
    usg_free(*hash);
    *hash = h;
    *hcap = cap;
    return USG_OK;
}

/* ==== Building ========================================================== */

void usg_w2v_vocab_free(usg_w2v_vocab *v)
{
    if (!v) return;
    for (int64_t i = 0; v->words && i < v->n; i++) usg_free(v->words[i]);
    usg_free(v->words); usg_free(v->counts); usg_free(v->hash);
    usg_free(v->codelen); usg_free(v->codeoff); usg_free(v->code); usg_free(v->point);
    usg_free(v->prob); usg_free(v->alias);
    usg_free(v);
}

static char *dup_word(const char *w, size_t len)
{
    char *p = usg_alloc(len + 1);
    if (p) { memcpy(p, w, len); p[len] = 0; }
    return p;
}

/* A growable table of words and counts (the raw counts of a corpus). */
typedef struct table {
    char **words;
    int64_t *counts;
    int64_t n, cap, hcap;
    int64_t *hash;
} table;

static void table_free(table *t)
{
    for (int64_t i = 0; i < t->n; i++) usg_free(t->words[i]);
    usg_free(t->words); usg_free(t->counts); usg_free(t->hash);
}

static usg_status table_add(table *t, const char *w, size_t len)
{
    int64_t s = slot_of(t->hash, t->hcap, t->words, w, len);
    if (t->hash[s] >= 0) { t->counts[t->hash[s]]++; return USG_OK; }
    if (t->n == t->cap) {
        int64_t cap = t->cap ? 2 * t->cap : 4096;
        char **nw = usg_alloc((size_t)cap * sizeof *nw);
        int64_t *nc = usg_alloc((size_t)cap * sizeof *nc);
        if (!nw || !nc) { usg_free(nw); usg_free(nc); return USG_NOMEM; }
        if (t->n) { memcpy(nw, t->words, (size_t)t->n * sizeof *nw); memcpy(nc, t->counts, (size_t)t->n * sizeof *nc); }
        usg_free(t->words); usg_free(t->counts);
        t->words = nw; t->counts = nc; t->cap = cap;
    }
    if (!(t->words[t->n] = dup_word(w, len))) return USG_NOMEM;
    t->counts[t->n] = 1;
    t->hash[s] = t->n++;
    if (2 * t->n + 2 > t->hcap) return rehash(&t->hash, &t->hcap, t->words, t->n);
    return USG_OK;
}

static usg_status count_file(table *t, const char *path, bool lower)
{
    static __thread char word[USG_W2V_MAX_WORD];
    src *s = malloc(sizeof *s);
    if (!s) return usg_fail(USG_NOMEM, "word2vec: out of memory");
    usg_status st = src_open(s, path, lower);
    size_t len;
    int k;
    while (st == USG_OK && (k = src_token(s, word, &len)) != TOK_EOF) {
        if (k == TOK_ERR) st = USG_IO;
        else if (k == TOK_WORD) st = table_add(t, word, len);
    }
    src_close(s);
    free(s);
    return st;
}

/* Order ids by count (descending), ties by first sight. */
static int by_count(const void *a, const void *b, void *counts)
{
    const int64_t *c = counts;
    int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
    if (c[i] != c[j]) return c[i] > c[j] ? -1 : 1;
    return i < j ? -1 : i > j;
}

/* A vocabulary owning the words taken from t at order[0..n). */
static usg_status vocab_take(usg_w2v_vocab **out, table *t, const int64_t *order, int64_t n)
{
    usg_w2v_vocab *v = usg_alloc(sizeof *v);
    if (!v) return USG_NOMEM;
    memset(v, 0, sizeof *v);
    v->words = usg_alloc((size_t)(n ? n : 1) * sizeof *v->words);
    v->counts = usg_alloc((size_t)(n ? n : 1) * sizeof *v->counts);
    if (!v->words || !v->counts) { usg_w2v_vocab_free(v); return USG_NOMEM; }
    for (int64_t i = 0; i < n; i++) {
        v->words[i] = t->words[order[i]];
        t->words[order[i]] = NULL;                  /* ownership moves to v */
        v->counts[i] = t->counts[order[i]];
        v->total += v->counts[i];
        v->n = i + 1;
    }
    usg_status s = rehash(&v->hash, &v->hcap, v->words, n);
    if (s != USG_OK) { usg_w2v_vocab_free(v); return s; }
    *out = v;
    return USG_OK;
}

usg_status usg_w2v_vocab_build(usg_w2v_vocab **out, const char *const *files, int nfiles,
                               int64_t min_count, int64_t max_vocab, bool lower)
{
    *out = NULL;
    if (nfiles < 1 || nfiles > USG_W2V_MAX_FILES)
        return usg_fail(USG_ARG, "word2vec.vocab: files must hold 1..%d paths, got %d", USG_W2V_MAX_FILES, nfiles);
    if (min_count < 1) return usg_fail(USG_ARG, "word2vec.vocab: min_count must be >= 1, got %lld", (long long)min_count);
    if (max_vocab < 0) return usg_fail(USG_ARG, "word2vec.vocab: max_vocab must be >= 0, got %lld", (long long)max_vocab);
    table t = {0};
    usg_status s = rehash(&t.hash, &t.hcap, NULL, 0);
    for (int f = 0; s == USG_OK && f < nfiles; f++) s = count_file(&t, files[f], lower);
    int64_t *order = s == USG_OK ? usg_alloc((size_t)(t.n ? t.n : 1) * sizeof *order) : NULL;
    if (s == USG_OK && !order) s = USG_NOMEM;
    if (s != USG_OK) { table_free(&t); return s; }
    int64_t n = 0;
    for (int64_t i = 0; i < t.n; i++)
        if (t.counts[i] >= min_count) order[n++] = i;
    qsort_r(order, (size_t)n, sizeof *order, by_count, t.counts);
    if (max_vocab > 0 && n > max_vocab) n = max_vocab;
    if (n == 0) {
        s = usg_fail(USG_ARG, "word2vec.vocab: no word occurs min_count=%lld times in %d file(s) "
                     "(%lld distinct words)", (long long)min_count, nfiles, (long long)t.n);
    } else {
        s = vocab_take(out, &t, order, n);
    }
    usg_free(order);
    table_free(&t);
    return s;
}

usg_status usg_w2v_vocab_from(usg_w2v_vocab **out, const char *const *words,
                              const int64_t *counts, int64_t n)
{
    *out = NULL;
    if (n < 1) return usg_fail(USG_ARG, "word2vec.vocab: expected at least one word, got %lld", (long long)n);
    table t = {0};
    usg_status s = USG_OK;
    t.words = usg_alloc((size_t)n * sizeof *t.words);
    t.counts = usg_alloc((size_t)n * sizeof *t.counts);
    int64_t *order = usg_alloc((size_t)n * sizeof *order);
    if (!t.words || !t.counts || !order) s = USG_NOMEM;
    for (int64_t i = 0; s == USG_OK && i < n; i++) {
        size_t len = strlen(words[i]);
        if (len == 0) s = usg_fail(USG_ARG, "word2vec.vocab: word %lld is empty", (long long)i + 1);
        else if (counts[i] < 0) s = usg_fail(USG_ARG, "word2vec.vocab: count %lld is negative", (long long)i + 1);
        else if (!(t.words[i] = dup_word(words[i], len))) s = USG_NOMEM;
        else { t.counts[i] = counts[i]; order[i] = i; t.n = i + 1; }
    }
    if (s == USG_OK) s = vocab_take(out, &t, order, n);
    if (s == USG_OK && (*out)->hcap) {
        /* a duplicate maps to one slot: the hash then holds fewer ids */
        int64_t seen = 0;
        for (int64_t i = 0; i < (*out)->hcap; i++) seen += (*out)->hash[i] >= 0;
        for (int64_t i = 0; seen != n && i < n; i++)
            if (usg_w2v_vocab_find(*out, words[i], strlen(words[i])) != i) {
                s = usg_fail(USG_ARG, "word2vec.vocab: the word '%s' appears twice (entries %lld and more)",
                             words[i], (long long)usg_w2v_vocab_find(*out, words[i], strlen(words[i])) + 1);
                usg_w2v_vocab_free(*out);
                *out = NULL;
                break;
            }
    }
    usg_free(order);
    table_free(&t);
    return s;
}

/* ==== Huffman tree ====================================================== *
 * Mikolov's CreateBinaryTree: with the counts sorted descending, the two
 * smallest nodes are always at the two ends of the leaves not yet merged
 * (pos1 walking down) and of the inner nodes made so far (pos2 walking up),
 * so the tree takes O(V). Inner node V + a is the a-th merge; the root is
 * 2V - 2. A word's code lists the branch (0/1) taken at each inner node
 * from the root down; the second-smallest child of each merge is branch 1. */
static usg_status huffman(usg_w2v_vocab *v)
{
    int64_t V = v->n;
    int64_t *count = usg_alloc((size_t)(2 * V) * sizeof *count);
    int64_t *parent = usg_alloc((size_t)(2 * V) * sizeof *parent);
    uint8_t *binary = usg_alloc((size_t)(2 * V));
    v->codelen = usg_alloc((size_t)V);
    v->codeoff = usg_alloc((size_t)V * sizeof *v->codeoff);
    usg_status s = count && parent && binary && v->codelen && v->codeoff ? USG_OK : USG_NOMEM;
    if (s == USG_OK) {
        for (int64_t a = 0; a < V; a++) count[a] = v->counts[a] > 0 ? v->counts[a] : 1;
        for (int64_t a = V; a < 2 * V; a++) count[a] = INT64_MAX / 4;
        memset(binary, 0, (size_t)(2 * V));
        int64_t pos1 = V - 1, pos2 = V, m[2];
        for (int64_t a = 0; a < V - 1; a++) {
            for (int k = 0; k < 2; k++)
                m[k] = (pos1 >= 0 && count[pos1] < count[pos2]) ? pos1-- : pos2++;
            count[V + a] = count[m[0]] + count[m[1]];
            parent[m[0]] = parent[m[1]] = V + a;
            binary[m[1]] = 1;
        }
        int64_t total = 0;
        for (int64_t a = 0; a < V && s == USG_OK; a++) {
            int len = 0;
            for (int64_t b = a; V > 1 && b != 2 * V - 2; b = parent[b]) len++;
            if (len > USG_W2V_MAX_CODE)
                s = usg_fail(USG_ARG, "word2vec: the Huffman code of '%s' is %d long, over %d",
                             v->words[a], len, USG_W2V_MAX_CODE);
            v->codelen[a] = (uint8_t)len;
            v->codeoff[a] = total;
            total += len;
        }
        if (s == USG_OK) {
            v->code = usg_alloc((size_t)(total ? total : 1));
            v->point = usg_alloc((size_t)(total ? total : 1) * sizeof *v->point);
            if (!v->code || !v->point) s = USG_NOMEM;
        }
        for (int64_t a = 0; a < V && s == USG_OK; a++) {
            int len = v->codelen[a], i = len;
            uint8_t *code = v->code + v->codeoff[a];
            int32_t *point = v->point + v->codeoff[a];
            /* walk up from the leaf, filling the path from its end */
            for (int64_t b = a; i > 0; b = parent[b]) {
                i--;
                code[i] = binary[b];
                point[i] = (int32_t)(parent[b] - V);
            }
        }
    }
    usg_free(count); usg_free(parent); usg_free(binary);
    return s;
}

/* ==== Negative sampling table =========================================== *
 * P(w) = c_w^0.75 / Z (Mikolov's unigram table, power 0.75). Instead of his
 * table of 1e8 ids (400 MB, a cache miss per draw) Vose's alias method
 * gives exact draws from V buckets of 8 bytes: bucket i is drawn uniformly,
 * then kept with probability prob[i] or replaced by alias[i]. */
static usg_status alias_table(usg_w2v_vocab *v)
{
    int64_t V = v->n;
    double *p = usg_alloc((size_t)V * sizeof *p);
    int64_t *small = usg_alloc((size_t)V * sizeof *small), *large = usg_alloc((size_t)V * sizeof *large);
    v->prob = usg_alloc((size_t)V * sizeof *v->prob);
    v->alias = usg_alloc((size_t)V * sizeof *v->alias);
    usg_status s = p && small && large && v->prob && v->alias ? USG_OK : USG_NOMEM;
    if (s == USG_OK) {
        double z = 0;
        for (int64_t i = 0; i < V; i++) z += p[i] = pow((double)v->counts[i], 0.75);
        if (!(z > 0)) for (int64_t i = 0; i < V; i++) p[i] = 1, z = (double)V;   /* all counts 0: uniform */
        int64_t ns = 0, nl = 0;
        for (int64_t i = 0; i < V; i++) {
            p[i] = p[i] * (double)V / z;
            if (p[i] < 1) small[ns++] = i; else large[nl++] = i;
        }
        while (ns > 0 && nl > 0) {
            int64_t s_ = small[--ns], l = large[nl - 1];
            v->prob[s_] = (uint32_t)(p[s_] * 4294967296.0);
            v->alias[s_] = (int32_t)l;
            p[l] -= 1 - p[s_];
            if (p[l] < 1) { nl--; small[ns++] = l; }
        }
        /* what is left is 1 up to rounding: always kept */
        while (nl > 0) { int64_t l = large[--nl]; v->prob[l] = UINT32_MAX; v->alias[l] = (int32_t)l; }
        while (ns > 0) { int64_t l = small[--ns]; v->prob[l] = UINT32_MAX; v->alias[l] = (int32_t)l; }
    }
    usg_free(p); usg_free(small); usg_free(large);
    return s;
}

usg_status usg_w2v_vocab_prepare(usg_w2v_vocab *v)
{
    usg_status s = USG_OK;
    if (!v->codelen) {
        s = huffman(v);
        if (s != USG_OK) {
            usg_free(v->codelen); usg_free(v->codeoff); usg_free(v->code); usg_free(v->point);
            v->codelen = NULL; v->codeoff = NULL; v->code = NULL; v->point = NULL;
            return s;
        }
    }
    if (!v->prob) {
        s = alias_table(v);
        if (s != USG_OK) { usg_free(v->prob); usg_free(v->alias); v->prob = NULL; v->alias = NULL; }
    }
    return s;
}

/* n negative samples as 1-based i32 ids, drawn from the alias table with
 * splitmix64 from seed, as the trainer draws them: the same seed gives the
 * same ids, so the unigram^0.75 distribution can be checked from Lua. */
usg_status usg_w2v_sample_negatives(usg_tensor **out, usg_w2v_vocab *v, int64_t n, uint64_t seed)
{
    *out = NULL;
    if (n < 0 || n > ((int64_t)1 << 30))
        return usg_fail(USG_ARG, "sample_negatives: n must be in 0..2^30, got %lld", (long long)n);
    usg_status s = usg_w2v_vocab_prepare(v);
    if (s != USG_OK) return s;
    usg_tensor *t;
    s = usg_tensor_empty(&t, USG_I32, 1, (int64_t[]){n});
    if (s != USG_OK) return s;
    int32_t *p = usg_tensor_data(t);
    for (int64_t i = 0; i < n; i++) {
        uint64_t z = (seed += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        p[i] = (int32_t)usg_w2v_negative(v, z ^ (z >> 31)) + 1;
    }
    *out = t;
    return USG_OK;
}

/* ==== Corpus reader ===================================================== */

struct usg_w2v_reader {
    const usg_w2v_vocab *v;
    char **files;
    int nfiles, epochs, epoch, file;
    bool lower, open, done;
    src s;
    char word[USG_W2V_MAX_WORD];
};

void usg_w2v_reader_close(usg_w2v_reader *r)
{
    if (!r) return;
    if (r->open) src_close(&r->s);
    for (int i = 0; r->files && i < r->nfiles; i++) usg_free(r->files[i]);
    usg_free(r->files);
    free(r);
}

usg_status usg_w2v_reader_open(usg_w2v_reader **out, const usg_w2v_vocab *v,
                               const char *const *files, int nfiles, int epochs, bool lower)
{
    *out = NULL;
    if (nfiles < 1 || nfiles > USG_W2V_MAX_FILES)
        return usg_fail(USG_ARG, "word2vec.train: files must hold 1..%d paths, got %d", USG_W2V_MAX_FILES, nfiles);
    usg_w2v_reader *r = calloc(1, sizeof *r);
    if (!r) return usg_fail(USG_NOMEM, "word2vec: out of memory");
    r->v = v;
    r->epochs = epochs;
    r->lower = lower;
    r->files = usg_alloc((size_t)nfiles * sizeof *r->files);
    if (!r->files) { free(r); return USG_NOMEM; }
    for (int i = 0; i < nfiles; i++) {
        if (!(r->files[i] = dup_word(files[i], strlen(files[i])))) { usg_w2v_reader_close(r); return USG_NOMEM; }
        r->nfiles = i + 1;
    }
    /* every file must open now, not an epoch later */
    for (int i = 0; i < nfiles; i++) {
        gzFile g = gzopen(files[i], "rb");
        if (!g) { usg_w2v_reader_close(r); return usg_fail(USG_IO, "word2vec.train: cannot open '%s'", files[i]); }
        gzclose(g);
    }
    r->done = epochs < 1;
    *out = r;
    return USG_OK;
}

/* One sentence appended at ids (at most USG_W2V_MAX_SENTENCE ids): *n ids,
 * 0 with *end set when the corpus is over. */
static usg_status read_sentence(usg_w2v_reader *r, int32_t *ids, int64_t *n, bool *end)
{
    int epoch = r->epoch;
    *n = 0;
    *end = false;
    for (;;) {
        if (r->done) { *end = true; return USG_OK; }
        if (!r->open) {
            usg_status s = src_open(&r->s, r->files[r->file], r->lower);
            if (s != USG_OK) return s;
            r->open = true;
        }
        size_t len;
        int k = src_token(&r->s, r->word, &len);
        if (k == TOK_ERR) return USG_IO;
        if (k == TOK_WORD) {
            int64_t id = usg_w2v_vocab_find(r->v, r->word, len);
            if (id >= 0) ids[(*n)++] = (int32_t)id;
            if (*n == USG_W2V_MAX_SENTENCE) return USG_OK;
        } else if (k == TOK_EOL) {
            if (*n > 0) return USG_OK;
        } else {                                   /* end of a file */
            src_close(&r->s);
            r->open = false;
            if (++r->file == r->nfiles) {
                r->file = 0;
                if (++r->epoch == r->epochs) r->done = true;
            }
            if (*n > 0 || r->epoch != epoch) return USG_OK;    /* a sentence never spans epochs */
        }
    }
}

usg_status usg_w2v_reader_chunk(usg_w2v_reader *r, int32_t *ids, int64_t cap, int64_t *start,
                                int64_t *nsent, int *epoch)
{
    int64_t used = 0, n;
    bool end = false;
    *nsent = 0;
    *epoch = r->epoch;
    start[0] = 0;
    while (!end && used + USG_W2V_MAX_SENTENCE <= cap) {
        usg_status s = read_sentence(r, ids + used, &n, &end);
        if (s != USG_OK) return s;
        if (n > 0) {
            used += n;
            start[++*nsent] = used;
        }
        if (r->epoch != *epoch) break;             /* a chunk stays inside one epoch */
    }
    return USG_OK;
}
