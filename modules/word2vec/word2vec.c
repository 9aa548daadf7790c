/*
 * word2vec.c -- training word vectors: skip-gram and CBOW, each with
 * negative sampling and/or hierarchical softmax, over a streamed corpus by
 * Hogwild threads (lock-free updates of shared vectors, Recht et al. 2011),
 * as Mikolov's word2vec.c does. README.md has the equations; the comments
 * below name them.
 *
 * Two skip-gram paths:
 *  - classic: Mikolov's loop, one (context, target) pair at a time, each
 *    pair drawing its own negatives;
 *  - shared (the default): Ji et al. (2016), "Parallelizing Word2Vec in
 *    Shared and Distributed Memory": the B context words of one position
 *    share its K negatives, so the work is the small matrix products
 *    F = In Out^T (B x (K+1)), dIn = G Out, dOut = G^T In, and each output
 *    row is fetched once per position instead of once per pair. The same
 *    is done for hierarchical softmax (all contexts of a position share the
 *    centre word's Huffman path).
 * CBOW already has one hidden vector per position (the context mean).
 *
 * Determinism: the corpus is read in order in chunks under a lock; each
 * worker has its own generator seeded from opts->seed. With one thread the
 * result is a pure function of the seed (bit-identical vectors on the same
 * machine and build). With more, threads race on shared rows (Hogwild) and
 * results differ from run to run; that is the documented exception.
 *
 * The kernels are compiled twice (target_clones: AVX2+FMA and the baseline)
 * and picked at load by the CPU; the loops over D are plain C that the
 * compiler vectorizes (word2vec.c is built with -O3 and reassociation).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <pthread.h>
#include <time.h>
#include <errno.h>

#include "word2vec.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define KERNEL __attribute__((target_clones("arch=haswell", "default")))
#else
#define KERNEL
#endif

/* Kernel helpers are inlined into each clone so they get its instructions
 * (a helper left out of line is compiled for the baseline only). Plain
 * loops over D, vectorized by the compiler, measured faster here than
 * hand-blocked vector code (8-wide loads of an output row shared by four
 * input rows) at D = 100. */
#define INLINE static inline __attribute__((always_inline))

#define EXP_TABLE_SIZE 1000
#define MAX_EXP 6
#define CHUNK_WORDS 10000       /* words between learning-rate updates, as Mikolov */

/* ==== The job =========================================================== */

typedef struct worker {
    struct usg_w2v_job *job;
    int id;
    uint64_t rng;
    int32_t *ids;      /* (CHUNK_WORDS) a chunk of sentences */
    int64_t *start;    /* (CHUNK_WORDS + 1) */
    int32_t *sen;      /* (USG_W2V_MAX_SENTENCE) one sentence after subsampling */
    float *neu1;       /* (D) CBOW's hidden vector */
    float *din;        /* (2 window + 1, D) gradients of the input rows */
    float *g;          /* (2 window, K + 1 + MAX_CODE) */
    int32_t *ctx;      /* (2 window) */
    int64_t *tgt;      /* (K + 1 + MAX_CODE) */
    float *label;      /* (K + 1 + MAX_CODE) */
} worker;

struct usg_w2v_job {
    usg_w2v_vocab *v;
    usg_w2v_reader *reader;
    usg_w2v_opts o;
    float *syn0, *syn1neg, *syn1;
    float exp_table[EXP_TABLE_SIZE];
    uint32_t *keep;            /* (V) keep a word when a 32-bit draw is below; NULL: no subsampling */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int running, started;      /* workers not done; threads started */
    int stop;
    usg_status status;
    char msg[512];
    int64_t words;             /* words handed out to workers (before subsampling) */
    int64_t total;             /* iter * corpus words */
    double alpha;
    int epoch;
    pthread_t *tids;
    worker *w;
};

/* splitmix64 (Steele et al. 2014): one add and two multiplies per draw */
static inline uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

double usg_w2v_keep_prob(int64_t count, int64_t total, double t)
{
    /* Mikolov's subsampling: keep w with p = (sqrt(f/t) + 1) t / f, f = c_w / N */
    double tn = t * (double)total, c = (double)count;
    if (t <= 0 || c <= 0) return 1;
    return (sqrt(c / tn) + 1) * tn / c;
}

/* ==== Kernels =========================================================== */

INLINE float dot(const float *a, const float *b, int64_t D)
{
    float s = 0;
    for (int64_t i = 0; i < D; i++) s += a[i] * b[i];
    return s;
}

INLINE void axpy(float a, const float *x, float *y, int64_t D)
{
    for (int64_t i = 0; i < D; i++) y[i] += a * x[i];
}

