/*
 * word2vec.h -- the word2vec plugin's C interface, shared by the
 * vocabulary and corpus reader (w2v_vocab.c), the trainer (word2vec.c) and
 * the binding (word2vec_lua.c). Not installed. No Lua here.
 *
 * Mikolov et al. (2013), "Efficient Estimation of Word Representations in
 * Vector Space" and "Distributed Representations of Words and Phrases and
 * their Compositionality"; the tool word2vec.c is the reference for every
 * default and every detail below (README.md gives the equations).
 *
 * Sizes: V words in the vocabulary, D = size (the vector length).
 *   syn0    (V, D)      the input vectors, the ones users keep ("W")
 *   syn1neg (V, D)      output vectors for negative sampling ("C")
 *   syn1    (V - 1, D)  output vectors of the Huffman tree's inner nodes
 */
#ifndef USAGI_WORD2VEC_H
#define USAGI_WORD2VEC_H

#include <stdint.h>
#include <stdbool.h>
#include "usagi/core.h"

#define USG_W2V_MAX_CODE 40          /* Huffman code length cap, as Mikolov's MAX_CODE_LENGTH */
#define USG_W2V_MAX_SENTENCE 1000    /* words per training sentence (MAX_SENTENCE_LENGTH) */
#define USG_W2V_MAX_WORD 4096        /* bytes per word; longer words are cut */
#define USG_W2V_MAX_FILES 1024

/* ==== Vocabulary (w2v_vocab.c) ==========================================
 * Words sorted by count, most frequent first (ties: first seen first), ids
 * 0..V-1; a hash from word to id; for training also the Huffman codes and
 * the alias table of unigram^0.75 (built by usg_w2v_vocab_prepare). */
typedef struct usg_w2v_vocab {
    int64_t n;              /* V */
    char **words;           /* (V) NUL-terminated */
    int64_t *counts;        /* (V) */
    int64_t total;          /* sum of counts: the words training sees per epoch */
    int64_t *hash;          /* (hcap) id or -1, open addressing */
    int64_t hcap;
    /* Huffman tree (hierarchical softmax): word i's code is code[off[i] ..
     * off[i] + len[i]) (0/1, root first) and the inner nodes on its path
     * point[...] (0 .. V-2, the root V-2), as in Mikolov's vocab_word. */
    uint8_t *codelen;       /* (V) */
    int64_t *codeoff;       /* (V) */
    uint8_t *code;          /* (sum of lengths) */
    int32_t *point;         /* (sum of lengths) */
    /* Negative sampling from P(w) = c_w^0.75 / sum_v c_v^0.75 by Walker's
     * alias method: bucket i (uniform) keeps i when a 32-bit draw is below
     * prob[i], else gives alias[i]. */
    uint32_t *prob;         /* (V) */
    int32_t *alias;         /* (V) */
} usg_w2v_vocab;

/* Count the words of files (plain text or gzip, tokens split on ASCII
 * whitespace, lower-cased ASCII when `lower`), keep those seen at least
 * min_count times, then the max_vocab most frequent (0: no limit).
 * USG_IO when a file cannot be read, USG_ARG when no word is left. */
usg_status usg_w2v_vocab_build(usg_w2v_vocab **out, const char *const *files, int nfiles,
                               int64_t min_count, int64_t max_vocab, bool lower);
/* A vocabulary from given words and counts (a loaded model), in that
 * order; duplicate or empty words are USG_ARG. */
usg_status usg_w2v_vocab_from(usg_w2v_vocab **out, const char *const *words,
                              const int64_t *counts, int64_t n);
void usg_w2v_vocab_free(usg_w2v_vocab *v);
/* The id of word (len bytes), or -1. */
int64_t usg_w2v_vocab_find(const usg_w2v_vocab *v, const char *word, size_t len);
/* Build the Huffman codes and the alias table (idempotent). */
usg_status usg_w2v_vocab_prepare(usg_w2v_vocab *v);
/* n negative samples, 1-based i32 ids in a new (n) tensor, drawn with
 * splitmix64 from seed as the trainer draws them (prepares v first).
 * USG_ARG when n is outside 0..2^30. */
