-- modules/word2vec/ops.lua -- the op table of the word2vec plugin
-- (host/ops/README.md): the functions of the binding that take and give
-- values a table describes. The plugin has userdata of its own (the
-- vocabulary), so its opener is written by hand (word2vec_lua.c, which also
-- says what stays hand-written and why): it makes the Vocab metatable and
-- calls usg_word2vec_ops_open, generated from this table, which adds these
-- functions and methods. The trainer is in word2vec.c, the vocabulary in
-- w2v_vocab.c.
return {
  name = 'word2vec',
  plugin = { version = '0.1.0', opener = false },
  includes = { 'usagi/lua.h', 'word2vec.h', 'w2v_lua.h' },
  kinds = {
    -- a vocabulary (usagi.word2vec.Vocab) that has not been freed
    vocab = { sig = 'u', decl = 'usg_w2v_vocab *%n', check = 'usg_w2v_lua_checkvocab(L, %i)',
      test = { make = 'return function(w2v) return w2v._vocab_from({ "the", "of", "and", "to", "a" },'
        .. ' { 50, 30, 20, 10, 5 }) end', bad = 'x' } },
  },
  ops = {
    {
      name = '_keep_prob',
      doc = 'word2vec._keep_prob(count, total, t) -> the probability that subsampling keeps a word\n'
        .. 'seen count times of total (>= 1: always).',
      forms = { 'usagi' },
      args = { { 'integer', 'count' }, { 'integer', 'total' }, { 'number', 't' } },
      call = 'usg_w2v_keep_prob(count, total, t)',
      returns = 'number',
      grad = 'a number of counts, not a tensor',
      dtypes = 'any',
      test = { numbers = { 100000, 1000000, 1e-3 },
        ref = 'return function(c, n, t) return (math.sqrt(c / (t * n)) + 1) * t * n / c end' },
    },
    {
      name = 'size',
      class = 'usagi.word2vec.Vocab',
      doc = 'vocab:size() -> the number of words V of a word2vec vocabulary.',
      forms = { 'method' },
      args = { { 'vocab', 'v' } },
      call = 'v->n',
      returns = 'integer',
      grad = 'a count, not a tensor',
      dtypes = 'any',
    },
    {
      name = 'total',
      class = 'usagi.word2vec.Vocab',
      doc = 'vocab:total() -> the sum of the counts: the words one epoch of training reads.',
      forms = { 'method' },
      args = { { 'vocab', 'v' } },
      call = 'v->total',
      returns = 'integer',
      grad = 'a count, not a tensor',
      dtypes = 'any',
    },
    {
      name = 'sample_negatives',
      class = 'usagi.word2vec.Vocab',
      doc = 'vocab:sample_negatives(n, seed) -> n 1-based i32 ids drawn from the unigram^0.75\n'
        .. 'distribution of negative sampling, as the trainer draws them (the same seed, the same ids).',
      forms = { 'method' },
      args = { { 'vocab', 'v' }, { 'integer', 'n' }, { 'integer', 'seed' } },
      pre = 'luaL_argcheck(L, n >= 0 && n <= ((lua_Integer)1 << 30), 2, "n must be in 0..2^30");',
      call = 'usg_w2v_sample_negatives(&r, v, (int64_t)n, (uint64_t)seed)',
      grad = 'a draw of ids',
      dtypes = 'i32',
      test = { numbers = { 1000, 7 } },
    },
  },
}
