-- usagi.kernel_display -- what a value looks like in a notebook: the MIME
-- bundle (text/plain as the REPL prints it, plus text/html for tensors and
-- runs, image/png for canvases) that `usagi kernel` sends for a cell's
-- value and for display(x). It also hooks usagi.plot so that every
-- picture it writes (lines, scatter, grid, heatmap) is shown inline: the
-- file usagi.plot writes is read back and sent, so there is no second
-- renderer; without a path, the picture goes to a temporary file first.
-- Nothing here talks to sockets: kernel.lua passes a `publish` function.
local usagi = require 'usagi'
local R = require 'usagi.repl'

local D = {}

-- ==== Base64 (RFC 4648), for images inside JSON ===========================

local B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
local b64 = {}
for i = 0, 63 do b64[i] = B64:sub(i + 1, i + 1) end

-- D.base64(bytes) -> text
function D.base64(s)
  local out, n = {}, #s
  for i = 1, n - 2, 3 do
    local a, b, c = s:byte(i, i + 2)
    local v = (a << 16) | (b << 8) | c
    out[#out + 1] = b64[v >> 18] .. b64[(v >> 12) & 63] .. b64[(v >> 6) & 63] .. b64[v & 63]
  end
  local rest = n % 3
  if rest == 1 then
    local v = s:byte(n) << 16
    out[#out + 1] = b64[v >> 18] .. b64[(v >> 12) & 63] .. '=='
  elseif rest == 2 then
    local a, b = s:byte(n - 1, n)
    local v = (a << 16) | (b << 8)
    out[#out + 1] = b64[v >> 18] .. b64[(v >> 12) & 63] .. b64[(v >> 6) & 63] .. '='
  end
  return table.concat(out)
end

-- ==== HTML ===================================================================

local function esc(s)
  return (tostring(s):gsub('[&<>"]', { ['&'] = '&amp;', ['<'] = '&lt;', ['>'] = '&gt;', ['"'] = '&quot;' }))
end

local EDGE = 5        -- rows / columns kept at each end of a large tensor
local LARGE = 20      -- more rows or columns than this are summarized

local function cell(x)
  if math.type(x) == 'integer' then return tostring(x) end
  return ('%.4g'):format(x)
end

-- The indices shown along a dimension of size n: all, or EDGE at each end
-- with false for the gap.
local function shown(n)
  local out = {}
  if n <= LARGE then for i = 1, n do out[i] = i end return out end
  for i = 1, EDGE do out[#out + 1] = i end
  out[#out + 1] = false
  for i = n - EDGE + 1, n do out[#out + 1] = i end
  return out
end

-- A 0-, 1- or 2-D tensor as an HTML table under a caption with its dtype
-- and shape; higher ranks show their text in <pre> under the same caption.
local function tensor_html(t)
  local footer = tostring(t):match('[^\n]*$')
  local caption = '<div style="font-family:monospace;color:#555">' .. esc(footer) .. '</div>'
  local d = t:dim()
  if d > 2 or t:numel() == 0 then
    return caption .. '<pre>' .. esc(R.format(t)) .. '</pre>'
  end
  local rows, cols
  if d == 0 then rows, cols = { 1 }, { 1 }
  elseif d == 1 then rows, cols = { 1 }, shown(t:size(1))
  else rows, cols = shown(t:size(1)), shown(t:size(2)) end
  local function at(i, j)
    local x = d == 0 and t:item() or d == 1 and t[j] or t[i][j]
    return usagi.is_tensor(x) and x:item() or x
  end
  local h = { caption, '<table style="font-family:monospace"><tbody>' }
  for _, i in ipairs(rows) do
    h[#h + 1] = '<tr>'
    for _, j in ipairs(cols) do
      h[#h + 1] = (i and j) and ('<td>' .. cell(at(i, j)) .. '</td>') or '<td>&#8943;</td>'
    end
    h[#h + 1] = '</tr>'
  end
  h[#h + 1] = '</tbody></table>'
  return table.concat(h)
end

-- A run (usagi.run's Run) as a table of its metrics: how many values
-- each has, and the last one.
local function is_run(v)
  return type(v) == 'table' and type(rawget(v, 'metrics')) == 'table' and type(v.log) == 'function'
end

local function run_html(run)
  local keys = {}
  for k in pairs(run.metrics) do keys[#keys + 1] = k end
  table.sort(keys)
  local h = { '<table><thead><tr><th>metric</th><th>values</th><th>last</th></tr></thead><tbody>' }
  for _, k in ipairs(keys) do
    local vals = run.metrics[k].values or {}
    local last = vals[#vals]
    h[#h + 1] = ('<tr><td>%s</td><td>%d</td><td>%s</td></tr>'):format(esc(k), #vals,
      type(last) == 'number' and cell(last) or esc(tostring(last)))
  end
  h[#h + 1] = '</tbody></table>'
  return table.concat(h)
end

local function is_canvas(v)
  local mt = getmetatable(v)
  return type(mt) == 'table' and mt.__name == 'usagi.image.Canvas'
end

-- D.bundle(v) -> data, metadata: the MIME bundle of one value.
function D.bundle(v)
  local data = { ['text/plain'] = R.format(v) }
  if usagi.is_tensor(v) then
    local ok, html = pcall(tensor_html, v)
    if ok then data['text/html'] = html end
  elseif is_run(v) then
    data['text/html'] = run_html(v)
  elseif is_canvas(v) then
    data['image/png'] = D.base64(v:encode_png())
  end
  return data, {}
end

-- D.bundle_of_values(n, ...) -> data, metadata: a cell's results; several
-- show as the REPL shows them, as text.
function D.bundle_of_values(n, ...)
  if n == 1 then return D.bundle((...)) end
  local out, multi = {}, false
  for i = 1, n do
    out[i] = R.format((select(i, ...)))
    multi = multi or out[i]:find('\n') ~= nil
  end
  return { ['text/plain'] = table.concat(out, multi and '\n' or '\t') }, {}
end

-- ==== Pictures written by usagi.plot =========================================

local function read_file(path)
  local f = io.open(path, 'rb')
  if not f then return nil end
  local s = f:read('a')
  f:close()
  return s
end

-- The bundle of an image file: PNG as base64, SVG as its text.
function D.file_bundle(path)
  local bytes = read_file(path)
  if not bytes then return nil end
  if path:match('%.svg$') then return { ['image/svg+xml'] = bytes, ['text/plain'] = path }, {} end
  return { ['image/png'] = D.base64(bytes), ['text/plain'] = path }, {}
end

-- D.hook_plot(publish): every usagi.plot drawing is also shown, through
-- publish(data, metadata). A call without `path` draws into a temporary
-- PNG that is shown and removed (and returns nothing).
function D.hook_plot(publish)
  local plot = require 'usagi.plot'
  for _, name in ipairs { 'lines', 'scatter', 'grid', 'heatmap' } do
    local draw = plot[name]
    if type(draw) == 'function' then
      plot[name] = function(spec, ...)
        local tmp
        if type(spec) == 'table' and spec.path == nil then
          tmp = os.tmpname()
          os.remove(tmp)
          tmp = tmp .. '.png'
          local copy = {}
          for k, v in pairs(spec) do copy[k] = v end
          copy.path = tmp
          if name == 'lines' or name == 'scatter' then copy.quiet = true end
          spec = copy
        end
        local res = table.pack(draw(spec, ...))
        local path = type(spec) == 'table' and spec.path
        if type(path) == 'string' then
          local data, meta = D.file_bundle(path)
          if data then publish(data, meta) end
        end
        if tmp then os.remove(tmp); return end        -- nothing: the cell shows no value
        return table.unpack(res, 1, res.n)
      end
    end
  end
end

return D
