-- usagi.data.Vocab -- the map between tokens (characters or words) and the
-- 1-based ids a model reads, built once from the training text and kept
-- with the run, so that a trained model reads new text the way it read its
-- training data.
--
--   local Vocab = usagi.data.Vocab
--   local v = Vocab.from_text('hello world')              -- characters, ids by first appearance
--   v:encode('hold')          -- i32 tensor {1, 5, 3, 11}
--   v:decode({1, 2, 3, 3})    -- 'hell'
--   local w = Vocab.from_text(text, { level = 'word', order = 'frequency', max_size = 10000,
--                                     specials = { '<pad>', '<unk>' }, unk = '<unk>' })
--   w:write(f, '/vocab') ... Vocab.read(f, '/vocab')    -- inside an open usagi.h5 file
--
-- A Vocab is also the list of its tokens: v[id] is the token of id, #v the
-- size and ipairs(v) walks them in id order, so code written for a plain
-- {id -> token} list reads it unchanged. It does not split text any cleverer
-- than into characters or at whitespace: a subword tokenizer is another
-- thing.
local usagi = require 'usagi'

-- usagi.data.Vocab: tokens and their ids. Vocab.from_text(text [, opts]),
-- Vocab.from_tokens(lists [, opts]) or Vocab.new(tokens [, opts]) make
-- one; v:encode(text) -> ids, v:decode(ids) -> text; v[id], #v and
-- ipairs(v) read it as the list of its tokens; v:write(f, path) and
-- Vocab.read(f, path) keep it in HDF5.
local Vocab = { __name = 'usagi.data.Vocab' }
Vocab.__index = Vocab

-- the tag that marks a Vocab's group in an HDF5 file
local CLASS = Vocab.__name

local function fail(fn, fmt, ...) error(('Vocab.%s: ' .. fmt):format(fn, ...), 3) end

-- Vocab.is_vocab(v) -> whether v is a Vocab
local function is_vocab(v) return getmetatable(v) == Vocab end