usg_status usg_w2v_sample_negatives(usg_tensor **out, usg_w2v_vocab *v, int64_t n, uint64_t seed);
/* One negative sample from the alias table, given 64 random bits. */
static inline int64_t usg_w2v_negative(const usg_w2v_vocab *v, uint64_t r)
{
    uint64_t i = ((r >> 32) * (uint64_t)v->n) >> 32;
    return (uint32_t)r < v->prob[i] ? (int64_t)i : v->alias[i];
}

/* ==== Corpus reader (w2v_vocab.c) =======================================
 * Files read in order, `epochs` times, as sentences of vocabulary ids (a
 * line is a sentence, cut every USG_W2V_MAX_SENTENCE words; words outside
 * the vocabulary are dropped). Streams: memory is one gzip buffer. */
typedef struct usg_w2v_reader usg_w2v_reader;
usg_status usg_w2v_reader_open(usg_w2v_reader **out, const usg_w2v_vocab *v,
                               const char *const *files, int nfiles, int epochs, bool lower);
void usg_w2v_reader_close(usg_w2v_reader *r);
/* Fill ids with whole sentences, up to `cap` ids in all; sentence k is
 * ids[start[k] .. start[k+1]). *nsent = 0 at the end of the last epoch.
 * start has room for cap + 1 entries. *epoch gets the 0-based epoch of the
 * chunk. USG_IO on a read error. */
usg_status usg_w2v_reader_chunk(usg_w2v_reader *r, int32_t *ids, int64_t cap, int64_t *start,
                                int64_t *nsent, int *epoch);

/* ==== Training (word2vec.c) ============================================= */

typedef struct usg_w2v_opts {
    int64_t size;        /* D */
    int window;          /* max skip length; each position draws b in [0, window) and uses window - b */
    double sample;       /* subsampling threshold t (0: off) */
    int hs;              /* hierarchical softmax */
    int negative;        /* negative samples (0: none) */
    int threads;         /* Hogwild workers; 1 = deterministic */
    int iter;            /* epochs */
    double alpha;        /* starting learning rate */
    int cbow;            /* 1: CBOW, 0: skip-gram */
    int shared;          /* skip-gram: share samples across the window (Ji et al. 2016) */
    bool lower;
    uint64_t seed;       /* every thread's generator derives from it */
} usg_w2v_opts;

/* A running training: workers started by usg_w2v_train_start. */
typedef struct usg_w2v_job usg_w2v_job;

typedef struct usg_w2v_progress {
    int64_t words;       /* corpus words processed (before subsampling), all epochs */
    int64_t total;       /* iter * vocab total */
    double alpha;        /* the current learning rate */
    int epoch;           /* 0-based epoch the reader is in */
} usg_w2v_progress;

/* Check opts, open the corpus and start opts->threads workers over syn0
 * (V, D), syn1neg (V, D; may be NULL when negative = 0), syn1 (V - 1, D;
 * may be NULL when hs = 0). The caller keeps the arrays alive until
 * usg_w2v_train_finish. */
usg_status usg_w2v_train_start(usg_w2v_job **out, usg_w2v_vocab *v, const char *const *files,
                               int nfiles, const usg_w2v_opts *o, float *syn0, float *syn1neg,
                               float *syn1);
/* Wait up to `seconds` for the workers; true when they are all done. *p
 * (may be NULL) gets the progress. */
bool usg_w2v_train_wait(usg_w2v_job *job, double seconds, usg_w2v_progress *p);
/* Ask the workers to stop at their next chunk. */
void usg_w2v_train_stop(usg_w2v_job *job);
/* Join the workers and free the job; the first error of any worker. */
usg_status usg_w2v_train_finish(usg_w2v_job *job);

/* The kept fraction of a word seen `count` times out of `total` under
 * threshold t (Mikolov's formula; >= 1 means always kept). */
double usg_w2v_keep_prob(int64_t count, int64_t total, double t);

/* ==== Mikolov's text and binary formats (w2v_io.c) ===================== */

/* Read V words and a new (V, D) f32 tensor; words (usg_alloc'd, each and
 * the array) are freed with usg_w2v_words_free. USG_IO when the file cannot
 * be opened, USG_ARG when it is not in the format (the message says where). */
usg_status usg_w2v_load(const char *path, bool binary, char ***words, int64_t *n, usg_tensor **vec);
void usg_w2v_words_free(char **words, int64_t n);
/* Write n words with their rows of x (n, D). */
usg_status usg_w2v_save(const char *path, bool binary, const char *const *words, int64_t n,
                        const float *x, int64_t D);

#endif
