-- usagi.kernel_json -- the strict JSON that the Jupyter kernel reads and
-- writes (RFC 8259): decode(text) gives Lua values or nil and a message
-- that says where the text went wrong; encode(v) gives text. JSON null is
-- J.null (a sentinel, so that a key set to null stays in its table);
-- objects and arrays are told apart by J.object / J.array marks, and an
-- unmarked table is an array when it has a 1..n sequence and no other key.
-- Nothing here knows the protocol: scripts/usagi/kernel.lua does.
local J = {}

local object_mt = { __name = 'json.object' }
local array_mt = { __name = 'json.array' }

-- J.null: the value of JSON null, in decoded tables and for encode.
J.null = setmetatable({}, { __name = 'json.null', __tostring = function() return 'null' end })

-- J.object(t) / J.array(t): t (or a new table) marked to encode as an object / array.
function J.object(t) return setmetatable(t or {}, object_mt) end
function J.array(t) return setmetatable(t or {}, array_mt) end

-- ==== Decoding ==============================================================

local MAX_DEPTH = 200        -- nesting deeper than this is refused, not recursed into

local ESCAPES = { ['"'] = '"', ['\\'] = '\\', ['/'] = '/', b = '\b', f = '\f', n = '\n',
  r = '\r', t = '\t' }

local function fail(s, i, what)
  local line = select(2, s:sub(1, i):gsub('\n', '')) + 1
  error({ json = ('%s at byte %d (line %d)'):format(what, i, line) }, 0)
end

local decode_value

local function skip(s, i)
  return s:find('[^ \t\r\n]', i) or #s + 1
end

