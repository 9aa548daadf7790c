-- seq2seq_addition.lua -- the DLFS2 book's seq2seq on addition: read "16+75"
-- a character at a time, write "91". 50,000 questions (dlfs2/addition.txt),
-- shuffled with a seed and split 90/10 as the book does; the score is
-- exact match on the held-out 5,000, greedy decoding.
--
--   encoder:  h^t, c^t = LSTM(E x^t, h^{t-1}, c^{t-1}) over the question
--   decoder:  from the encoder's final (h, c); at step t it reads the
--             previous answer character (teacher forcing) and, if peeky,
--             the encoder's h^T as well: s^t = LSTM([E y^{t-1}; h^T], ...)
--   output:   p(y^t) = softmax(W [s^t; h^T if peeky] + b)
--   loss:     mean cross-entropy per answer character; Adam, clip 5
--
-- The book's three variants (chapter 7), one config key:
--   variant=baseline        as above, plain                     (book: ~10% after 25 epochs)
--   variant=reversed        the question read backwards          (~50%)
--   variant=reversed_peeky  reversed, and peeky                  (~90-98%)
-- and chapter 8's attention (Luong's dot score over the encoder's states)
-- in place of peeky:
--   variant=attention       reversed, with attention
--
--   usagi run experiments/seq2seq_addition.lua --set variant=reversed_peeky
--   usagi sweep experiments/seq2seq_addition.lua --grid variant=baseline,reversed,reversed_peeky
--   usagi run experiments/seq2seq_addition.lua --smoke       # a few seconds, for the tests
--   usagi infer runs/seq2seq_addition/<run-id> '16+75'          # the trained model in use
local usagi = require 'usagi'
local nn, optim = require 'usagi.nn', require 'usagi.optim'
local data = require 'usagi.data'
local S = require 'usagi.seq2seq'

local VARIANTS = {
  baseline = {},
  reversed = { reverse_input = true },
  reversed_peeky = { reverse_input = true, peeky = true },
  attention = { reverse_input = true, attention = 'dot' },
}

local function variant(cfg)
  local v = VARIANTS[cfg.variant]
  if not v then
    error(("seq2seq_addition: variant must be baseline, reversed, reversed_peeky or attention, got '%s'")
      :format(cfg.variant), 0)
  end
  return v
end

return usagi.experiment {
  name = 'seq2seq_addition',
  config = { variant = 'reversed_peeky', epochs = 25, batch = 128, embed = 16, hidden = 128,
             lr = 0.001, clip = 5.0, limit = 0, split_seed = 1984 },
  smoke = { epochs = 2, limit = 2000, hidden = 32 },
  checkpoint = { every_epochs = 5, keep = 1 },

  -- the model of a config; data is what the run keeps (run:model below)
  model = function(cfg, d)
    local v = variant(cfg)
    return nn.Seq2Seq { src_vocab = #d.vocab, tgt_vocab = #d.vocab, embed = cfg.embed, hidden = cfg.hidden,
      cell = 'lstm', reverse_input = v.reverse_input, peeky = v.peeky, attention = v.attention }
  end,

  -- usagi infer RUN_DIR '16+75' -> 91
  infer_help = "each INPUT is a sum of two numbers of up to three digits ('16+75', '512+8'); "
    .. 'the answer is what the model says it comes to; with variant=attention, --picture true '
    .. '(the default) draws the attention of it to attention.png in --out',
  infer_options = { picture = true },
  infer = function(model, input, ctx)
    local d, vocab = ctx.data, ctx.vocab
    local q = type(input) == 'string' and input:gsub('%s+', '') or nil
    if not q or not q:match('^%d+%+%d+$') then
      error(("seq2seq_addition: give a sum such as '16+75', got %s"):format(input and ('%q'):format(input) or 'none'), 0)
    end
    if #q > d.src_len then
      error(('seq2seq_addition: a sum has at most %d characters here, got %d: %q'):format(d.src_len, #q, q), 0)
    end
    local x = vocab:encode(q .. (' '):rep(d.src_len - #q)):view(1, d.src_len)
    local got
    if model.attention and ctx.options.picture then
      local paths
      got, paths = S.attention_pictures(model, x, vocab, { start = d.start, max_len = d.answer_len,
        path_of = function() return ctx.path('attention.png') end })
      ctx.note('attention weights: ' .. paths[1])
    else
      got = model:generate(x, { start = d.start, max_len = d.answer_len })
    end
    return (vocab:decode(got[1]):gsub('%s+$', ''))
  end,

  run = function(run, cfg)
    variant(cfg)
    local task = data.sequence_task('addition', cfg.split_seed, cfg.limit)
    local train, test, V, vocab = task.train, task.test, #task.vocab, task.vocab
    local model = run:model { vocab = vocab, start = task.start, src_len = train.x:size(2),
                              answer_len = train.y:size(2) - 1 }
    local opt = optim.Adam(model:parameters(), { lr = cfg.lr })
    run:track { model = model, optim = opt }
    run:print(('seq2seq_addition: %s, %d train / %d test questions, vocabulary %d, %d parameters')
      :format(cfg.variant, train.x:size(1), test.x:size(1), V, model:num_parameters()))

    for epoch in run:epochs(cfg.epochs) do
      local loss, seconds = run:train_epoch(opt, { train.x, train.y }, cfg.batch,
        function(x, y) return model:loss(x, y) end, { clip = cfg.clip })
      local acc = S.exact_match(model, test.x, test.y, task.start)
      run:log { epoch = epoch, loss = loss, accuracy = acc, seconds = seconds }
      run:print(('epoch %2d  loss %.4f  held-out exact match %5.1f%%  (%.1f s)')
        :format(epoch, loss, 100 * acc, seconds))
    end
    -- a few answers, to look at
    model:eval()
    local x, y = test.x:narrow(1, 1, 5), test.y:narrow(1, 1, 5)
    local got = model:generate(x, { start = task.start, max_len = y:size(2) - 1 })
    for b = 1, 5 do
      local q = vocab:decode(x[b])
      local a, want = vocab:decode(got[b]), vocab:decode(y[b]:narrow(1, 2, y:size(2) - 1))
      run:print(('  %s = %s  %s'):format(q, a, a == want and 'ok' or ('(want ' .. want .. ')')))
    end
    local acc = run:history('accuracy')     -- the last epoch's, also when resumed past it
    return acc[#acc]
  end,
}