/* The gradient scale of a logistic output: g = (label - σ(f)) α with σ from
 * Mikolov's table over [-MAX_EXP, MAX_EXP]. Outside it, negative sampling
 * clips σ to 0 or 1; hierarchical softmax skips the node (returns 0). */
INLINE float grad(const float *et, float f, float label, int hs, float alpha)
{
    if (f >= MAX_EXP) return hs ? 0 : (label - 1) * alpha;
    if (f <= -MAX_EXP) return hs ? 0 : label * alpha;
    return (label - et[(int)((f + MAX_EXP) * (EXP_TABLE_SIZE / MAX_EXP / 2))]) * alpha;
}

/* One position of shared-sample skip-gram against T output rows:
 *   F = In Out^T (B, T),  G = (label - σ(F)) α,
 *   din += G Out (B, D)  [applied to In by the caller],  Out += G^T In.
 * All of F is computed before Out changes (the rows were read once). */
INLINE void block(float *const *in, int B, float *out, const int64_t *tgt, const float *label,
                         int T, int hs, float alpha, float *din, float *g, const float *et, int64_t D)
{
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            g[b * T + t] = grad(et, dot(in[b], out + tgt[t] * D, D), label[t], hs, alpha);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            if (g[b * T + t] != 0) axpy(g[b * T + t], out + tgt[t] * D, din + b * D, D);
    for (int t = 0; t < T; t++) {
        float *o = out + tgt[t] * D;
        for (int b = 0; b < B; b++)
            if (g[b * T + t] != 0) axpy(g[b * T + t], in[b], o, D);
    }
}

/* Skip-gram, shared samples: for each position p with centre w and
 * contexts c_1..c_B (window shrunk by a random b), maximise
 *   Σ_b [ log σ(v'_w · v_{c_b}) + Σ_k log σ(-v'_{n_k} · v_{c_b}) ]   (NS)
 *   Σ_b Σ_d log σ((1 - 2 code_d(w)) v'_{point_d(w)} · v_{c_b})      (HS)
 * with one set of negatives n_1..n_K ~ P^0.75 per position. */
KERNEL static void sg_shared(worker *w, const int32_t *sen, int64_t n, float alpha)
{
    usg_w2v_job *j = w->job;
    const usg_w2v_vocab *v = j->v;
    int64_t D = j->o.size;
    int W = j->o.window, K = j->o.negative;
    float *in[2 * USG_W2V_MAX_CODE + 2 * 64];
    for (int64_t p = 0; p < n; p++) {
        int64_t word = sen[p];
        int b0 = (int)(rnd(&w->rng) % (uint64_t)W), B = 0;
        for (int a = b0; a < 2 * W + 1 - b0; a++) {
            int64_t c = p - W + a;
            if (a == W || c < 0 || c >= n) continue;
            w->ctx[B] = sen[c];
            in[B++] = j->syn0 + (int64_t)sen[c] * D;
        }
        if (B == 0) continue;
        memset(w->din, 0, (size_t)(B * D) * sizeof(float));
        if (j->o.hs && v->codelen[word]) {
            int L = v->codelen[word];
            const uint8_t *code = v->code + v->codeoff[word];
            const int32_t *point = v->point + v->codeoff[word];
            for (int d = 0; d < L; d++) { w->tgt[d] = point[d]; w->label[d] = 1.0f - code[d]; }
            block(in, B, j->syn1, w->tgt, w->label, L, 1, alpha, w->din, w->g, j->exp_table, D);
        }
        if (K > 0) {
            int T = 0;
            w->tgt[T] = word; w->label[T++] = 1;
            for (int d = 0; d < K; d++) {
                int64_t t = usg_w2v_negative(v, rnd(&w->rng));
                if (t == word) continue;                      /* as Mikolov: a drawn centre is skipped */
                w->tgt[T] = t; w->label[T++] = 0;
            }
            block(in, B, j->syn1neg, w->tgt, w->label, T, 0, alpha, w->din, w->g, j->exp_table, D);
        }
        for (int c = 0; c < B; c++) axpy(1, w->din + c * D, in[c], D);
    }
}

/* The output side of one example, Mikolov's loop: the input vector l1 (a
 * context word's row, or CBOW's mean h) against the Huffman path of word
 * (HS: the label of node d is 1 - code_d) and against word and K negatives
 * (NS: label 1, then 0). Each output row l2 gets g l1; g l2 is added into
 * neu1e, the input's gradient, which the caller applies. */
