-- help(): every public function, class, method and plugin of usagi has a
-- doc (this spec fails on the first one that does not, naming it), and
-- help prints the doc of a value or a name.
local usagi = require 'usagi'
local doc = require 'usagi.doc'
local h = dofile('tests/lua/helpers.lua')

-- every plugin built (usagi/<family>.so on package.cpath), so their
-- classes and functions are listed; a new plugin is checked as it lands
local plugins = doc.plugin_names()
for _, p in ipairs(plugins) do require('usagi.' .. p) end

local function help_text(...)
  local out, old = {}, _G.print
  _G.print = function(...) out[#out + 1] = table.concat({ ... }, '\t') end
  local ok, err = pcall(doc.help, ...)
  _G.print = old
  assert(ok, err)
  return table.concat(out, '\n')
end

describe('doc', function()
  it('lists the public surface: usagi, tensor methods, nn, optim, data, plot and the plugins', function()
    local names = {}
    for _, e in ipairs(doc.public()) do names[e[1]] = true end
    for _, n in ipairs { 'usagi.zeros', 'usagi.h5.open', 'usagi.sys.listdir', 'Tensor:mm', 'Tensor:exp_',
      'Tensor.grad', 'nn.Linear', 'nn.Module:parameters', 'nn.init.xavier_uniform_', 'optim.Adam',
      'optim.Optimizer:step', 'usagi.data.ptb', 'usagi.plot.lines', 'usagi.lstm', 'usagi.lstm.lstm',
      'nn.LSTM', 'nn.LSTM:reset', 'nn.MultiheadAttention', 'nn.VAE', 'usagi.run.Run:log' } do
      assert.is_true(names[n] or false, n .. ' is not on the public list')
    end
    assert.is_true(#doc.public() > 450)
  end)

  it('finds the plugins of this tree on package.cpath', function()
    for _, p in ipairs { 'attention', 'birnn', 'gru', 'hello', 'lstm', 'rnn', 'seq2seq', 'vae' } do
      local found = false
      for _, q in ipairs(plugins) do found = found or q == p end
      assert.is_true(found, p)
    end
  end)

  it('has a doc for every one of them', function()
    local missing = {}
    for _, e in ipairs(doc.public()) do
      local t = doc.text(e[1], e[2])
      if type(t) ~= 'string' or #t < 10 then missing[#missing + 1] = e[1] end
    end
    assert.are.same({}, missing, 'without a doc: ' .. table.concat(missing, ', ')
      .. ' (write a comment right above the definition, or a text in scripts/usagi/doc_binding.lua '
      .. 'for a C function)')
  end)

  it('finds a doc that is missing: an undocumented function fails the check', function()
    local nn = require 'usagi.nn'
    nn.undocumented_for_the_spec = load('return function() end')()
    local found = false
    for _, e in ipairs(doc.public()) do
      if e[1] == 'nn.undocumented_for_the_spec' then found = doc.text(e[1], e[2]) == nil end
    end
    nn.undocumented_for_the_spec = nil
    assert.is_true(found)
  end)

  it('help(nn.LSTM) gives the signature, the options and where the equations are', function()
    local s = help_text(require('usagi.nn').LSTM)
    assert.truthy(s:find('nn.LSTM(input_size, hidden_size [, opts])', 1, true), s)
    assert.truthy(s:find('peephole', 1, true) and s:find('forget_bias', 1, true), s)
    assert.truthy(s:find('modules/lstm/README.md', 1, true), s)
    assert.truthy(s:find('methods:', 1, true), s)
  end)

  it('help on a plugin gives its equations', function()
    local s = help_text 'usagi.lstm'
    assert.truthy(s:find("c' = f ⊙ c + i ⊙ g", 1, true), s)
  end)

  it('help on C functions, tensor methods (also in place) and instances', function()
    assert.truthy(help_text(usagi.mm):find('matrix product', 1, true))
    assert.truthy(help_text 'Tensor:mm':find('matrix product', 1, true))
    assert.truthy(help_text 't:exp_':find('exp in place', 1, true))
    local s = help_text(require('usagi.nn').Linear(2, 3))
    assert.truthy(s:find('^nn.Linear\nnn.Linear%(in, out'), s)
    assert.truthy(help_text(require('usagi.optim').SGD):find('momentum', 1, true))
  end)

  it('help finds a class defined after an earlier help, from the comment above it', function()
    help_text(require('usagi.nn').Linear)
    local path = os.tmpname()
    local f = assert(io.open(path, 'w'))
    f:write("local nn = require 'usagi.nn'\n",
            "local Later = nn.Module:extend 'DocSpecLater'\n\n",
            "-- nn.DocSpecLater(n): a class written after the first help, to check\n",
            "-- that help reads its comment\n",
            "function Later:__init(n) nn.Module.__init(self) end\n",
            "nn.DocSpecLater = Later\n")
    f:close()
    dofile(path)
    local nn = require 'usagi.nn'
    local s = help_text(nn.DocSpecLater)            -- reads the file: remove it after
    nn.DocSpecLater = nil
    os.remove(path)
    assert.truthy(s:find('nn.DocSpecLater(n): a class written after the first help', 1, true), s)
  end)

  it('takes a class gathered from several files from the file that binds its name', function()
    -- usagi.run's Run gets methods from run_progress.lua, run_train.lua, ...;
    -- each of those files opens with `local Run = {}` under a comment of its own
    local s = help_text(require('usagi.run').Run)
    assert.truthy(s:find("Run: what an experiment's run function gets", 1, true), s)
  end)

  -- The names a user types: short ones, a method as written in a script
  -- (run:log), the modules of the library, the spec of an experiment.
  it('help finds the names users type, not only the full ones', function()
    local want = {
      ['usagi.run'] = 'one run of an experiment', ['Run:log'] = 'run:log{key = value',
      ['run:log'] = 'run:log{key = value', ['Run:batches'] = 'opts.dim',
      ['usagi.data'] = 'usagi.data --', ['usagi.nn'] = 'usagi.nn --', ['optim'] = 'usagi.optim',
      ['LSTM'] = 'bidirectional', ['nn.LSTM'] = 'batch_first', ['nn.GRU'] = 'batch_first',
      ['nn.RNN'] = 'batch_first', ['most_similar'] = 'most_similar(word',
      ['usagi.word2vec.Model:analogy'] = 'analogy(a, b, c', ['usagi.experiment'] = 'checkpoint',
      ['log'] = 'natural log',
    }
    for name, needle in pairs(want) do
      local s = help_text(name)
      assert.truthy(s:find(needle, 1, true), ("help '%s' lacks '%s':\n%s"):format(name, needle, s))
    end
    local s = help_text 'step'
    assert.truthy(s:find("'step' names several: ", 1, true) and s:find('optim.Optimizer:step', 1, true), s)
    assert.truthy(help_text(usagi.data):find('usagi.data --', 1, true))
    s = help_text(usagi.experiment)
    for _, k in ipairs { 'name', 'config', 'smoke', 'checkpoint', "best = 'metric' or 'metric:max'", 'run ' } do
      assert.truthy(s:find(k, 1, true), k .. ' not in help(usagi.experiment):\n' .. s)
    end
    for _, opt in ipairs { 'num_layers', 'bias', 'dropout', 'peephole', 'forget_bias', 'carry',
                           'bidirectional', 'merge', 'batch_first', 'dtype' } do
      assert.truthy(help_text('nn.LSTM'):find(opt, 1, true), 'help(nn.LSTM) lacks the option ' .. opt)
    end
  end)

  -- Instances: help on the objects a user holds, and a doc for every method
  -- their metatables reach (the class's own and inherited ones).
  it('walks instances: every method of a module, optimizer, run and word2vec model has a doc', function()
    local nn, optim = require 'usagi.nn', require 'usagi.optim'
    local E = require 'usagi.experiment'
    local w2v = require 'usagi.word2vec'
    local lstm = nn.LSTM(2, 3, { bidirectional = true })
    local run = E.run_experiment(usagi.experiment { name = 'docrun', config = { n = 1 },
      run = function() end }, { quiet = true })
    local instances = {
      lstm = lstm, adam = optim.Adam(lstm:parameters()), run = run,
      model = w2v.from_vectors({ 'a', 'b' }, usagi.randn(2, 3)),
      seq2seq = nn.Seq2Seq { src_vocab = 5, tgt_vocab = 5, embed = 4, hidden = 4, pad = 1 },
      vae = nn.VAE(4, { hidden = 3, latent = 2 }),
      attention = nn.MultiheadAttention(4, 2),
    }
    local missing = {}
    for what, obj in pairs(instances) do
      local s = help_text(obj)
      if s:find('no doc', 1, true) then missing[#missing + 1] = what .. ' (help on the instance)' end
      local seen, mt = {}, getmetatable(obj)
      local cls = mt
      while type(cls) == 'table' do
        for k, f in pairs(cls) do
          -- check/update/lr_at: the hooks an optimizer class gives step(), not for users
          if type(f) == 'function' and type(k) == 'string' and not k:match('^_') and not seen[k]
             and not ({ check = true, update = true, lr_at = true })[k] then
            seen[k] = true
            local t = help_text(f)
            if t:find('no doc', 1, true) then missing[#missing + 1] = what .. ':' .. k end
          end
        end
        local up = getmetatable(cls)
        cls = rawget(cls, 'super') or (type(up) == 'table' and rawget(up, '__index') ~= cls and rawget(up, '__index')) or nil
      end
    end
    table.sort(missing)
    assert.are.same({}, missing, 'without a doc: ' .. table.concat(missing, ', '))
  end)

  -- A fresh process that has required nothing: the plugins' names are
  -- there, in code and at help, and an explicit require still works.
  it('finds the plugins before they are loaded, and loads them on first use', function()
    local code = [[
      local R = require 'usagi.repl'
      local _, c = R.complete('usagi.nn.LS')
      local _, w = R.complete('usagi.wor')
      print(table.concat(c, ' '), table.concat(w, ' '), package.loaded['usagi.lstm'] == nil)
      usagi.help 'nn.GRU'
      local m = usagi.nn.MultiheadAttention(4, 2)
      print(type(usagi.word2vec.train), package.loaded['usagi.attention'] ~= nil,
            require('usagi.lstm') == usagi.lstm, usagi.nn.LSTM == require('usagi.nn').LSTM,
            usagi.nn.NoSuchLayer == nil)
    ]]
    local rc, out = h.usagi_cli('-e', code)
    assert.are.equal(0, rc, out)
    assert.truthy(out:find('usagi.nn.LSTM usagi.nn.LSTMCell\tusagi.word2vec\ttrue\n', 1, true), out)
    assert.truthy(out:find('nn.GRU(input_size, hidden_size [, opts])', 1, true), out)
    assert.truthy(out:find('function\ttrue\ttrue\ttrue\ttrue', 1, true), out)
  end)

  it('help() says where to start; an unknown name says so', function()
    local s = help_text()
    assert.truthy(s:find('Where to start', 1, true) and s:find(':reload NAME', 1, true), s)
    assert.truthy(help_text 'no.such.thing':find("no doc for 'no.such.thing'", 1, true))
    assert.truthy(help_text(42):find('no doc for this number', 1, true))
  end)
end)
