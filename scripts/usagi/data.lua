-- usagi.data -- finding data files, and the word-level Penn Treebank of
-- Mikolov's LM preprocessing cut into batches as Zaremba et al. (2014) do.
--
--   local data = require 'usagi.data'
--   local ptb = data.ptb()                     -- train, valid, test: i32 ids (n)
--   local train = data.batchify(ptb.train, 20) -- (N, 20): 20 contiguous columns
--   for x, y, i in data.windows(train, 35) do  -- x, y (35, 20); y is x one step on
--     ...
--   end
--
-- PTB is 5 MB of text, so it is read whole into memory; a loader of a big
-- corpus should stream instead. This file only reads files: `usagi data
-- get NAME` (usagi.data_get, after the registry usagi.datasets) downloads
-- them.
local usagi = require 'usagi'
local sys = usagi.sys

local data = {}

-- data.Vocab: tokens <-> ids, kept with a run (scripts/usagi/vocab.lua)
data.Vocab = require 'usagi.vocab'

-- ==== Finding files ======================================================

-- The places data.path tries, in order: the cache `usagi data get` fills
-- ($USAGI_DATA, else $XDG_DATA_HOME/usagi/data, else
-- ~/.local/share/usagi/data), a ./data folder of the current directory (a
-- user's own copy), and Debian's dataset packages (/usr/share/datasets:
-- dataset-fashion-mnist puts Fashion-MNIST there).
local function places(getenv)
  local cache = require('usagi.data_get').cache_dir(getenv)
  local list = { cache }
  if cache ~= 'data' then list[2] = 'data' end
  list[#list + 1] = '/usr/share/datasets'
  return list
end

-- A missing data set is an error object that reads as its message
-- (tostring, ..) and that `usagi run` prints without a traceback (its
-- metatable's `plain`, see usagi.experiment): the one command that gets
-- the set says all, wherever in the experiment the file was asked for.
local Missing = { __name = 'usagi.data.missing', plain = true }
Missing.__tostring = function(e) return e.message end
Missing.__concat = function(a, b) return tostring(a) .. tostring(b) end
local function missing(message) return setmetatable({ message = message }, Missing) end

-- path(rel [, env]) -> the path of data file rel ('ptb/ptb.valid.txt': a
-- set of `usagi data list`, a file of it), from the cache `usagi data get`
-- fills, else ./data/rel, else /usr/share/datasets/rel. A file may be
-- stored gzipped or not: for 'a.txt.gz' 'a.txt' is tried too (and the
-- other way round) at each place; usagi.sys.read reads both. env
-- (optional, for tests) is a table that replaces os.getenv. When no place
-- has the file, the error says the command that gets it.
function data.path(rel, env)
  if type(rel) ~= 'string' or rel == '' then
    error('data.path: rel must be a path relative to the data directory, got ' .. tostring(rel), 2)
  end
  local getenv = os.getenv
  if env ~= nil then
    if type(env) ~= 'table' then error('data.path: env must be a table, got ' .. type(env), 2) end
    getenv = function(k) return env[k] end
  end
  local other = rel:match('^(.*)%.gz$') or rel .. '.gz'
  local list = places(getenv)
  for _, dir in ipairs(list) do
    for _, name in ipairs { dir .. '/' .. rel, dir .. '/' .. other } do
      if sys.kind(name) == 'file' then return name end
    end
  end
  local set = rel:match('^([^/]+)/')
  local registry = require 'usagi.datasets'
  if set and registry[set] then
    error(missing(('data set %s is not here (%s is missing); get it with:\n  usagi data get %s')
      :format(set, rel, set)), 0)
  end
  error(('data.path: %s not found (nor %s) in %s; it is no data set of `usagi data list`')
    :format(rel, other, table.concat(list, ', ')), 2)
end

-- ==== Penn Treebank ======================================================

-- The words of text, one '<eos>' for every line end (the usual LM reading:
-- whitespace-split words, a sentence per line).
local function words(text)
  return (text:gsub('\n', ' <eos> ')):gmatch('%S+')
end

-- ptb() -> { train =, valid =, test = (i32 tensors of ids, 1-based),
--            vocab = a data.Vocab of words, ids = {word -> id} }
-- from ptb/ptb.train.txt.gz, ptb/ptb.valid.txt and ptb/ptb.test.txt. The
-- vocabulary is train's 10,000 words (<unk> and <eos> among them, <unk>
-- its unknown token), with ids in order of first appearance in train (not
-- by frequency, as the TensorFlow tutorial sorts them; the model does not
-- care). A word of valid or test outside it reads as <unk> (PTB has none).
-- Sizes: 929,589 train tokens, 73,760 valid, 82,430 test.
function data.ptb()
  local vocab = data.Vocab.new({}, { level = 'word' })
  local function encode(name, grow)
    local out, n, unk = {}, 0, vocab.index['<unk>']
    for w in words(sys.read(data.path('ptb/' .. name))) do
      local id = vocab.index[w]
      if not id then
        if grow then
          id = vocab:add(w)
        else
          id = unk or error(('data.ptb: %s has the word %q, which train lacks'):format(name, w), 3)
        end
      end
      n = n + 1
      out[n] = id
    end
    return usagi.tensor(out, 'i32')
  end
  local train = encode('ptb.train.txt.gz', true)
  if vocab.index['<unk>'] then vocab.unk = '<unk>' end
  return { train = train, valid = encode('ptb.valid.txt'), test = encode('ptb.test.txt'),
           vocab = vocab, ids = vocab.index }
end

-- ==== Character sequence tasks ===========================================

-- sequence_task(name [, seed]) -> { train = {x =, y =}, test = {x =, y =},
--   vocab = a data.Vocab of characters, ids = {char -> id}, pad, start }
-- The DLFS2 book's toy tasks, dlfs2/<name>.txt ('addition': "16+75  _91  ",
-- 'date': "september 27, 1994           _1994-09-27"): each line is a
-- question, '_' and the answer, both padded with spaces. x is the question,
-- y '_' plus the answer, as (n, len) i32 tensors of 1-based character ids
-- (ids in order of first appearance, as the book's sequence.py). The book
-- shuffles with a seeded permutation and keeps 90% to train, 10% to test;
-- here the permutation is usagi's randperm under `seed` (default 1984,
-- the book's), so the split repeats but is not the book's own.
-- pad = the id of ' ' (answers are padded with it), start = the id of '_'.
-- limit (> 0) keeps the first `limit` train and limit // 10 test pairs.
function data.sequence_task(name, seed, limit)
  if name ~= 'addition' and name ~= 'date' then
    error("data.sequence_task: name must be 'addition' or 'date', got " .. tostring(name), 2)
  end
  local text = sys.read(data.path('dlfs2/' .. name .. '.txt'))
  local vocab = data.Vocab.from_text((text:gsub('\n', '')), { level = 'char' })
  local qs, as = {}, {}
  for line in text:gmatch('[^\n]+') do
    local q, a = line:match('^([^_]*)(_.*)$')
    if not q then error(('data.sequence_task: %s.txt has a line without "_": %q'):format(name, line), 2) end
    qs[#qs + 1], as[#as + 1] = vocab:ids(q), vocab:ids(a)
  end
  local n = #qs
  local state = usagi.get_rng_state()
  usagi.manual_seed(seed or 1984)
  local perm = usagi.randperm(n):totable()
  usagi.set_rng_state(state)
  local n_train = n - n // 10
  local function part(lo, hi)
    local x, y = {}, {}
    for i = lo, hi do
      local k = perm[i]
      x[#x + 1], y[#y + 1] = qs[k], as[k]
    end
    return { x = usagi.tensor(x, 'i32'), y = usagi.tensor(y, 'i32') }
  end
  local n_test, n_keep = n - n_train, n_train
  if limit and limit > 0 then n_keep, n_test = math.min(limit, n_train), math.max(1, math.min(limit // 10, n_test)) end
  return { train = part(1, n_keep), test = part(n_train + 1, n_train + n_test), vocab = vocab,
           ids = vocab.index, pad = vocab.index[' '], start = vocab.index['_'] }
end

-- ==== Images =============================================================

-- idx(rel [, {dtype = 'i32', scale = 1}]) -> a tensor of an IDX file of
-- unsigned bytes (LeCun's MNIST format: a magic 0x0000 08 ndim, ndim
-- big-endian sizes, the bytes), found by data.path and read gzipped or
-- plain (an absolute path is read as it is); each byte times scale, in dtype.
function data.idx(rel, opts)
  local path = (type(rel) == 'string' and rel:sub(1, 1) == '/') and rel or data.path(rel)
  local bytes = sys.read(path)
  if #bytes < 4 or bytes:byte(1) ~= 0 or bytes:byte(2) ~= 0 or bytes:byte(3) ~= 8 then
    error(('data.idx: %s is not an IDX file of unsigned bytes (magic 00 00 08 ndim)'):format(path), 2)
  end
  local nd, shape = bytes:byte(4), {}
  for d = 1, nd do shape[d] = string.unpack('>I4', bytes, 5 + 4 * (d - 1)) end
  opts = opts or {}
  return usagi.frombytes(bytes, shape, { offset = 4 + 4 * nd, dtype = opts.dtype or 'i32', scale = opts.scale })
end

-- images of an IDX pair as {x = (n, H*W) f32 in [0, 1], y = (n) i32 labels 0..9}
local function idx_set(images, labels)
  local x = data.idx(images, { dtype = 'f32', scale = 1 / 255 })
  return { x = x:reshape(x:size(1), -1), y = data.idx(labels) }
end

-- mnist([split]) -> {train = {x, y} (60,000), test = {x, y} (10,000)}:
-- LeCun's MNIST (`usagi data get mnist`). split 'test' reads the 10,000
-- test images alone ({test = ...}), which is all an offline machine may
-- have (the shared data lacks the training images).
function data.mnist(split)
  if split ~= nil and split ~= 'test' then
    error("data.mnist: split must be nil (train and test) or 'test', got " .. tostring(split), 2)
  end
  local test = idx_set('mnist/t10k-images-idx3-ubyte.gz', 'mnist/t10k-labels-idx1-ubyte.gz')
  if split == 'test' then return { test = test } end
  return { train = idx_set('mnist/train-images-idx3-ubyte.gz', 'mnist/train-labels-idx1-ubyte.gz'), test = test }
end

-- fashion_mnist() -> {train = {x, y} (60,000), test = {x, y} (10,000)}
function data.fashion_mnist()
  return { train = idx_set('fashion-mnist/train-images-idx3-ubyte.gz', 'fashion-mnist/train-labels-idx1-ubyte.gz'),
           test = idx_set('fashion-mnist/t10k-images-idx3-ubyte.gz', 'fashion-mnist/t10k-labels-idx1-ubyte.gz') }
end

-- digits() -> {x = (1797, 64) f32 in [0, 1] (the 0..16 grey levels / 16),
-- y = (1797) i32 labels 0..9}: scikit-learn's 8x8 digits
function data.digits()
  local rows, labels = {}, {}
  for line in sys.read(data.path('digits/digits.csv.gz')):gmatch('[^\n]+') do
    local v = {}
    for n in line:gmatch('[^,]+') do v[#v + 1] = tonumber(n) end
    labels[#labels + 1] = table.remove(v)
    for i = 1, #v do v[i] = v[i] / 16 end
    rows[#rows + 1] = v
  end
  return { x = usagi.tensor(rows), y = usagi.tensor(labels, 'i32') }
end

-- image_set(name) -> train {x, y}, held-out {x, y}, the image side: the
-- splits the VAE and autoencoder experiments use --
--   'fashion'     Fashion-MNIST, 60,000 / 10,000 (28 x 28)
--   'mnist'       MNIST, the usual protocol: 60,000 train / 10,000 test (28 x 28)
--   'mnist-t10k'  MNIST's 10,000 test images alone, for a machine without the
--                 training images: the first 9,000 to train, the last 1,000
--                 held out (not the usual split; figures are not comparable)
--   'digits'      scikit-learn's digits, the first 1,500 / the other 297 (8 x 8)
function data.image_set(name)
  if name == 'fashion' then
    local f = data.fashion_mnist()
    return f.train, f.test, 28
  elseif name == 'mnist' then
    local ok, m = pcall(data.mnist)
    if not ok and tostring(m):find('train%-images') then
      error(missing(tostring(m) .. "\n(or --set data=mnist-t10k: a 9,000 / 1,000 split of the 10,000 test images)"), 0)
    elseif not ok then error(m, 0) end
    return m.train, m.test, 28
  elseif name == 'mnist-t10k' then
    local t = data.mnist('test').test
    local function part(lo, n) return { x = t.x:narrow(1, lo, n), y = t.y:narrow(1, lo, n) } end
    return part(1, 9000), part(9001, 1000), 28
  elseif name == 'digits' then
    local d = data.digits()
    return { x = d.x:narrow(1, 1, 1500), y = d.y:narrow(1, 1, 1500) },
           { x = d.x:narrow(1, 1501, 297), y = d.y:narrow(1, 1501, 297) }, 8
  end
  error(("data.image_set: name must be 'fashion', 'mnist', 'mnist-t10k' or 'digits', got '%s'")
    :format(tostring(name)), 2)
end

-- ==== Dialogues ===========================================================

-- dailydialog(split) -> list of dialogues, each a list of utterances, each
-- a list of words: DailyDialog's dailydialog/dialogues_<split>.txt (split
-- 'train', 'validation' or 'test'; one dialogue per line, turns ended by
-- '__eou__', words and punctuation already apart), lower-cased and split on
-- whitespace. Train has 11,118 dialogues, validation and test 1,000 each.
function data.dailydialog(split)
  if split ~= 'train' and split ~= 'validation' and split ~= 'test' then
    error("data.dailydialog: split must be 'train', 'validation' or 'test', got " .. tostring(split), 2)
  end
  local dialogues = {}
  for line in sys.read(data.path('dailydialog/dialogues_' .. split .. '.txt.gz')):gmatch('[^\n]+') do
    local turns = {}
    for turn in (line .. ' '):gmatch('(.-)__eou__') do
      local words = {}
      for w in turn:lower():gmatch('%S+') do words[#words + 1] = w end
      if #words > 0 then turns[#turns + 1] = words end
    end
    if #turns > 0 then dialogues[#dialogues + 1] = turns end
  end
  return dialogues
end

-- ==== Batches ============================================================

-- batchify(ids (n), B) -> (N, B) i32, N = n // B: the stream cut into B
-- contiguous pieces, piece b down column b (Zaremba's ptb.lua; the last
-- n % B ids are dropped). Reading the rows in order walks every piece at
-- once, so a state carried from one window to the next sees its own text.
function data.batchify(ids, B)
  if not usagi.is_tensor(ids) or ids:dim() ~= 1 then
    error('data.batchify: ids must be a 1-D tensor, got ' ..
      (usagi.is_tensor(ids) and tostring(ids:size()) or type(ids)), 2)
  end
  if math.type(B) ~= 'integer' or B < 1 then
    error('data.batchify: B must be a positive integer, got ' .. tostring(B), 2)
  end
  local N = ids:size(1) // B
  if N < 2 then
    error(('data.batchify: %d ids make fewer than 2 rows of %d'):format(ids:size(1), B), 2)
  end
  return ids:narrow(1, 1, N * B):view(B, N):t():contiguous()
end

-- nwindows(batched, T) -> how many (T, B) windows data.windows gives:
-- (N - 1) // T, the full ones (a target needs the row after its input).
function data.nwindows(batched, T)
  if math.type(T) ~= 'integer' or T < 1 then
    error('data.windows: T must be a positive integer, got ' .. tostring(T), 3)
  end
  return (batched:size(1) - 1) // T
end

-- window(batched, T, i) -> x, y, the i-th window: x = rows (i-1)T+1 .. iT,
-- y = the rows one below (the next word of each). Views, no copy.
function data.window(batched, T, i)
  local s = (i - 1) * T + 1
  return batched:narrow(1, s, T), batched:narrow(1, s + 1, T)
end

-- for x, y, i in windows(batched, T): every full window in order.
function data.windows(batched, T)
  local n, i = data.nwindows(batched, T), 0
  return function()
    if i >= n then return nil end
    i = i + 1
    local x, y = data.window(batched, T, i)
    return x, y, i
  end
end

return data