INLINE void output_side(worker *w, const float *l1, int64_t word, float *neu1e, float alpha)
{
    usg_w2v_job *j = w->job;
    const usg_w2v_vocab *v = j->v;
    int64_t D = j->o.size;
    int K = j->o.negative;
    if (j->o.hs) {
        const uint8_t *code = v->code + v->codeoff[word];
        const int32_t *point = v->point + v->codeoff[word];
        for (int d = 0; d < v->codelen[word]; d++) {
            float *l2 = j->syn1 + (int64_t)point[d] * D;
            float g = grad(j->exp_table, dot(l1, l2, D), 1.0f - code[d], 1, alpha);
            if (g == 0) continue;
            axpy(g, l2, neu1e, D);
            axpy(g, l1, l2, D);
        }
    }
    for (int d = 0; d <= K && K > 0; d++) {
        int64_t t = word;
        if (d > 0 && (t = usg_w2v_negative(v, rnd(&w->rng))) == word) continue;
        float *l2 = j->syn1neg + t * D;
        float g = grad(j->exp_table, dot(l1, l2, D), d == 0, 0, alpha);
        axpy(g, l2, neu1e, D);
        axpy(g, l1, l2, D);
    }
}

/* Skip-gram, Mikolov's loop: every (context c, centre w) pair on its own,
 * v_c's gradient applied after the pair, the output rows at once. */
KERNEL static void sg_classic(worker *w, const int32_t *sen, int64_t n, float alpha)
{
    usg_w2v_job *j = w->job;
    int64_t D = j->o.size;
    int W = j->o.window;
    float *neu1e = w->din;
    for (int64_t p = 0; p < n; p++) {
        int64_t word = sen[p];
        int b0 = (int)(rnd(&w->rng) % (uint64_t)W);
        for (int a = b0; a < 2 * W + 1 - b0; a++) {
            int64_t c = p - W + a;
            if (a == W || c < 0 || c >= n) continue;
            float *l1 = j->syn0 + (int64_t)sen[c] * D;
            memset(neu1e, 0, (size_t)D * sizeof(float));
            output_side(w, l1, word, neu1e, alpha);
            axpy(1, neu1e, l1, D);
        }
    }
}

/* CBOW: h = (1/B) Σ_b v_{c_b}; maximise log σ(v'_w · h) + Σ_k log σ(-v'_{n_k} · h)
 * (NS) and/or the Huffman path of w against h (HS); each context row gets
 * the whole gradient of h (Mikolov's choice, not divided by B). */
KERNEL static void cbow(worker *w, const int32_t *sen, int64_t n, float alpha)
{
    usg_w2v_job *j = w->job;
    int64_t D = j->o.size;
    int W = j->o.window;
    float *h = w->neu1, *neu1e = w->din;
    for (int64_t p = 0; p < n; p++) {
        int64_t word = sen[p];
        int b0 = (int)(rnd(&w->rng) % (uint64_t)W), B = 0;
        memset(h, 0, (size_t)D * sizeof(float));
        for (int a = b0; a < 2 * W + 1 - b0; a++) {
            int64_t c = p - W + a;
            if (a == W || c < 0 || c >= n) continue;
            w->ctx[B++] = sen[c];
            axpy(1, j->syn0 + (int64_t)sen[c] * D, h, D);
        }
        if (B == 0) continue;
        float inv = 1.0f / (float)B;
        for (int64_t i = 0; i < D; i++) h[i] *= inv;
        memset(neu1e, 0, (size_t)D * sizeof(float));
        output_side(w, h, word, neu1e, alpha);
        for (int c = 0; c < B; c++) axpy(1, neu1e, j->syn0 + (int64_t)w->ctx[c] * D, D);
    }
}

/* ==== Workers =========================================================== */

