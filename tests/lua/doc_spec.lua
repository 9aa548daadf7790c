-- help(): every public function, class, method and plugin of usagi has a
-- doc (this spec fails on the first one that does not, naming it), and
-- help prints the doc of a value or a name.
local usagi = require 'usagi'
local doc = require 'usagi.doc'

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

  it('help() says where to start; an unknown name says so', function()
    local s = help_text()
    assert.truthy(s:find('Where to start', 1, true) and s:find(':reload NAME', 1, true), s)
    assert.truthy(help_text 'no.such.thing':find("no doc for 'no.such.thing'", 1, true))
    assert.truthy(help_text(42):find('no doc for this number', 1, true))
  end)
end)
