-- attention.lua -- the Lua face of the attention plugin: masks, the
-- functional attend with PyTorch-style options, nn.Attention (Luong's dot
-- and general, scaled dot-product, Bahdanau's additive) and
-- nn.MultiheadAttention (PyTorch's semantics and parameter names). Receives
-- the module table M that the C side made (M.attend, the fused op:
-- scores, masked softmax over the keys, weighted sum of the values, and
-- the backward of all three in C).
--
--   local nn = require 'usagi.nn'
--   local A = require 'usagi.attention'
--   local att = nn.Attention('general', 256, 256)
--   local context, weights = att(dec_h, enc_out, nil, { lengths = src_len })
--   local mha = nn.MultiheadAttention(512, 8)
--   local out, w = mha(x, x, x, { key_padding_mask = pad, causal = true })
local M = ...
local usagi = require 'usagi'
local nn = require 'usagi.nn'

local NEG_INF = -math.huge

local function fail(fn, msg, ...) error(fn .. ': ' .. msg:format(...), 3) end

local function is_float(t) return t:dtype() == 'f32' or t:dtype() == 'f64' end

-- A (B, Lk) table of 0/1 lists or tensor, nonzero = masked -> additive (B, 1, Lk)
local function padding_part(fn, kpm, B, Lk, dtype)
  if type(kpm) == 'table' and not usagi.is_tensor(kpm) then kpm = usagi.tensor(kpm):int() end
  if not usagi.is_tensor(kpm) or kpm:dim() ~= 2 or kpm:size(1) ~= B or kpm:size(2) ~= Lk then
    fail(fn, 'key_padding_mask must be (B, Lk) = (%d, %d), nonzero where a key is padding, got %s',
      B, Lk, usagi.is_tensor(kpm) and tostring(kpm:size()) or type(kpm))
  end
  return usagi.where(kpm:ne(0), usagi.full({ B, Lk }, NEG_INF, { dtype = dtype }),
    usagi.zeros(B, Lk, { dtype = dtype })):unsqueeze(2)
end

-- lengths (B) (a list or an i32 tensor, 1..Lk) -> additive (B, 1, Lk): keys
-- past each length masked
local function lengths_part(fn, lengths, B, Lk, dtype)
  local len = usagi.is_tensor(lengths) and lengths:tolist() or lengths
  if type(len) ~= 'table' or #len ~= B then
    fail(fn, 'lengths must give one length per sequence (%d), got %s', B,
      type(len) == 'table' and #len .. ' values' or type(len))
  end
  local rows = {}
  for b = 1, B do
    local n = len[b]
    if math.type(n) ~= 'integer' and not (type(n) == 'number' and n % 1 == 0) or n < 1 or n > Lk then
      fail(fn, 'lengths[%d] must be an integer in [1, %d], got %s', b, Lk, tostring(n))
    end
    local row = {}
    for j = 1, Lk do row[j] = j <= n and 0 or NEG_INF end
    rows[b] = row
  end
  return usagi.tensor(rows, { dtype = dtype }):unsqueeze(2)
end

-- attn_mask (Lq, Lk) or (Bm, Lq, Lk): a float mask is added to the scores,
-- an integer one masks where nonzero (PyTorch's bool mask)
local function attn_part(fn, m, Lq, Lk, dtype)
  if not usagi.is_tensor(m) or (m:dim() ~= 2 and m:dim() ~= 3) or m:size(-2) ~= Lq or m:size(-1) ~= Lk then
    fail(fn, 'attn_mask must be (Lq, Lk) = (%d, %d) or (batch, Lq, Lk), got %s', Lq, Lk,
      usagi.is_tensor(m) and tostring(m:size()) or type(m))
  end
  if not is_float(m) then
    m = usagi.where(m:ne(0), usagi.full(m:size(), NEG_INF, { dtype = dtype }), usagi.zeros(m:size(), { dtype = dtype }))
  elseif m:dtype() ~= dtype then
    m = m:to(dtype)
  end
  return m:dim() == 2 and m:unsqueeze(1) or m
end

-- M.mask(fn, opts, B, Lq, Lk, dtype [, heads]) -> the additive (Bm, 1 or
-- Lq, Lk) mask of opts.key_padding_mask, opts.lengths and opts.attn_mask
-- (nil when there is none). With heads, the attention batch is (B * heads)
-- ordered as PyTorch's multi-head attention orders it (b * heads + h).
function M.mask(fn, opts, B, Lq, Lk, dtype, heads)
  local key
  if opts.key_padding_mask ~= nil then key = padding_part(fn, opts.key_padding_mask, B, Lk, dtype) end
  if opts.lengths ~= nil then
    local l = lengths_part(fn, opts.lengths, B, Lk, dtype)
    key = key and key + l or l
  end
  if opts.attn_mask == nil then return key end
  local am = attn_part(fn, opts.attn_mask, Lq, Lk, dtype)
  if not key then return am:contiguous() end
  local batch = B * (heads or 1)
  if am:size(1) ~= 1 and am:size(1) ~= batch then
    fail(fn, 'a 3-D attn_mask must have %d in its first dim, got %d', batch, am:size(1))
  end
  if heads and heads > 1 and am:size(1) == batch then      -- per (b, h): widen the key part
    key = key:unsqueeze(2):expand(B, heads, 1, Lk):reshape(batch, 1, Lk)
  end
  return (key + am):contiguous()
end

local KNOWN_ATTEND = { scale = true, causal = true, key_padding_mask = true, lengths = true,
                       attn_mask = true, u = true }

-- M.scaled_dot_product(q, k, v [, opts]) -> context, weights: batch-first
-- q (B, Lq, D), k (B, Lk, D), v (B, Lk, Dv); scale 1/sqrt(D) unless given;
-- opts as M.attend's plus key_padding_mask, lengths, attn_mask.
function M.scaled_dot_product(q, k, v, opts)
  opts = opts or {}
  local o = {}
  for key, val in pairs(opts) do o[key] = val end
  if o.scale == nil then o.scale = 1 / math.sqrt(q:size(-1)) end
  return M.attention(q, k, v, o)
end

-- M.attention(q, k, v [, opts]) -> context, weights: the fused op with
-- masks given the PyTorch way (see M.mask) and causal = true.
function M.attention(q, k, v, opts)
  opts = opts or {}
  for key in pairs(opts) do
    if not KNOWN_ATTEND[key] then fail('attention', "unknown option '%s'", tostring(key)) end
  end
  if not usagi.is_tensor(q) or q:dim() ~= 3 then
    fail('attention', 'q must be a 3-D tensor (B, Lq, D), got %s', usagi.is_tensor(q) and tostring(q:size()) or type(q))
  end
  if not usagi.is_tensor(k) or k:dim() ~= 3 then
    fail('attention', 'k must be a 3-D tensor (B, Lk, D), got %s', usagi.is_tensor(k) and tostring(k:size()) or type(k))
  end
  local mask = M.mask('attention', opts, q:size(1), q:size(2), k:size(2), q:dtype())
  return M.attend(q, k, v, { scale = opts.scale, causal = opts.causal, u = opts.u, mask = mask })
end

-- ==== nn.Attention =======================================================

local Attention = nn.Module:extend 'Attention'

local KINDS = { dot = true, scaled_dot = true, general = true, additive = true }
local ALIASES = { luong_dot = 'dot', luong_general = 'general', bahdanau = 'additive', concat = 'additive' }

-- nn.Attention(kind, query_size, key_size [, opts]): kinds
--   'dot'         e = q . k                        (Luong; query_size = key_size)
--   'scaled_dot'  e = q . k / sqrt(query_size)     (Vaswani et al.)
--   'general'     e = q . W k, W = Linear(key_size, query_size, no bias) (Luong)
--   'additive'    e = Va tanh(Wa q + Ua k)  (Bahdanau; Wa, Ua, Va Linear
--                 layers of opts.attention_size units, query_size by default)
-- opts.dtype 'f32' (default) or 'f64'. Parameters under the names PyTorch's
-- seq2seq tutorial uses (W.weight; Wa.*, Ua.*, Va.*), so its weights load.
function Attention:__init(kind, query_size, key_size, opts)
  nn.Module.__init(self)
  opts = opts or {}
  kind = ALIASES[kind] or kind
  if not KINDS[kind] then
    fail('Attention', "kind must be 'dot', 'scaled_dot', 'general' or 'additive', got %s", tostring(kind))
  end
  for _, p in ipairs { { 'query_size', query_size }, { 'key_size', key_size or query_size } } do
    if math.type(p[2]) ~= 'integer' or p[2] < 1 then
      fail('Attention', '%s must be a positive integer, got %s', p[1], tostring(p[2]))
    end
  end
  key_size = key_size or query_size
  if (kind == 'dot' or kind == 'scaled_dot') and key_size ~= query_size then
    fail('Attention', "a '%s' score needs query_size = key_size, got %d and %d", kind, query_size, key_size)
  end
  self.kind, self.query_size, self.key_size = kind, query_size, key_size
  local typed = { dtype = opts.dtype }
  if kind == 'general' then
    self.W = nn.Linear(key_size, query_size, { bias = false, dtype = opts.dtype })
  elseif kind == 'additive' then
    local A = opts.attention_size or query_size
    self.attention_size = A
    self.Wa = nn.Linear(query_size, A, typed)
    self.Ua = nn.Linear(key_size, A, typed)
    self.Va = nn.Linear(A, 1, typed)
  end
end

-- forward(query, keys [, values [, opts]]) -> context, weights
-- Batch first: query (B, Lq, query_size) or (B, query_size) for one decoder
-- step (then context (B, Dv) and weights (B, Lk)), keys (B, Lk, key_size),
-- values (B, Lk, Dv) (the keys when nil). opts: lengths (B) of the keys,
-- key_padding_mask (B, Lk) (nonzero = padding), attn_mask, causal.
function Attention:forward(query, keys, values, opts)
  values = values or keys
  opts = opts or {}
  local step = usagi.is_tensor(query) and query:dim() == 2
  if step then query = query:unsqueeze(2) end
  local q, k, o = query, keys, {}
  for key, val in pairs(opts) do o[key] = val end
  if self.kind == 'scaled_dot' then
    o.scale = 1 / math.sqrt(self.query_size)
  elseif self.kind == 'general' then
    k = self.W(keys)
  elseif self.kind == 'additive' then
    q, k = self.Wa(query), self.Ua(keys)
    o.u = self.Va.weight:reshape(self.attention_size)
  end
  local c, w = M.attention(q, k, values, o)
  if step then return c:squeeze(2), w:squeeze(2) end
  return c, w
end

function Attention:extra_repr()
  local s = ("'%s', %d, %d"):format(self.kind, self.query_size, self.key_size)
  if self.attention_size then s = s .. ', attention_size=' .. self.attention_size end
  return s
end

-- ==== nn.MultiheadAttention =============================================

local MHA = nn.Module:extend 'MultiheadAttention'

local KNOWN_MHA = { bias = true, kdim = true, vdim = true, batch_first = true, dropout = true, dtype = true }

-- nn.MultiheadAttention(embed_dim, num_heads [, opts]) as PyTorch's:
-- opts bias (true), kdim, vdim (embed_dim), batch_first (false: (L, N, E)),
-- dropout (0; on the attention weights, when training), dtype. Parameters
-- in_proj_weight (3E, E) and in_proj_bias (3E) -- or q_proj_weight,
-- k_proj_weight, v_proj_weight when kdim or vdim differ -- and out_proj
-- (Linear(E, E)); initialised as PyTorch does (Xavier-uniform projections,
-- zero biases), so a state_dict loads by name.
function MHA:__init(embed_dim, num_heads, opts)
  nn.Module.__init(self)
  opts = opts or {}
  for key in pairs(opts) do
    if not KNOWN_MHA[key] then fail('MultiheadAttention', "unknown option '%s'", tostring(key)) end
  end
  if math.type(embed_dim) ~= 'integer' or embed_dim < 1 then
    fail('MultiheadAttention', 'embed_dim must be a positive integer, got %s', tostring(embed_dim))
  end
  if math.type(num_heads) ~= 'integer' or num_heads < 1 or embed_dim % num_heads ~= 0 then
    fail('MultiheadAttention', 'num_heads must be a positive integer dividing embed_dim = %d, got %s',
      embed_dim, tostring(num_heads))
  end
  local E, dt = embed_dim, opts.dtype
  self.embed_dim, self.num_heads, self.head_dim = E, num_heads, E // num_heads
  self.kdim, self.vdim = opts.kdim or E, opts.vdim or E
  self.batch_first, self.dropout = opts.batch_first and true or false, opts.dropout or 0
  local function xavier(rows, cols, fan_in, fan_out)
    local a = math.sqrt(6 / (fan_in + fan_out))
    return usagi.rand(rows, cols, { lo = -a, hi = a, dtype = dt })
  end
  self.same_dims = self.kdim == E and self.vdim == E
  if self.same_dims then
    self:register_parameter('in_proj_weight', xavier(3 * E, E, E, 3 * E))
  else
    self:register_parameter('q_proj_weight', xavier(E, E, E, E))
    self:register_parameter('k_proj_weight', xavier(E, self.kdim, self.kdim, E))
    self:register_parameter('v_proj_weight', xavier(E, self.vdim, self.vdim, E))
  end
  if opts.bias ~= false then self:register_parameter('in_proj_bias', usagi.zeros(3 * E, { dtype = dt })) end
  self.out_proj = nn.Linear(E, E, { bias = opts.bias ~= false, dtype = dt })
  if self.out_proj.bias then usagi.no_grad(function() self.out_proj.bias:zero_() end) end
end

-- The weight and bias of projection i (1 q, 2 k, 3 v)
function MHA:projection(i)
  local E = self.embed_dim
  local w = self.same_dims and self.in_proj_weight:narrow(1, (i - 1) * E + 1, E)
         or self[({ 'q_proj_weight', 'k_proj_weight', 'v_proj_weight' })[i]]
  local b = self.in_proj_bias and self.in_proj_bias:narrow(1, (i - 1) * E + 1, E)
  return w, b
end

local KNOWN_CALL = { key_padding_mask = true, attn_mask = true, need_weights = true,
                     average_attn_weights = true, causal = true, is_causal = true }

-- forward(query, key, value [, opts]) -> attn_output, attn_weights
-- query (L, N, E), key (S, N, kdim), value (S, N, vdim) ((N, L, E) ... with
-- batch_first). opts: key_padding_mask (N, S) nonzero = padding; attn_mask
-- (L, S) or (N * num_heads, L, S), float (added) or integer (nonzero =
-- masked); causal (or is_causal); need_weights (true); average_attn_weights
-- (true: weights (N, L, S), else (N, num_heads, L, S)).
function MHA:forward(query, key, value, opts)
  opts = opts or {}
  for k in pairs(opts) do
    if not KNOWN_CALL[k] then fail('MultiheadAttention', "unknown option '%s'", tostring(k)) end
  end
  key, value = key or query, value or key or query
  for _, a in ipairs { { 'query', query }, { 'key', key }, { 'value', value } } do
    if not usagi.is_tensor(a[2]) or a[2]:dim() ~= 3 then
      fail('MultiheadAttention', '%s must be a 3-D tensor (%s), got %s', a[1],
        self.batch_first and 'N, L, E' or 'L, N, E', usagi.is_tensor(a[2]) and tostring(a[2]:size()) or type(a[2]))
    end
  end
  if self.batch_first then
    query, key, value = query:transpose(1, 2), key:transpose(1, 2), value:transpose(1, 2)
  end
  local L, N, E, S, H, hd = query:size(1), query:size(2), self.embed_dim, key:size(1), self.num_heads, self.head_dim
  if query:size(3) ~= E or key:size(3) ~= self.kdim or value:size(3) ~= self.vdim or
     key:size(2) ~= N or value:size(2) ~= N or value:size(1) ~= S then
    fail('MultiheadAttention', 'expected query (L, N, %d), key (S, N, %d), value (S, N, %d), got %s, %s, %s',
      E, self.kdim, self.vdim, tostring(query:size()), tostring(key:size()), tostring(value:size()))
  end
  -- (len, N, E) -> (N * H, len, hd), batch b * H + h as PyTorch orders it
  local function heads(x, i, len)
    local w, b = self:projection(i)
    return usagi.linear(x, w, b):reshape(len, N * H, hd):transpose(1, 2):contiguous()
  end
  local q, k, v = heads(query, 1, L), heads(key, 2, S), heads(value, 3, S)
  local mask = M.mask('MultiheadAttention', { key_padding_mask = opts.key_padding_mask,
    attn_mask = opts.attn_mask }, N, L, S, q:dtype(), H)
  local c, w = M.attend(q, k, v, { scale = 1 / math.sqrt(hd), mask = mask,
    causal = opts.causal or opts.is_causal })
  if self.training and self.dropout > 0 then              -- dropout on the weights, then w v again
    w = usagi.dropout(w, self.dropout, true)
    c = usagi.bmm(w, v)
  end
  local out = self.out_proj(c:transpose(1, 2):reshape(L, N, E))
  if self.batch_first then out = out:transpose(1, 2) end
  if opts.need_weights == false then return out, nil end
  w = w:reshape(N, H, L, S)
  if opts.average_attn_weights ~= false then w = w:mean(2) end
  return out, w
end

function MHA:extra_repr()
  local s = ('%d, %d'):format(self.embed_dim, self.num_heads)
  if not self.same_dims then s = s .. (', kdim=%d, vdim=%d'):format(self.kdim, self.vdim) end
  if self.batch_first then s = s .. ', batch_first=true' end
  if self.dropout ~= 0 then s = s .. ', dropout=' .. self.dropout end
  return s
end

nn.Attention, nn.MultiheadAttention = Attention, MHA
M.Attention, M.MultiheadAttention = Attention, MHA

return M