static void *work(void *arg)
{
    worker *w = arg;
    usg_w2v_job *j = w->job;
    usg_status s = USG_OK;
    int64_t nsent;
    int epoch;
    for (;;) {
        /* the next chunk, and the learning rate for it:
         *   α = α_0 max(1 - words / (iter N + 1), 1e-4)   (linear decay, Mikolov) */
        pthread_mutex_lock(&j->lock);
        if (!j->stop) s = usg_w2v_reader_chunk(j->reader, w->ids, CHUNK_WORDS, w->start, &nsent, &epoch);
        else nsent = 0;
        int64_t done = j->words;
        j->words += nsent ? w->start[nsent] : 0;
        double a = j->o.alpha * (1 - (double)done / (double)(j->total + 1));
        if (a < j->o.alpha * 1e-4) a = j->o.alpha * 1e-4;
        j->alpha = a;
        if (nsent) j->epoch = epoch;
        if (s != USG_OK && j->status == USG_OK) {
            j->status = s;
            snprintf(j->msg, sizeof j->msg, "%s", usg_errmsg());
            j->stop = 1;
        }
        pthread_mutex_unlock(&j->lock);
        if (s != USG_OK || nsent == 0) break;
        for (int64_t k = 0; k < nsent; k++) {
            /* frequent words dropped with probability 1 - keep(w) */
            int64_t n = 0;
            for (int64_t i = w->start[k]; i < w->start[k + 1]; i++) {
                int32_t id = w->ids[i];
                if (j->keep && (uint32_t)rnd(&w->rng) >= j->keep[id]) continue;
                w->sen[n++] = id;
            }
            if (j->o.cbow) cbow(w, w->sen, n, (float)a);
            else if (j->o.shared) sg_shared(w, w->sen, n, (float)a);
            else sg_classic(w, w->sen, n, (float)a);
        }
    }
    pthread_mutex_lock(&j->lock);
    j->running--;
    pthread_cond_broadcast(&j->cond);
    pthread_mutex_unlock(&j->lock);
    return NULL;
}

static void job_free(usg_w2v_job *j)
{
    for (int k = 0; j->w && k < j->o.threads; k++) {
        worker *w = &j->w[k];
        usg_free(w->ids); usg_free(w->start); usg_free(w->sen); usg_free(w->neu1);
        usg_free(w->din); usg_free(w->g); usg_free(w->ctx); usg_free(w->tgt); usg_free(w->label);
    }
    usg_free(j->w);
    usg_free(j->tids);
    usg_free(j->keep);
    usg_w2v_reader_close(j->reader);
    pthread_mutex_destroy(&j->lock);
    pthread_cond_destroy(&j->cond);
    free(j);
}

static usg_status check_opts(const usg_w2v_opts *o, const usg_w2v_vocab *v, const float *syn1neg,
                             const float *syn1)
{
#define BAD(...) usg_fail(USG_ARG, __VA_ARGS__)
    if (o->size < 1 || o->size > 100000) return BAD("word2vec.train: size must be in 1..100000, got %lld", (long long)o->size);
    if (o->window < 1 || o->window > 64) return BAD("word2vec.train: window must be in 1..64, got %d", o->window);
    if (!(o->sample >= 0 && o->sample < 1)) return BAD("word2vec.train: sample must be in [0, 1), got %g", o->sample);
    if (o->hs != 0 && o->hs != 1) return BAD("word2vec.train: hs must be 0 or 1, got %d", o->hs);
    if (o->negative < 0 || o->negative > 64) return BAD("word2vec.train: negative must be in 0..64, got %d", o->negative);
    if (!o->hs && !o->negative) return BAD("word2vec.train: hs = 0 and negative = 0 leave nothing to train; set one");
    if (o->threads < 1 || o->threads > 256) return BAD("word2vec.train: threads must be in 1..256, got %d", o->threads);
    if (o->iter < 1 || o->iter > 100000) return BAD("word2vec.train: iter must be in 1..100000, got %d", o->iter);
    if (!(o->alpha > 0 && o->alpha < 10)) return BAD("word2vec.train: alpha must be in (0, 10), got %g", o->alpha);
    if (o->cbow != 0 && o->cbow != 1) return BAD("word2vec.train: cbow must be 0 or 1, got %d", o->cbow);
    if (o->negative && !syn1neg) return BAD("word2vec.train: negative sampling needs the output vectors syn1neg");
    if (o->hs && v->n > 1 && !syn1) return BAD("word2vec.train: hierarchical softmax needs the tree's vectors syn1");
    return USG_OK;
#undef BAD
}

static usg_status workers_alloc(usg_w2v_job *j)
{
    int64_t D = j->o.size, W = j->o.window, T = j->o.negative + 1 + USG_W2V_MAX_CODE;
    j->w = usg_alloc((size_t)j->o.threads * sizeof *j->w);
    if (!j->w) return USG_NOMEM;
    memset(j->w, 0, (size_t)j->o.threads * sizeof *j->w);     /* job_free frees what is not NULL */
    if (!(j->tids = usg_alloc((size_t)j->o.threads * sizeof *j->tids))) return USG_NOMEM;
    for (int k = 0; k < j->o.threads; k++) {
        worker *w = &j->w[k];
        w->job = j;
        w->id = k;
        w->rng = j->o.seed ^ (0xD1B54A32D192ED03ULL * (uint64_t)(k + 1));
        rnd(&w->rng);
        w->ids = usg_alloc(CHUNK_WORDS * sizeof *w->ids);
        w->start = usg_alloc((CHUNK_WORDS + 1) * sizeof *w->start);
        w->sen = usg_alloc(USG_W2V_MAX_SENTENCE * sizeof *w->sen);
        w->neu1 = usg_alloc((size_t)D * sizeof(float));
        w->din = usg_alloc((size_t)((2 * W + 1) * D) * sizeof(float));
        w->g = usg_alloc((size_t)(2 * W * T) * sizeof(float));
        w->ctx = usg_alloc((size_t)(2 * W) * sizeof *w->ctx);
        w->tgt = usg_alloc((size_t)T * sizeof *w->tgt);
        w->label = usg_alloc((size_t)T * sizeof *w->label);
        if (!w->ids || !w->start || !w->sen || !w->neu1 || !w->din || !w->g || !w->ctx || !w->tgt || !w->label)
            return USG_NOMEM;
    }
    return USG_OK;
}

