/*
 * word2vec_lua.c -- the hand-written part of the word2vec plugin's binding:
 * `require 'usagi.word2vec'` loads usagi/word2vec.so, whose entry point
 * (below) makes the Vocab metatable, registers the functions here and those
 * generated from ops.lua (_keep_prob, vocab:size(), total(),
 * sample_negatives()), and runs the Lua face (word2vec.lua), which is what
 * users call. Arguments are checked here; the work is in w2v_vocab.c,
 * word2vec.c and w2v_io.c.
 *
 * What stays here takes or gives values an op table does not describe: the
 * vocabulary builders read lists of paths or of words and counts and make
 * the userdata; words(), counts(), find() and code() give Lua lists, or nil
 * for an unknown word; _train runs the threaded loop and calls back into
 * Lua while it waits; _save and _load read and write files with lists of
 * words. Their docs are at the end of word2vec.lua.
 *
 *   word2vec._vocab_build(files, min_count, max_vocab, lower) -> Vocab
 *   word2vec._vocab_from(words, counts)                       -> Vocab
 *   vocab:words(), vocab:counts(), vocab:find(w),
 *   vocab:code(id) -> codes, points (1-based ids and nodes, for tests)
 *   word2vec._train(vocab, files, opts, syn0, syn1neg, syn1, progress)
 *   word2vec._save(path, binary, words, vectors), word2vec._load(path, binary) -> words, vectors
 */
#include <string.h>

#include "w2v_lua.h"

#define VOCAB_MT USG_W2V_VOCAB_MT

typedef struct lvocab { usg_w2v_vocab *v; } lvocab;

usg_w2v_vocab *usg_w2v_lua_checkvocab(lua_State *L, int idx)
{
    lvocab *lv = luaL_checkudata(L, idx, VOCAB_MT);
    if (!lv->v) luaL_error(L, "word2vec: the vocabulary was freed");
    return lv->v;
}

static int l_vocab_gc(lua_State *L)
{
    lvocab *lv = luaL_checkudata(L, 1, VOCAB_MT);
    usg_w2v_vocab_free(lv->v);
    lv->v = NULL;
    return 0;
}

static int l_vocab_words(lua_State *L)
{
    usg_w2v_vocab *v = usg_w2v_lua_checkvocab(L, 1);
    lua_createtable(L, (int)v->n, 0);
    for (int64_t i = 0; i < v->n; i++) { lua_pushstring(L, v->words[i]); lua_rawseti(L, -2, i + 1); }
    return 1;
}

static int l_vocab_counts(lua_State *L)
{
    usg_w2v_vocab *v = usg_w2v_lua_checkvocab(L, 1);
    lua_createtable(L, (int)v->n, 0);
    for (int64_t i = 0; i < v->n; i++) { lua_pushinteger(L, v->counts[i]); lua_rawseti(L, -2, i + 1); }
    return 1;
}

static int l_vocab_find(lua_State *L)
{
    usg_w2v_vocab *v = usg_w2v_lua_checkvocab(L, 1);
    size_t len;
    const char *w = luaL_checklstring(L, 2, &len);
    int64_t id = usg_w2v_vocab_find(v, w, len);
    if (id < 0) lua_pushnil(L); else lua_pushinteger(L, id + 1);
    return 1;
}

static int64_t check_id(lua_State *L, usg_w2v_vocab *v, int idx)
{
    lua_Integer id = luaL_checkinteger(L, idx);
    if (id < 1 || id > v->n)
        luaL_error(L, "word2vec: id must be in 1..%I, got %I", (lua_Integer)v->n, id);
    return id - 1;
}

static int l_vocab_code(lua_State *L)
{
    usg_w2v_vocab *v = usg_w2v_lua_checkvocab(L, 1);
    int64_t id = check_id(L, v, 2);
    USG_LUA_TRY(L, usg_w2v_vocab_prepare(v));
    int len = v->codelen[id];
    lua_createtable(L, len, 0);
    lua_createtable(L, len, 0);                                   /* [codes, points] */
    for (int d = 0; d < len; d++) {
        lua_pushinteger(L, v->code[v->codeoff[id] + d]); lua_rawseti(L, -3, d + 1);
        lua_pushinteger(L, v->point[v->codeoff[id] + d] + 1); lua_rawseti(L, -2, d + 1);
    }
    return 2;
}

/* The Vocab metatable is made when the plugin opens (its generated
 * methods go into it then); a vocabulary gets it here. */
static void push_vocab(lua_State *L, usg_w2v_vocab *v)
{
    lvocab *lv = lua_newuserdatauv(L, sizeof *lv, 0);
    lv->v = v;                                                   /* ownership passes to Lua */
    luaL_setmetatable(L, VOCAB_MT);
}

/* The list of paths at idx into files (pointers into the Lua strings,
 * which the caller's table keeps alive). */
