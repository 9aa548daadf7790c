-- dialogue.lua -- HRED (Serban et al. 2016) and VHRED (Serban et al. 2017)
-- on DailyDialog: given the last few turns of a conversation, say the next
-- one. Every turn of every dialogue after the first is a response, with up
-- to `turns` turns before it as its context.
--
--   u^k   = GRU_utt(E w^k)                      each context turn, its last state
--   c     = GRU_ctx(u^1 .. u^K)                 the conversation so far
--   VHRED: z ~ N(mu_q, sigma_q^2) = posterior(c, GRU_utt(response)) when training,
--          z ~ N(mu_p, sigma_p^2) = prior(c) when answering; KL(q || p) in the loss
--   d^t   = GRU_dec([E y^{t-1}; c (; z)], d^{t-1}),  d^0 = tanh(W [c (; z)] + b)
--   p(y^t) = softmax(W_o d^t + b_o)
--
-- loss = (NLL of the response's words and its end + beta * KL) / words, with
-- beta rising linearly from 0 to 1 over the first `kl_anneal` steps (KL
-- annealing; the KL is logged alone, so a collapsing posterior shows). Adam,
-- gradients clipped. Reported on the test split: perplexity per word (for
-- VHRED from the posterior's z, with the KL per response beside it, and the
-- ELBO's perplexity exp((NLL + KL) / words), an upper bound on the true
-- one), and answers to a few test contexts, greedy and by beam search.
--
-- Data: `usagi data get dailydialog` (DailyDialog, Li et al. 2017; licence CC
-- BY-NC-SA 4.0, research use only), lower-cased, words as the corpus splits
-- them, the `vocab` most frequent train words kept (others read <unk>).
--
--   usagi run experiments/dialogue.lua                        # HRED
--   usagi run experiments/dialogue.lua --set model=vhred
--   usagi run experiments/dialogue.lua --smoke                # seconds, for the tests
--   usagi infer runs/dialogue/<run-id> 'can you do push-ups ?'  # the trained model answers
local usagi = require 'usagi'
local nn, optim = require 'usagi.nn', require 'usagi.optim'
local data = require 'usagi.data'
local S = require 'usagi.seq2seq'

-- examples of a split: {context = up to K turns, response}, ids of vocab
local function examples_of(dialogues, ids, K, max_len, limit)
  local unk, out = ids['<unk>'], {}
  for _, d in ipairs(dialogues) do
    local turns = {}
    for i, words in ipairs(d) do
      local t = {}
      for j = 1, math.min(#words, max_len) do t[j] = ids[words[j]] or unk end
      turns[i] = t
    end
    for k = 2, #turns do
      local ctx = {}
      for i = math.max(1, k - K), k - 1 do ctx[#ctx + 1] = turns[i] end
      out[#out + 1] = { context = ctx, response = turns[k] }
      if limit > 0 and #out >= limit then return out end
    end
  end
  return out
end

-- examples sorted by response length, in place, and cut into batches of B
-- ({lo, hi} ranges) of similar length (less padding). Equal lengths keep
-- their order, so the batches are the same however often this runs (a
-- resumed run sorts the examples afresh); each epoch draws its own order of
-- the batches from the run's generator.
local function batches(examples, B)
  local pos = {}
  for i, e in ipairs(examples) do pos[e] = i end
  table.sort(examples, function(a, b)
    if #a.response ~= #b.response then return #a.response < #b.response end
    return pos[a] < pos[b]
  end)
  local list = {}
  for lo = 1, #examples, B do list[#list + 1] = { lo, math.min(lo + B - 1, #examples) } end
  return list
end

local function words_of(ids, vocab)
  local w = {}
  for i, id in ipairs(ids) do w[i] = vocab[id] end
  return table.concat(w, ' ')
end

-- perplexity per word over examples (eval mode; VHRED: posterior z = its mean)
local function evaluate(model, examples, opts, B)
  model:eval()
  local nll, kl, words, n = 0, 0, 0, 0
  usagi.no_grad(function()
    for lo = 1, #examples, B do
      local hi = math.min(lo + B - 1, #examples)
      local _, info = model:loss(S.dialogue_batch(examples, lo, hi, opts))
      nll, words = nll + info.nll * info.tokens, words + info.tokens
      kl, n = kl + (info.kl_sum or 0), n + (hi - lo + 1)
    end
  end)
  model:train()
  return math.exp(nll / words), kl / n, math.exp((nll + kl) / words)
end

return usagi.experiment {
  name = 'dialogue',
  config = { model = 'hred', vocab = 10000, embed = 128, hidden = 256, context = 256, decoder = 256,
             latent = 64, turns = 3, max_len = 30, batch = 64, epochs = 3, lr = 0.001, clip = 1.0,
             kl_anneal = 3000, limit = 0, test_limit = 0, samples = 3, beam = 5 },
  smoke = { embed = 16, hidden = 32, context = 32, decoder = 32, latent = 8, vocab = 500, epochs = 1,
            limit = 600, test_limit = 100, kl_anneal = 5, samples = 1 },
  checkpoint = { every_epochs = 1, keep = 1 },

  -- the model of a config; data is what the run keeps (run:model below)
  model = function(cfg, d)
    return nn.HRED { vocab = #d.vocab, embed = cfg.embed, hidden = cfg.hidden, context = cfg.context,
      decoder = cfg.decoder, latent = cfg.model == 'vhred' and cfg.latent or 0, pad = d.vocab.index['<pad>'] }
  end,

  -- usagi infer RUN_DIR 'can you do push-ups ?' -> the model's next turn
  infer_help = "each INPUT is a conversation so far, its turns apart by '|' ('hi , how are you ? | "
    .. "fine , and you ?'), the last `turns` of them read; words the vocabulary lacks read as <unk>. "
    .. 'The answer is the next turn, by beam search over --beam answers (0: greedy), at most --max_len words',
  infer_options = { beam = 5, max_len = 30 },
  infer = function(model, input, ctx)
    local vocab, cfg, o = ctx.vocab, ctx.config, ctx.options
    if type(input) ~= 'string' or input:match('^[%s|]*$') then
      error("dialogue: give a conversation, its turns apart by '|': 'can you do push-ups ?'", 0)
    end
    if o.beam < 0 or o.max_len < 1 then
      error(('dialogue: --beam must be 0 or more and --max_len 1 or more, got %d and %d'):format(o.beam, o.max_len), 0)
    end
    local turns = {}
    for turn in (input .. '|'):gmatch('([^|]*)|') do
      local words = {}
      -- the corpus's way: lower case, punctuation apart from words
      for w in turn:lower():gsub('([%.,!?;])', ' %1 '):gmatch('%S+') do words[#words + 1] = w end
      if #words > 0 then turns[#turns + 1] = vocab:ids(words) end
    end
    local opts = { pad = vocab.index['<pad>'], start = vocab.index['<s>'], stop = vocab.index['</s>'],
                   context = cfg.turns }
    local batch = S.dialogue_batch({ { context = turns, response = {} } }, 1, 1, opts)
    local g = model:generate(batch, { start = opts.start, stop = opts.stop, max_len = o.max_len, mean = true,
      method = o.beam > 0 and 'beam' or 'greedy', beam = o.beam > 0 and o.beam or nil,
      length_penalty = o.beam > 0 and 1 or nil })
    return vocab:decode(g[1])
  end,

  run = function(run, cfg)
    if cfg.model ~= 'hred' and cfg.model ~= 'vhred' then
      error(("dialogue: model must be hred or vhred, got '%s'"):format(cfg.model), 0)
    end
    local train_d, test_d = data.dailydialog('train'), data.dailydialog('test')
    local vocab = data.Vocab.from_tokens(train_d, { order = 'frequency', max_size = cfg.vocab,
      specials = { '<pad>', '<unk>', '<s>', '</s>' }, unk = '<unk>' })
    local ids = vocab.index
    local opts = { pad = ids['<pad>'], start = ids['<s>'], stop = ids['</s>'], context = cfg.turns }
    local train = examples_of(train_d, ids, cfg.turns, cfg.max_len, cfg.limit)
    local test = examples_of(test_d, ids, cfg.turns, cfg.max_len, cfg.test_limit)
    local model = run:model { vocab = vocab }
    local params = model:parameters()
    local opt = optim.Adam(params, { lr = cfg.lr })
    local st = run:track { model = model, optim = opt, state = { step = 0 } }
    run:print(('dialogue: %s, vocabulary %d, %d train / %d test responses, %d parameters')
      :format(cfg.model, #vocab, #train, #test, model:num_parameters()))

    local list = batches(train, cfg.batch)
    for epoch in run:epochs(cfg.epochs) do
      -- what the steps carry, which a mid-epoch checkpoint keeps: the
      -- epoch's order of the batches and the sums
      local carry = { order = usagi.randperm(#list):int(), nll = 0, kl = 0, words = 0 }
      local t0 = usagi.sys.monotonic()
      for i in run:progress(#list, { label = ('epoch %d/%d'):format(epoch, cfg.epochs), unit = 'batches',
                                     carry = carry }) do
        local range = list[carry.order[i]]
        local batch = S.dialogue_batch(train, range[1], range[2], opts)
        st.step = st.step + 1
        local beta = math.min(1, st.step / math.max(cfg.kl_anneal, 1))
        local loss, info = model:loss(batch, { beta = beta })
        opt:zero_grad()
        loss:backward()
        optim.clip_grad_norm(params, cfg.clip)
        opt:step()
        carry.nll, carry.kl = carry.nll + info.nll * info.tokens, carry.kl + (info.kl_sum or 0)
        carry.words = carry.words + info.tokens
      end
      local nll, kl, words = carry.nll, carry.kl, carry.words
      local seconds = usagi.sys.monotonic() - t0
      local ppl, test_kl, elbo_ppl = evaluate(model, test, opts, cfg.batch)
      run:log { epoch = epoch, train_ppl = math.exp(nll / words), train_kl = kl / #train,
                test_ppl = ppl, test_kl = test_kl, test_elbo_ppl = elbo_ppl, words_per_s = words / seconds }
      run:print(('epoch %d  train ppl %.2f  test ppl %.2f  KL %.3f per response  ELBO ppl %.2f  (%.0f s, %.0f words/s)')
        :format(epoch, math.exp(nll / words), ppl, test_kl, elbo_ppl, seconds, words / seconds))
    end

    -- answers to a few test contexts
    model:eval()
    for k = 1, math.min(cfg.samples, #test) do
      local ex = test[1 + (k - 1) * 7 % #test]
      local batch = S.dialogue_batch({ ex }, 1, 1, opts)
      run:print('context:')
      for _, u in ipairs(ex.context) do run:print('  > ' .. words_of(u, vocab)) end
      run:print('  truth:  ' .. words_of(ex.response, vocab))
      local g = model:generate(batch, { start = opts.start, stop = opts.stop, max_len = cfg.max_len, mean = true })
      run:print('  greedy: ' .. words_of(g[1], vocab))
      local b = model:generate(batch, { start = opts.start, stop = opts.stop, max_len = cfg.max_len,
                                        method = 'beam', beam = cfg.beam, length_penalty = 1, mean = true })
      run:print(('  beam %d: %s'):format(cfg.beam, words_of(b[1], vocab)))
    end
    local ppl = run:history('test_ppl')   -- the last epoch's, also when resumed past it
    return ppl[#ppl]
  end,
}