usg_status usg_w2v_train_start(usg_w2v_job **out, usg_w2v_vocab *v, const char *const *files,
                               int nfiles, const usg_w2v_opts *o, float *syn0, float *syn1neg,
                               float *syn1)
{
    *out = NULL;
    usg_status s = check_opts(o, v, syn1neg, syn1);
    if (s != USG_OK) return s;
    if ((s = usg_w2v_vocab_prepare(v)) != USG_OK) return s;
    usg_w2v_job *j = calloc(1, sizeof *j);
    if (!j) return usg_fail(USG_NOMEM, "word2vec.train: out of memory");
    j->v = v;
    j->o = *o;
    j->syn0 = syn0; j->syn1neg = syn1neg; j->syn1 = syn1;
    j->total = (int64_t)o->iter * v->total;
    j->alpha = o->alpha;
    pthread_mutex_init(&j->lock, NULL);
    pthread_cond_init(&j->cond, NULL);
    for (int i = 0; i < EXP_TABLE_SIZE; i++) {     /* σ(x) on a grid over [-MAX_EXP, MAX_EXP) */
        double e = exp((i / (double)EXP_TABLE_SIZE * 2 - 1) * MAX_EXP);
        j->exp_table[i] = (float)(e / (e + 1));
    }
    if (o->sample > 0) {
        if (!(j->keep = usg_alloc((size_t)v->n * sizeof *j->keep))) s = USG_NOMEM;
        for (int64_t i = 0; s == USG_OK && i < v->n; i++) {
            double p = usg_w2v_keep_prob(v->counts[i], v->total, o->sample);
            j->keep[i] = p >= 1 ? UINT32_MAX : (uint32_t)(p * 4294967296.0);
        }
    }
    if (s == USG_OK) s = usg_w2v_reader_open(&j->reader, v, files, nfiles, o->iter, o->lower);
    if (s == USG_OK) s = workers_alloc(j);
    if (s != USG_OK) {
        job_free(j);
        return s;
    }
    j->running = o->threads;
    for (int k = 0; k < o->threads; k++) {
        if (pthread_create(&j->tids[k], NULL, work, &j->w[k]) != 0) {
            pthread_mutex_lock(&j->lock);
            j->stop = 1;
            j->running -= o->threads - k;
            pthread_mutex_unlock(&j->lock);
            j->started = k;
            usg_w2v_train_finish(j);
            return usg_fail(USG_NOMEM, "word2vec.train: cannot start thread %d of %d", k + 1, o->threads);
        }
        j->started = k + 1;
    }
    *out = j;
    return USG_OK;
}

bool usg_w2v_train_wait(usg_w2v_job *j, double seconds, usg_w2v_progress *p)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double whole = floor(seconds);
    ts.tv_sec += (time_t)whole;
    ts.tv_nsec += (long)((seconds - whole) * 1e9);
    if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
    pthread_mutex_lock(&j->lock);
    while (j->running > 0)
        if (pthread_cond_timedwait(&j->cond, &j->lock, &ts) == ETIMEDOUT) break;
    bool done = j->running == 0;
    if (p) {
        p->words = j->words;
        p->total = j->total;
        p->alpha = j->alpha;
        p->epoch = j->epoch;
    }
    pthread_mutex_unlock(&j->lock);
    return done;
}

void usg_w2v_train_stop(usg_w2v_job *j)
{
    pthread_mutex_lock(&j->lock);
    j->stop = 1;
    pthread_mutex_unlock(&j->lock);
}

usg_status usg_w2v_train_finish(usg_w2v_job *j)
{
    for (int k = 0; k < j->started; k++) pthread_join(j->tids[k], NULL);
    usg_status s = j->status;
    if (s != USG_OK) usg_fail(s, "%s", j->msg);
    job_free(j);
    return s;
}
