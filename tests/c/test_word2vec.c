/*
 * test_word2vec.c -- the word2vec plugin's C side (modules/word2vec): the
 * vocabulary (counting, min_count, max_vocab, lower-casing, order), the
 * Huffman tree against a textbook example, the alias table's sampling
 * frequencies against c^0.75 / Z, the subsampling formula, the corpus
 * reader's sentences and epochs, and determinism: one thread and one seed
 * give the same bits, another seed other bits. Queries, files and the Lua
 * face are checked in tests/lua/word2vec_spec.lua.
 */
#define _GNU_SOURCE   /* qsort_r, in the included w2v_vocab.c */
#include <stdlib.h>
#include <unistd.h>
#include "testutil.h"
#include "../../modules/word2vec/w2v_vocab.c"
#include "../../modules/word2vec/word2vec.c"

static char corpus[64];

static void write_corpus(void)
{
    strcpy(corpus, "usagi_w2v_XXXXXX");          /* in the working directory (ctest: the build tree) */
    int fd = mkstemp(corpus);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    /* "the" 6, "cat" 3, "sat" 2, "on" 2, "mat" 1, "Dog" 1, "dog" 1 */
    fputs("the cat sat on the mat\nThe\tcat  the dog\n\nthe cat sat on the Dog\n", f);
    fclose(f);
}

static void test_vocab(void **state)
{
    (void)state;
    write_corpus();
    const char *files[] = {corpus};
    usg_w2v_vocab *v;
    assert_int_equal(usg_w2v_vocab_build(&v, files, 1, 1, 0, false), USG_OK);
    assert_int_equal(v->n, 8);            /* the The cat sat on mat dog Dog */
    assert_string_equal(v->words[0], "the");
    assert_int_equal(v->counts[0], 5);
    assert_string_equal(v->words[1], "cat");
    assert_string_equal(v->words[2], "sat");   /* 2, seen before "on" */
    assert_string_equal(v->words[3], "on");
    assert_int_equal(v->total, 16);
    assert_int_equal(usg_w2v_vocab_find(v, "mat", 3), 4);
    assert_int_equal(usg_w2v_vocab_find(v, "horse", 5), -1);
    usg_w2v_vocab_free(v);

    assert_int_equal(usg_w2v_vocab_build(&v, files, 1, 2, 0, true), USG_OK);
    assert_int_equal(v->n, 5);            /* the 6, cat 3, sat 2, on 2, dog 2 */
    assert_int_equal(v->counts[0], 6);
    assert_string_equal(v->words[4], "dog");
    usg_w2v_vocab_free(v);

    assert_int_equal(usg_w2v_vocab_build(&v, files, 1, 1, 2, true), USG_OK);
    assert_int_equal(v->n, 2);
    usg_w2v_vocab_free(v);

    assert_int_equal(usg_w2v_vocab_build(&v, files, 1, 100, 0, false), USG_ARG);
    assert_non_null(strstr(usg_errmsg(), "min_count=100"));
    const char *missing[] = {"/nonexistent/w2v.txt"};
    assert_int_equal(usg_w2v_vocab_build(&v, missing, 1, 1, 0, false), USG_IO);
    assert_non_null(strstr(usg_errmsg(), "/nonexistent/w2v.txt"));
    assert_null(v);
    const char *words[] = {"a", "b", "a"};
    assert_int_equal(usg_w2v_vocab_from(&v, words, (int64_t[]){3, 2, 1}, 3), USG_ARG);
    assert_non_null(strstr(usg_errmsg(), "twice"));
    unlink(corpus);
}

/* The textbook Huffman example (Cormen et al., 16.3): counts 45, 16, 13,
 * 12, 9, 5 give code lengths 1, 3, 3, 3, 4, 4 (224 bits in all). */
static void test_huffman(void **state)
{
    (void)state;
    const char *words[] = {"a", "d", "b", "c", "e", "f"};
    usg_w2v_vocab *v;
    assert_int_equal(usg_w2v_vocab_from(&v, words, (int64_t[]){45, 16, 13, 12, 9, 5}, 6), USG_OK);
    assert_int_equal(usg_w2v_vocab_prepare(v), USG_OK);
    const int want[] = {1, 3, 3, 3, 4, 4};
    int bits = 0;
    double kraft = 0;
    for (int i = 0; i < 6; i++) {
        assert_int_equal(v->codelen[i], want[i]);
        bits += v->codelen[i] * (int)v->counts[i];
        kraft += ldexp(1, -v->codelen[i]);
        assert_int_equal(v->point[v->codeoff[i]], 4);          /* every path starts at the root, V - 2 */
        for (int d = 0; d < v->codelen[i]; d++) {
            assert_in_range(v->point[v->codeoff[i] + d], 0, 4);
            assert_in_range(v->code[v->codeoff[i] + d], 0, 1);
        }
        /* prefix-free: no code starts another */
        for (int j = 0; j < 6; j++) {
            if (j == i || v->codelen[j] < v->codelen[i]) continue;
            assert_false(memcmp(v->code + v->codeoff[i], v->code + v->codeoff[j], v->codelen[i]) == 0);
        }
    }
    assert_int_equal(bits, 224);
    assert_true(fabs(kraft - 1) < 1e-12);
    usg_w2v_vocab_free(v);
}