static int check_files(lua_State *L, int idx, const char *fn, const char ***out)
{
    if (!lua_istable(L, idx)) luaL_error(L, "%s: files must be a list of paths, got %s", fn, luaL_typename(L, idx));
    int n = (int)luaL_len(L, idx);
    if (n < 1 || n > USG_W2V_MAX_FILES) luaL_error(L, "%s: files must hold 1..%d paths, got %d", fn, USG_W2V_MAX_FILES, n);
    const char **files = *out = lua_newuserdatauv(L, (size_t)n * sizeof *files, 0);   /* [.., box] */
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, idx, i + 1);
        if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "%s: files[%d] must be a path, got %s", fn, i + 1, luaL_typename(L, -1));
        files[i] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    return n;
}

static int l_vocab_build(lua_State *L)
{
    const char **files;
    int n = check_files(L, 1, "word2vec.vocab", &files);
    lua_Integer min_count = luaL_checkinteger(L, 2), max_vocab = luaL_checkinteger(L, 3);
    usg_w2v_vocab *v;
    USG_LUA_TRY(L, usg_w2v_vocab_build(&v, files, n, min_count, max_vocab, lua_toboolean(L, 4)));
    push_vocab(L, v);
    return 1;
}

/* Scratch memory that Lua owns (a userdata on the stack), so an error
 * half-way leaks nothing. */
static void **box(lua_State *L, size_t n)
{
    void **p = lua_newuserdatauv(L, n * sizeof(void *) + 1, 0);
    memset(p, 0, n * sizeof(void *));
    return p;
}

static int l_vocab_from(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 1);
    if (n < 1 || n > ((lua_Integer)1 << 31)) luaL_error(L, "word2vec.vocab: expected 1..2^31 words, got %I", n);
    if (luaL_len(L, 2) != n) luaL_error(L, "word2vec.vocab: %I words but %I counts", n, luaL_len(L, 2));
    const char **words = (const char **)box(L, (size_t)n);
    int64_t *counts = lua_newuserdatauv(L, (size_t)n * sizeof(int64_t), 0);
    for (lua_Integer i = 0; i < n; i++) {
        lua_rawgeti(L, 1, i + 1);
        if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "word2vec.vocab: word %I must be a string, got %s", i + 1, luaL_typename(L, -1));
        words[i] = lua_tostring(L, -1);
        lua_pop(L, 1);
        lua_rawgeti(L, 2, i + 1);
        int ok;
        counts[i] = lua_tointegerx(L, -1, &ok);
        if (!ok) luaL_error(L, "word2vec.vocab: count %I must be an integer, got %s", i + 1, luaL_typename(L, -1));
        lua_pop(L, 1);
    }
    usg_w2v_vocab *v;
    USG_LUA_TRY(L, usg_w2v_vocab_from(&v, words, counts, n));
    push_vocab(L, v);
    return 1;
}

/* ==== Training ========================================================== */

static lua_Number opt_num(lua_State *L, int idx, const char *k)
{
    lua_getfield(L, idx, k);
    if (lua_type(L, -1) != LUA_TNUMBER) luaL_error(L, "word2vec.train: %s must be a number, got %s", k, luaL_typename(L, -1));
    lua_Number x = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return x;
}

static lua_Integer opt_int(lua_State *L, int idx, const char *k)
{
    lua_getfield(L, idx, k);
    int ok;
    lua_Integer x = lua_tointegerx(L, -1, &ok);
    if (!ok) luaL_error(L, "word2vec.train: %s must be an integer, got %s", k, luaL_typename(L, -1));
    lua_pop(L, 1);
    return x;
}

static float *rows(lua_State *L, int idx, const char *what, int64_t R, int64_t D)
{
    if (lua_isnoneornil(L, idx)) return NULL;
    usg_tensor *t = usg_lua_checktensor(L, idx);
    if (t->dtype != USG_F32 || !usg_tensor_is_contiguous(t) || t->ndim != 2 || t->shape[0] != R || t->shape[1] != D)
        luaL_error(L, "word2vec.train: %s must be a contiguous f32 (%I, %I) tensor", what, (lua_Integer)R, (lua_Integer)D);
    return usg_tensor_data(t);
}

/* _train(vocab, files, opts, syn0, syn1neg, syn1, progress): progress(words,
 * total, alpha, epoch) is called about 4 times a second while the workers
 * run; an error in it stops them, and is raised once they are joined. */
