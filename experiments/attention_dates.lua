-- attention_dates.lua -- the DLFS2 book's attention seq2seq (chapter 8):
-- translate dates as people write them ("september 27, 1994", "2/10/93",
-- "TUESDAY, SEPTEMBER 25, 1984") to ISO ("1994-09-27"). 50,000 pairs
-- (dlfs2/date.txt), shuffled with a seed and split 90/10; the score is
-- exact match on the held-out 5,000, greedy decoding.
--
--   encoder:  h^s = LSTM(E x^s, ...) over the question (read backwards, as the book does)
--   decoder:  d^t = LSTM(E y^{t-1}, d^{t-1}) from the encoder's final state
--   attention (Luong's dot score, the attention plugin):
--             a^t = softmax_s(d^t . h^s),  c^t = sum_s a^t_s h^s
--   output:   p(y^t) = softmax(W [d^t; c^t] + b)
--
-- After training, the run directory gets attention-<k>.png: the weights a^t_s
-- of a few held-out dates, output characters down, input characters across.
-- Month, day and year of the output should each look at their own part of
-- the input.
--
--   usagi run experiments/attention_dates.lua
--   usagi run experiments/attention_dates.lua --set attention=additive
--   usagi run experiments/attention_dates.lua --smoke       # a few seconds, for the tests
--   usagi infer runs/attention_dates/<run-id> 'march 3, 1999'   # the trained model in use
local usagi = require 'usagi'
local nn, optim = require 'usagi.nn', require 'usagi.optim'
local data = require 'usagi.data'
local S = require 'usagi.seq2seq'

return usagi.experiment {
  name = 'attention_dates',
  config = { attention = 'dot', epochs = 20, batch = 128, embed = 16, hidden = 256, lr = 0.001,
             clip = 5.0, reverse_input = true, limit = 0, split_seed = 1984, pictures = 3 },
  smoke = { epochs = 1, limit = 1000, hidden = 32, pictures = 1 },
  checkpoint = { every_epochs = 1, keep = 1, best = 'accuracy', mode = 'max' },

  -- the model of a config; data is what the run keeps (run:model below)
  model = function(cfg, d)
    return nn.Seq2Seq { src_vocab = #d.vocab, tgt_vocab = #d.vocab, embed = cfg.embed, hidden = cfg.hidden,
      cell = 'lstm', attention = cfg.attention, reverse_input = cfg.reverse_input }
  end,

  -- usagi infer RUN_DIR 'march 3, 1999' -> 1999-03-03, and the attention picture
  infer_help = "each INPUT is a date as people write it ('march 3, 1999', '3/3/99', 'Wednesday, "
    .. "March 3, 1999'); the answer is the ISO date, and --picture true (the default) draws the "
    .. "attention of it to attention.png in --out",
  infer_options = { picture = true },
  infer = function(model, input, ctx)
    local d, v = ctx.data, ctx.vocab
    if type(input) ~= 'string' or input:match('^%s*$') then
      error("attention_dates: give a date to translate, e.g. 'september 27, 1994'", 0)
    end
    if #input > d.src_len then
      error(('attention_dates: a date has at most %d characters here, got %d: %q'):format(d.src_len, #input, input), 0)
    end
    local x = v:encode(input .. (' '):rep(d.src_len - #input)):view(1, d.src_len)
    local got
    if ctx.options.picture then
      local paths
      got, paths = S.attention_pictures(model, x, v, { start = d.start, max_len = d.answer_len,
        path_of = function() return ctx.path('attention.png') end })
      ctx.note('attention weights: ' .. paths[1])
    else
      got = model:generate(x, { start = d.start, max_len = d.answer_len })
    end
    return (v:decode(got[1]):gsub('%s+$', ''))
  end,

  run = function(run, cfg)
    local task = data.sequence_task('date', cfg.split_seed, cfg.limit)
    local train, test, V, vocab = task.train, task.test, #task.vocab, task.vocab
    local model = run:model { vocab = vocab, start = task.start, src_len = train.x:size(2),
                              answer_len = train.y:size(2) - 1 }
    local opt = optim.Adam(model:parameters(), { lr = cfg.lr })
    run:track { model = model, optim = opt }
    run:print(('attention_dates: %s attention, %d train / %d test dates, vocabulary %d, %d parameters')
      :format(cfg.attention, train.x:size(1), test.x:size(1), V, model:num_parameters()))

    local acc, misses, measured = 0, {}, nil
    for epoch in run:epochs(cfg.epochs) do
      local loss, seconds = run:train_epoch(opt, { train.x, train.y }, cfg.batch,
        function(x, y) return model:loss(x, y) end, { clip = cfg.clip })
      acc, misses = S.exact_match(model, test.x, test.y, task.start)
      measured = epoch
      run:log { epoch = epoch, loss = loss, accuracy = acc, samples_per_s = train.x:size(1) / seconds }
      run:print(('epoch %2d  loss %.5f  held-out exact match %7.3f%%  %5.0f samples/s')
        :format(epoch, loss, 100 * acc, train.x:size(1) / seconds))
    end

    -- what it still gets wrong
    -- a run resumed past its last epoch measures the trained model again
    if measured ~= cfg.epochs then acc, misses = S.exact_match(model, test.x, test.y, task.start) end
    run:print(('%d of %d held-out dates wrong%s'):format(#misses, test.x:size(1), #misses > 0 and ':' or ''))
    for k = 1, math.min(#misses, 10) do
      local i, got = misses[k][1], misses[k][2]
      run:print(('  %s -> %s (want %s)'):format(vocab:decode(test.x[i]):gsub('%s+$', ''),
        vocab:decode(got), vocab:decode(test.y[i]:narrow(1, 2, test.y:size(2) - 1))))
    end

    -- the attention of a few held-out dates, as pictures
    model:eval()
    local k = math.min(cfg.pictures, test.x:size(1))
    if k > 0 and run.dir then
      local _, paths = S.attention_pictures(model, test.x:narrow(1, 1, k), vocab, { start = task.start,
        max_len = test.y:size(2) - 1, path_of = function(b) return run.dir .. ('/attention-%d.png'):format(b) end })
      for _, path in ipairs(paths) do run:print('attention weights: ' .. path) end
    end
    return acc
  end,
}