static void test_alias(void **state)
{
    (void)state;
    const char *words[] = {"a", "b", "c", "d", "e"};
    const int64_t counts[] = {1000, 300, 100, 10, 1};
    usg_w2v_vocab *v;
    assert_int_equal(usg_w2v_vocab_from(&v, words, counts, 5), USG_OK);
    assert_int_equal(usg_w2v_vocab_prepare(v), USG_OK);
    double z = 0, p[5];
    for (int i = 0; i < 5; i++) z += p[i] = pow((double)counts[i], 0.75);
    long hits[5] = {0};
    uint64_t s = 42;
    const long N = 2000000;
    for (long k = 0; k < N; k++) hits[usg_w2v_negative(v, rnd(&s))]++;
    for (int i = 0; i < 5; i++) {
        double want = p[i] / z, got = (double)hits[i] / N;
        double sd = sqrt(want * (1 - want) / N);
        if (fabs(got - want) > 5 * sd) fail_msg("word %d: frequency %g, expected %g (c^0.75 / Z)", i, got, want);
    }
    usg_w2v_vocab_free(v);
}

/* The draws of the Lua face's vocab:sample_negatives: the trainer's
 * splitmix64 from the seed, 1-based ids, a refusal outside 0..2^30. */
static void test_sample_negatives(void **state)
{
    (void)state;
    const char *words[] = {"a", "b", "c"};
    usg_w2v_vocab *v;
    assert_int_equal(usg_w2v_vocab_from(&v, words, (int64_t[]){100, 10, 1}, 3), USG_OK);
    usg_tensor *t, *u;
    assert_int_equal(usg_w2v_sample_negatives(&t, v, 1000, 9), USG_OK);
    assert_int_equal(usg_w2v_sample_negatives(&u, v, 1000, 9), USG_OK);
    const int32_t *p = usg_tensor_data(t), *q = usg_tensor_data(u);
    uint64_t s = 9;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(p[i], q[i]);
        assert_int_equal(p[i], usg_w2v_negative(v, rnd(&s)) + 1);
    }
    usg_tensor_release(t);
    usg_tensor_release(u);
    assert_int_equal(usg_w2v_sample_negatives(&t, v, -1, 9), USG_ARG);
    assert_null(t);
    assert_non_null(strstr(usg_errmsg(), "sample_negatives: n must be in 0..2^30, got -1"));
    usg_w2v_vocab_free(v);
}

static void test_subsampling(void **state)
{
    (void)state;
    /* f = c / N = 0.1, t = 1e-3: keep (sqrt(f / t) + 1) t / f = 0.11 */
    assert_true(fabs(usg_w2v_keep_prob(100000, 1000000, 1e-3) - 0.11) < 1e-12);
    assert_true(usg_w2v_keep_prob(10, 1000000, 1e-3) > 1);     /* rare words are always kept */
    assert_true(usg_w2v_keep_prob(10, 1000000, 0) == 1);        /* t = 0: no subsampling */
}

static void test_reader(void **state)
{
    (void)state;
    write_corpus();
    const char *files[] = {corpus, corpus};
    usg_w2v_vocab *v;
    assert_int_equal(usg_w2v_vocab_build(&v, files, 1, 2, 0, true), USG_OK);
    usg_w2v_reader *r;
    assert_int_equal(usg_w2v_reader_open(&r, v, files, 2, 3, true), USG_OK);
    int32_t ids[4000];
    int64_t start[4001], nsent, words = 0, sents = 0;
    int epoch, last = 0;
    do {
        assert_int_equal(usg_w2v_reader_chunk(r, ids, 4000, start, &nsent, &epoch), USG_OK);
        if (nsent) { assert_true(epoch >= last); last = epoch; }
        words += nsent ? start[nsent] : 0;
        sents += nsent;
    } while (nsent);
    /* each pass: 15 known words in 3 sentences ("mat" is out), 2 files, 3 epochs */
    assert_int_equal(words, 15 * 2 * 3);
    assert_int_equal(sents, 3 * 2 * 3);
    assert_int_equal(last, 2);
    usg_w2v_reader_close(r);
    usg_w2v_vocab_free(v);
    unlink(corpus);
}