local function decode_string(s, i)
  local out, j = {}, i + 1
  while true do
    local k = s:find('["\\%z\1-\31]', j)
    if not k then fail(s, i, 'unterminated string') end
    out[#out + 1] = s:sub(j, k - 1)
    local c = s:sub(k, k)
    if c == '"' then
      local str = table.concat(out)
      if not utf8.len(str) then fail(s, i, 'string is not valid UTF-8') end
      return str, k + 1
    elseif c == '\\' then
      local e = s:sub(k + 1, k + 1)
      if ESCAPES[e] then
        out[#out + 1], j = ESCAPES[e], k + 2
      elseif e == 'u' then
        local hex = s:match('^%x%x%x%x', k + 2)
        if not hex then fail(s, k, 'bad \\u escape') end
        local cp = tonumber(hex, 16)
        j = k + 6
        if cp >= 0xD800 and cp <= 0xDBFF then                -- a surrogate pair
          local lo = s:match('^\\u(%x%x%x%x)', j)
          lo = lo and tonumber(lo, 16)
          if not lo or lo < 0xDC00 or lo > 0xDFFF then fail(s, k, 'lone surrogate in \\u escape') end
          cp, j = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00), j + 6
        elseif cp >= 0xDC00 and cp <= 0xDFFF then
          fail(s, k, 'lone surrogate in \\u escape')
        end
        out[#out + 1] = utf8.char(cp)
      else
        fail(s, k, 'bad escape')
      end
    else
      fail(s, k, 'control character in string')
    end
  end
end

-- -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][-+]?[0-9]+)?, read part by part.
local function decode_number(s, i)
  local j = i
  if s:sub(j, j) == '-' then j = j + 1 end
  local int = s:match('^0', j) or s:match('^[1-9]%d*', j)
  if not int then fail(s, i, 'bad number') end
  j = j + #int
  local frac = s:match('^%.%d+', j)
  if s:sub(j, j) == '.' and not frac then fail(s, i, 'bad number') end
  j = j + (frac and #frac or 0)
  local exp = s:match('^[eE][-+]?%d+', j)
  if s:match('^[eE]', j) and not exp then fail(s, i, 'bad number') end
  j = j + (exp and #exp or 0)
  local text = s:sub(i, j - 1)
  local v = tonumber(text)
  if not frac and not exp then v = math.tointeger(v) or v end
  return v, j
end

function decode_value(s, i, depth)
  i = skip(s, i)
  local c = s:sub(i, i)
  if c == '"' then return decode_string(s, i) end
  if c == '{' or c == '[' then
    if depth >= MAX_DEPTH then fail(s, i, 'nested too deep') end
    local t, close = c == '{' and J.object() or J.array(), c == '{' and '}' or ']'
    i = skip(s, i + 1)
    if s:sub(i, i) == close then return t, i + 1 end
    while true do
      if c == '{' then
        if s:sub(i, i) ~= '"' then fail(s, i, 'object key must be a string') end
        local k
        k, i = decode_string(s, i)
        i = skip(s, i)
        if s:sub(i, i) ~= ':' then fail(s, i, "':' expected") end
        t[k], i = decode_value(s, i + 1, depth + 1)
      else
        t[#t + 1], i = decode_value(s, i, depth + 1)
      end
      i = skip(s, i)
      local d = s:sub(i, i)
      if d == close then return t, i + 1 end
      if d ~= ',' then fail(s, i, "',' or '" .. close .. "' expected") end
      i = skip(s, i + 1)
    end
  end
  if s:find('^true', i) then return true, i + 4 end
  if s:find('^false', i) then return false, i + 5 end
  if s:find('^null', i) then return J.null, i + 4 end
  if c:match('[-%d]') then return decode_number(s, i) end
  if c == '' then fail(s, i, 'unexpected end of text') end
  fail(s, i, 'unexpected character')
end

-- J.decode(text) -> value | nil, message: the whole text must be one value.
function J.decode(text)
  if type(text) ~= 'string' then return nil, 'json.decode: text must be a string, got ' .. type(text) end
  local ok, v, i = pcall(decode_value, text, 1, 0)
  if not ok then
    if type(v) == 'table' and v.json then return nil, 'json.decode: ' .. v.json end
    error(v, 0)
  end
  if skip(text, i) <= #text then return nil, ('json.decode: text after the value at byte %d'):format(i) end
  return v
end

-- ==== Encoding ==============================================================

local function valid_utf8(s)
  if utf8.len(s) then return s end
  -- replace each byte that starts no valid sequence with U+FFFD
  local out, i = {}, 1
  while i <= #s do
    local n = utf8.len(s, i, i)   -- nil when the sequence at i is broken
    local len = n and #utf8.char(utf8.codepoint(s, i)) or nil
    if len then out[#out + 1] = s:sub(i, i + len - 1); i = i + len
    else out[#out + 1] = '\u{FFFD}'; i = i + 1 end
  end
  return table.concat(out)
end

local function encode_string(s)
  s = valid_utf8(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    local e = ({ ['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' })[c]
    return e or ('\\u%04x'):format(c:byte())
  end) .. '"'
end

local function is_array(t)
  local mt = getmetatable(t)
  if mt == array_mt then return true end
  if mt == object_mt then return false end
  local n = #t
  if n == 0 then return false end
  for k in pairs(t) do
    if math.type(k) ~= 'integer' or k < 1 or k > n then return false end
  end
  return true
end

local function encode(v, out, seen)
  local ty = type(v)
  if v == J.null or v == nil then out[#out + 1] = 'null'
  elseif ty == 'boolean' then out[#out + 1] = tostring(v)
  elseif ty == 'string' then out[#out + 1] = encode_string(v)
  elseif ty == 'number' then
    if math.type(v) == 'integer' then out[#out + 1] = ('%d'):format(v)
    elseif v ~= v or v == math.huge or v == -math.huge then out[#out + 1] = 'null'
    else out[#out + 1] = ('%.17g'):format(v) end
  elseif ty == 'table' then
    if seen[v] then error('json.encode: a table contains itself', 0) end
    seen[v] = true
    if is_array(v) then
      out[#out + 1] = '['
      for i = 1, #v do
        if i > 1 then out[#out + 1] = ',' end
        encode(v[i], out, seen)
      end
      out[#out + 1] = ']'
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= 'string' then error('json.encode: object keys must be strings, got ' .. type(k), 0) end
        keys[#keys + 1] = k
      end
      table.sort(keys)
      out[#out + 1] = '{'
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = ',' end
        out[#out + 1] = encode_string(k)
        out[#out + 1] = ':'
        encode(v[k], out, seen)
      end
      out[#out + 1] = '}'
    end
    seen[v] = nil
  else
    error('json.encode: cannot encode a ' .. ty, 0)
  end
end

-- J.encode(v) -> text. NaN and infinities become null (JSON has neither);
-- bytes that are not UTF-8 become U+FFFD.
function J.encode(v)
  local out = {}
  encode(v, out, {})
  return table.concat(out)
end

return J