static int l_train(lua_State *L)
{
    const char **files;
    usg_w2v_vocab *v = usg_w2v_lua_checkvocab(L, 1);
    int nfiles = check_files(L, 2, "word2vec.train", &files);
    luaL_checktype(L, 3, LUA_TTABLE);
    usg_w2v_opts o = {0};
    o.size = opt_int(L, 3, "size");
    o.window = (int)opt_int(L, 3, "window");
    o.sample = opt_num(L, 3, "sample");
    o.hs = (int)opt_int(L, 3, "hs");
    o.negative = (int)opt_int(L, 3, "negative");
    o.threads = (int)opt_int(L, 3, "threads");
    o.iter = (int)opt_int(L, 3, "iter");
    o.alpha = opt_num(L, 3, "alpha");
    o.cbow = (int)opt_int(L, 3, "cbow");
    o.shared = (int)opt_int(L, 3, "shared");
    usg_rng *rng = usg_lua_rng(L);                  /* the workers' seeds come from the run's generator */
    o.seed = (uint64_t)usg_rng_u32(rng) << 32 | usg_rng_u32(rng);
    lua_getfield(L, 3, "lower");
    o.lower = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (o.size < 1) luaL_error(L, "word2vec.train: size must be >= 1, got %I", (lua_Integer)o.size);
    float *syn0 = rows(L, 4, "syn0", v->n, o.size);
    float *syn1neg = rows(L, 5, "syn1neg", v->n, o.size);
    float *syn1 = rows(L, 6, "syn1", v->n - 1, o.size);
    if (!syn0) luaL_error(L, "word2vec.train: syn0 is missing");
    usg_w2v_job *job;
    USG_LUA_TRY(L, usg_w2v_train_start(&job, v, files, nfiles, &o, syn0, syn1neg, syn1));
    usg_w2v_progress p;
    bool done = false;
    int err = LUA_OK;
    while (!done) {
        done = usg_w2v_train_wait(job, 0.25, &p);
        if (lua_isfunction(L, 7)) {
            lua_pushvalue(L, 7);
            lua_pushinteger(L, p.words);
            lua_pushinteger(L, p.total);
            lua_pushnumber(L, p.alpha);
            lua_pushinteger(L, p.epoch + 1);
            lua_pushboolean(L, done);
            if ((err = lua_pcall(L, 5, 0, 0)) != LUA_OK) {        /* [.., err] */
                usg_w2v_train_stop(job);
                break;
            }
        }
    }
    usg_status s = usg_w2v_train_finish(job);
    if (err != LUA_OK) return lua_error(L);
    if (s != USG_OK) usg_lua_error(L);
    lua_pushinteger(L, p.words);
    return 1;
}

/* _save(path, binary, words, vectors (V, D) f32) */
static int l_save(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    bool binary = lua_toboolean(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    usg_tensor *x = usg_lua_checktensor(L, 4);
    lua_Integer n = luaL_len(L, 3);
    if (x->dtype != USG_F32 || !usg_tensor_is_contiguous(x) || x->ndim != 2 || x->shape[0] != n)
        luaL_error(L, "word2vec.save: vectors must be a contiguous f32 (%I, D) tensor", n);
    const char **words = (const char **)box(L, (size_t)n);
    for (lua_Integer i = 0; i < n; i++) {
        lua_rawgeti(L, 3, i + 1);
        size_t len;
        const char *w = lua_tolstring(L, -1, &len);
        if (!w || len == 0 || strpbrk(w, " \t\n\r") || strlen(w) != len)
            luaL_error(L, "word2vec.save: word %I must be a non-empty string without whitespace, got %s",
                       i + 1, w ? w : luaL_typename(L, -1));
        words[i] = w;
        lua_pop(L, 1);
    }
    USG_LUA_TRY(L, usg_w2v_save(path, binary, words, n, usg_tensor_data(x), x->shape[1]));
    return 0;
}

/* _load(path, binary) -> words, vectors */
static int l_load(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    char **words;
    int64_t n;
    usg_tensor *x;
    USG_LUA_TRY(L, usg_w2v_load(path, lua_toboolean(L, 2), &words, &n, &x));
    usg_lua_pushtensor(L, x);
    if (!lua_checkstack(L, 4)) { usg_w2v_words_free(words, n); return luaL_error(L, "word2vec.load: stack overflow"); }
    lua_createtable(L, n < INT32_MAX ? (int)n : 0, 0);
    for (int64_t i = 0; i < n; i++) {       /* pushstring may raise on memory: free first where it cannot leak */
        lua_pushstring(L, words[i]);
        lua_rawseti(L, -2, i + 1);
    }
    usg_w2v_words_free(words, n);
    lua_insert(L, -2);                       /* [words, vectors] */
    return 2;
}

static const luaL_Reg word2vec_functions[] = {
    {"_save", l_save}, {"_load", l_load},
    {"_vocab_build", l_vocab_build}, {"_vocab_from", l_vocab_from}, {"_train", l_train},
    {NULL, NULL}};

static const luaL_Reg vocab_methods[] = {
    {"words", l_vocab_words}, {"counts", l_vocab_counts}, {"find", l_vocab_find},
    {"code", l_vocab_code}, {"__gc", l_vocab_gc}, {NULL, NULL}};

/* The Vocab metatable first, so that the generated methods can join it;
 * the generated functions go into the module after the face ran (it
 * reaches them through the module table when called, never before). */
USG_API int luaopen_usagi_word2vec(lua_State *L)
{
    if (luaL_newmetatable(L, VOCAB_MT)) {                            /* [mt] */
        luaL_setfuncs(L, vocab_methods, 0);
        lua_pushvalue(L, -1);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);                                                   /* [] */
    USG_PLUGIN_OPEN(L, "word2vec", "0.1.0", word2vec_functions);     /* [M] */
    usg_word2vec_ops_open(L, -1);
    return 1;
}