-- The tokens of text at a level: its characters (bytes), or its words
-- (whitespace apart).
local function split(text, level)
  local out = {}
  if level == 'char' then
    for c in text:gmatch('.') do out[#out + 1] = c end
  else
    for w in text:gmatch('%S+') do out[#out + 1] = w end
  end
  return out
end

local function check_level(fn, level)
  if level ~= 'char' and level ~= 'word' then
    fail(fn, "level must be 'char' or 'word', got %s", tostring(level))
  end
  return level
end

-- Vocab.new(tokens [, {level = 'word', unk = token}]) -> a Vocab whose ids
-- are the positions of tokens, a list of distinct non-empty strings. level
-- says how encode splits a string and how decode joins tokens ('char': no
-- separator; 'word': a space). unk, when given, must be one of the tokens:
-- encode reads a token the vocabulary lacks as unk, where without it that
-- is an error.
function Vocab.new(tokens, opts)
  if type(tokens) ~= 'table' then fail('new', 'tokens must be a list of strings, got %s', type(tokens)) end
  opts = opts or {}
  if type(opts) ~= 'table' then fail('new', 'opts must be a table, got %s', type(opts)) end
  local self = setmetatable({ index = {}, level = check_level('new', opts.level or 'word') }, Vocab)
  for i, t in ipairs(tokens) do
    if type(t) ~= 'string' or t == '' then fail('new', 'token %d must be a non-empty string, got %s', i, tostring(t)) end
    if self.index[t] then fail('new', 'the token %q appears twice (%d and %d)', t, self.index[t], i) end
    self[i], self.index[t] = t, i
  end
  if opts.unk ~= nil then
    if not self.index[opts.unk] then fail('new', 'unk %q is not one of the tokens', tostring(opts.unk)) end
    self.unk = opts.unk
  end
  return self
end

setmetatable(Vocab, { __call = function(_, tokens, opts) return Vocab.new(tokens, opts) end })

-- Vocab.from_tokens(lists [, opts]) -> the Vocab of the tokens in lists (a
-- list of tokens, or lists of them nested to any depth). opts:
--   specials   tokens that come first, in order ({})
--   unk        the token for unknown ones (added after the specials if absent)
--   order      'first' (ids by first appearance, the default) or 'frequency'
--              (the most frequent first, ties by first appearance)
--   max_size   at most this many tokens, specials included
--   min_count  tokens seen fewer times are left out (1)
--   level      'word' (default) or 'char': how encode and decode treat strings
function Vocab.from_tokens(lists, opts)
  if type(lists) ~= 'table' and type(lists) ~= 'function' then
    fail('from_tokens', 'lists must be a list of tokens or of lists, got %s', type(lists))
  end
  opts = opts or {}
  local order = opts.order or 'first'
  if order ~= 'first' and order ~= 'frequency' then
    fail('from_tokens', "order must be 'first' or 'frequency', got %s", tostring(order))
  end
  local max_size, min_count = opts.max_size or math.huge, opts.min_count or 1
  if max_size ~= math.huge and (math.type(max_size) ~= 'integer' or max_size < 1) then
    fail('from_tokens', 'max_size must be a positive integer, got %s', tostring(max_size))
  end
  local count, seen = {}, {}
  local function note(x)
    if type(x) ~= 'string' or x == '' then
      fail('from_tokens', 'tokens must be non-empty strings, got %s', tostring(x))
    end
    if not count[x] then count[x], seen[#seen + 1] = 0, x end
    count[x] = count[x] + 1
  end
  local function walk(t, depth)
    if depth > 64 then fail('from_tokens', 'lists are nested more than 64 deep (a cycle?)') end
    for _, x in ipairs(t) do
      if type(x) == 'table' then walk(x, depth + 1) else note(x) end
    end
  end
  if type(lists) == 'function' then         -- an iterator of tokens (from_text)
    for x in lists do note(x) end
  else
    walk(lists, 1)
  end
  if order == 'frequency' then
    local rank = {}
    for i, w in ipairs(seen) do rank[w] = i end
    table.sort(seen, function(a, b)
      if count[a] ~= count[b] then return count[a] > count[b] end
      return rank[a] < rank[b]
    end)
  end
  local tokens, have = {}, {}
  local function add(w)
    if not have[w] and #tokens < max_size then tokens[#tokens + 1], have[w] = w, true end
  end
  for _, w in ipairs(opts.specials or {}) do add(w) end
  if opts.unk then add(opts.unk) end
  for _, w in ipairs(seen) do
    if count[w] >= min_count then add(w) end
  end
  return Vocab.new(tokens, { level = opts.level or 'word', unk = opts.unk })
end

-- Vocab.from_text(text [, opts]) -> the Vocab of a string's characters
-- (opts.level = 'char', the default) or whitespace-separated words
-- (level = 'word'); the other opts as from_tokens.
function Vocab.from_text(text, opts)
  if type(text) ~= 'string' then fail('from_text', 'text must be a string, got %s', type(text)) end
  opts = opts or {}
  local level = check_level('from_text', opts.level or 'char')
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.level = level
  return Vocab.from_tokens(text:gmatch(level == 'char' and '.' or '%S+'), o)
end

-- size() -> the number of tokens (also #v)
function Vocab:size() return #self end

-- id(token) -> its id; unk's id for a token the vocabulary lacks, or nil
-- when it has no unk.
function Vocab:id(token)
  return self.index[token] or (self.unk and self.index[self.unk])
end

-- token(id) -> the token of an id, or nil outside 1..size
function Vocab:token(id) return rawget(self, id) end

-- contains(token) -> whether the token has an id of its own
function Vocab:contains(token) return self.index[token] ~= nil end

-- add(token) -> its id, a new one at the end when the vocabulary lacks it
-- (for building a vocabulary while reading a corpus once).
function Vocab:add(token)
  local id = self.index[token]
  if id then return id end
  if type(token) ~= 'string' or token == '' then
    fail('add', 'token must be a non-empty string, got %s', tostring(token))
  end
  id = #self + 1
  self[id], self.index[token] = token, id
  return id
end

-- tokenize(text) -> the list of tokens encode reads in a string: its
-- characters, or its words at level 'word'.
function Vocab:tokenize(text)
  if type(text) ~= 'string' then fail('tokenize', 'text must be a string, got %s', type(text)) end
  return split(text, self.level)
end

-- ids(x) -> a Lua list of the ids of x, a string (split by tokenize) or a
-- list of tokens. A token the vocabulary lacks reads as unk; without an
-- unk it is an error that names it.
function Vocab:ids(x)
  local tokens = type(x) == 'string' and split(x, self.level) or x
  if type(tokens) ~= 'table' then fail('encode', 'x must be a string or a list of tokens, got %s', type(x)) end
  local out, unk = {}, self.unk and self.index[self.unk]
  for i, t in ipairs(tokens) do
    local id = self.index[t] or unk
    if not id then
      local what, shown = self.level == 'char' and 'character' or 'word', ('%q'):format(tostring(t))
      if type(t) == 'string' and t:find('[\128-\255]') then
        shown = ('%s (byte 0x%02X: a character outside ASCII)'):format(shown, t:byte(1))
      end
      local known = ''
      if #self <= 100 then
        local list = {}
        for j = 1, #self do list[j] = self[j] end
        known = (': it knows %q'):format(table.concat(list, self.level == 'char' and '' or ' '))
      end
      fail('encode', 'the %s %s (at %d) is not in the vocabulary of %d tokens, which has no unknown token%s',
        what, shown, i, #self, known)
    end
    out[i] = id
  end
  return out
end

-- encode(x) -> a 1-D i32 tensor of the ids of x (a string or a list of
-- tokens), as ids(x).
function Vocab:encode(x)
  return usagi.tensor(self:ids(x), 'i32')
end

-- decode(ids [, {sep =, stop =}]) -> the string of a list or 1-D tensor of
-- ids: the tokens joined by sep ('' for characters, ' ' for words); an id
-- outside the vocabulary shows as '?'. Decoding ends before the first stop
-- token when one is given.
function Vocab:decode(ids, opts)
  local t = usagi.is_tensor(ids) and ids:totable() or ids
  if type(t) ~= 'table' then fail('decode', 'ids must be a list or a 1-D tensor of ids, got %s', type(ids)) end
  opts = opts or {}
  local sep = opts.sep or (self.level == 'char' and '' or ' ')
  local out = {}
  for _, id in ipairs(t) do
    if type(id) == 'table' then fail('decode', 'ids must be 1-D, got a nested list') end
    local tok = rawget(self, math.tointeger(id) or 0) or '?'
    if opts.stop and tok == opts.stop then break end
    out[#out + 1] = tok
  end
  return table.concat(out, sep)
end

function Vocab:__len() return rawlen(self) end

function Vocab:__tostring()
  local first = {}
  for i = 1, math.min(#self, 8) do first[i] = ('%q'):format(self[i]) end
  return ('usagi.data.Vocab(%d %ss: %s%s)'):format(#self, self.level, table.concat(first, ', '),
    #self > 8 and ', ...' or '')
end

-- ==== In HDF5 ============================================================

-- write(f, path): the vocabulary as the group path of the open usagi.h5
-- file f: /tokens, a 1-D dataset of strings in id order (h5py reads it as
-- such), and attributes class = 'usagi.data.Vocab', level and unk.
function Vocab:write(f, path)
  if type(path) ~= 'string' then fail('write', 'path must be a string, got %s', type(path)) end
  f:group(path)
  f:write_strings(path .. '/tokens', { table.unpack(self) })
  f:attr(path, 'class', CLASS)
  f:attr(path, 'level', self.level)
  if self.unk then f:attr(path, 'unk', self.unk) end
end

-- Vocab.is_group(f, path) -> whether the group path of f holds a Vocab.
function Vocab.is_group(f, path)
  return f:kind(path) == 'group' and f:attrs(path).class == CLASS
end

-- Vocab.read(f, path) -> the Vocab that write put at path of f; checks
-- what it reads (a list of distinct strings), so a damaged file is an
-- error, not a wrong vocabulary.
function Vocab.read(f, path)
  local a = f:attrs(path)
  if a.class ~= CLASS or not f:exists(path .. '/tokens') then
    fail('read', '%s of %s is not a Vocab (no class = %q, or no tokens)', path, tostring(f), CLASS)
  end
  local ok, v = pcall(Vocab.new, f:read_strings(path .. '/tokens'), { level = a.level or 'word', unk = a.unk })
  if not ok then fail('read', '%s: %s', path, (tostring(v):gsub('^Vocab%.new: ', ''))) end
  return v
end

-- save(path): the vocabulary alone in an HDF5 file, as the group '/vocab'.
function Vocab:save(path)
  if type(path) ~= 'string' then fail('save', 'path must be a string, got %s', type(path)) end
  local f <close> = usagi.h5.open(path, 'w')
  self:write(f, '/vocab')
end

-- Vocab.load(path) -> the Vocab that save wrote.
function Vocab.load(path)
  if type(path) ~= 'string' then fail('load', 'path must be a string, got %s', type(path)) end
  local f <close> = usagi.h5.open(path, 'r')
  return Vocab.read(f, '/vocab')
end

Vocab.is_vocab = is_vocab

return Vocab