/* Train twice with one thread: the same seed gives the same bits. */
static void train(usg_w2v_vocab *v, const char *path, int cbow, int hs, int shared, uint64_t seed, float *out)
{
    int64_t V = v->n, D = 8;
    float *syn1neg = calloc((size_t)(V * D), sizeof(float)), *syn1 = calloc((size_t)(V * D), sizeof(float));
    for (int64_t i = 0; i < V * D; i++) out[i] = (float)((i * 7919 % 1000) / 1000.0 - 0.5) / (float)D;
    usg_w2v_opts o = {.size = D, .window = 3, .sample = 0.1, .hs = hs, .negative = 3, .threads = 1,
                      .iter = 5, .alpha = 0.05, .cbow = cbow, .shared = shared, .seed = seed, .lower = true};
    usg_w2v_job *job;
    const char *files[] = {path};
    assert_int_equal(usg_w2v_train_start(&job, v, files, 1, &o, out, syn1neg, syn1), USG_OK);
    usg_w2v_progress p;
    while (!usg_w2v_train_wait(job, 0.05, &p)) {}
    assert_int_equal(usg_w2v_train_finish(job), USG_OK);
    assert_int_equal(p.words, p.total);
    free(syn1neg);
    free(syn1);
}

static void test_determinism(void **state)
{
    (void)state;
    write_corpus();
    const char *files[] = {corpus};
    usg_w2v_vocab *v;
    assert_int_equal(usg_w2v_vocab_build(&v, files, 1, 1, 0, true), USG_OK);
    size_t n = (size_t)(v->n * 8);
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *init = malloc(n * sizeof *b);
    for (int mode = 0; mode < 4; mode++) {
        int cbow = mode == 3, hs = mode >= 1, shared = mode != 2;
        train(v, corpus, cbow, hs, shared, 7, a);
        train(v, corpus, cbow, hs, shared, 7, b);
        assert_memory_equal(a, b, n * sizeof *a);
        train(v, corpus, cbow, hs, shared, 8, b);
        assert_memory_not_equal(a, b, n * sizeof *a);
        for (size_t i = 0; i < n; i++) init[i] = (float)((i * 7919 % 1000) / 1000.0 - 0.5) / 8.0f;
        assert_memory_not_equal(a, init, n * sizeof *a);        /* training moved the vectors */
    }
    usg_w2v_opts bad = {.size = 8, .window = 3, .hs = 0, .negative = 0, .threads = 1, .iter = 1, .alpha = 0.1};
    usg_w2v_job *job;
    assert_int_equal(usg_w2v_train_start(&job, v, files, 1, &bad, a, b, b), USG_ARG);
    assert_non_null(strstr(usg_errmsg(), "hs = 0 and negative = 0"));
    free(a); free(b); free(init);
    usg_w2v_vocab_free(v);
    unlink(corpus);
}

/* Every allocation of counting, preparing and starting a training fails
 * in turn: NOMEM comes back, nothing leaks, and the next try succeeds. */
static void test_nomem(void **state)
{
    (void)state;
    write_corpus();
    const char *files[] = {corpus};
    size_t live = usg_alloc_live_bytes();
    usg_status s = USG_NOMEM;
    long n;
    for (n = 1; s != USG_OK && n < 10000; n++) {
        usg_w2v_vocab *v = NULL;
        usg_alloc_fail_after(n);
        s = usg_w2v_vocab_build(&v, files, 1, 1, 0, true);
        if (s == USG_OK) s = usg_w2v_vocab_prepare(v);
        float syn0[8 * 8], syn1neg[8 * 8], syn1[8 * 8];
        usg_w2v_job *job = NULL;
        usg_w2v_opts o = {.size = 8, .window = 2, .sample = 0.1, .hs = 1, .negative = 2, .threads = 2,
                          .iter = 1, .alpha = 0.05, .shared = 1, .seed = 1, .lower = true};
        memset(syn0, 0, sizeof syn0); memset(syn1neg, 0, sizeof syn1neg); memset(syn1, 0, sizeof syn1);
        if (s == USG_OK) s = usg_w2v_train_start(&job, v, files, 1, &o, syn0, syn1neg, syn1);
        usg_alloc_fail_after(0);
        if (s == USG_OK) {
            while (!usg_w2v_train_wait(job, 0.05, NULL)) {}
            assert_int_equal(usg_w2v_train_finish(job), USG_OK);
        } else {
            assert_int_equal(s, USG_NOMEM);
            assert_null(job);
        }
        usg_w2v_vocab_free(v);
        assert_int_equal(usg_alloc_live_bytes(), live);
    }
    assert_int_equal(s, USG_OK);
    assert_true(n > 10);                /* the sweep went through many allocations */
    unlink(corpus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vocab), cmocka_unit_test(test_huffman), cmocka_unit_test(test_alias),
        cmocka_unit_test(test_subsampling), cmocka_unit_test(test_sample_negatives),
        cmocka_unit_test(test_reader),
        cmocka_unit_test(test_determinism), cmocka_unit_test(test_nomem)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
