-- usagi.plot -- line charts of metrics, as SVG or PNG, fit for a report:
--
--   local plot = require 'usagi.plot'
--   plot.lines {
--     series = { { label = 'train', y = train_loss }, { label = 'valid', x = epochs, y = valid } },
--     title = 'PTB', xlabel = 'step', ylabel = 'loss', logy = true, path = 'loss.png',
--   }
--
-- The chart is laid out once, in pixels, as a short display list (rects,
-- lines, polylines, markers, texts), which two back ends draw: SVG text
-- (real <text> in sans-serif, <polyline>s, a white background, a viewBox)
-- and PNG through usagi.image (host/image/image.c, with its bitmap font).
-- What it draws follows matplotlib's defaults: 5% margins around the data,
-- 1-2-5 ticks (decades when logy), light grid lines, the tab10 colours, a
-- legend in the corner it hides least of the data. NaN and infinite points
-- break a line; a point alone between breaks gets a dot.
--
-- Not a plotting package: no scatter, bars, subplots or styles. Lua only,
-- no per-pixel loops: long series are thinned to the first, lowest,
-- highest and last point of each pixel column, which draws the same.
local usagi = require 'usagi'
local image = usagi.image

local plot = {}

-- matplotlib's tab10, in its order.
plot.palette = {
  '#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd',
  '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf',
}

local INK, FRAME, GRID, LEGEND_EDGE, BG = '#222222', '#444444', '#e6e6e6', '#cccccc', '#ffffff'
local floor, ceil, max, min, abs = math.floor, math.ceil, math.max, math.min, math.abs

-- Errors carry no position here; plot.lines re-raises them at its caller.
local function fail(fmt, ...) error('plot.lines: ' .. fmt:format(...), 0) end

local finite = require('usagi.util').finite

-- ==== Input ==============================================================

-- A Lua array of numbers from a Lua array or a 1-D tensor.
local function numbers(v, what)
  if usagi.is_tensor(v) then
    if v:dim() ~= 1 then fail('%s must be a Lua array or a 1-D tensor, got a tensor of size %s', what, tostring(v:size())) end
    return v:double():totable()
  end
  if type(v) ~= 'table' then fail('%s must be a Lua array or a 1-D tensor, got %s', what, type(v)) end
  local out = {}
  for i = 1, #v do
    if type(v[i]) ~= 'number' then fail('%s[%d] must be a number, got %s', what, i, type(v[i])) end
    out[i] = v[i]
  end
  return out
end

local KNOWN = {
  series = true, title = true, xlabel = true, ylabel = true, logy = true, width = true,
  height = true, path = true, xlim = true, ylim = true, legend = true, font_scale = true,
  quiet = true,
}

-- Line styles, in the order series take them once the ten colours are
-- used up (series 11 to 20 dashed, 21 to 30 dotted, ...): on and off
-- lengths in line widths.
plot.styles = { 'solid', 'dashed', 'dotted', 'dashdot' }
local DASHES = { solid = false, dashed = { 4, 2.5 }, dotted = { 1, 1.6 }, dashdot = { 4, 1.6, 1, 1.6 } }
local LEGEND_AT = { best = true, ['upper right'] = true, ['upper left'] = true,
  ['lower left'] = true, ['lower right'] = true, outside = true }

local function opt_string(spec, k)
  if spec[k] ~= nil and type(spec[k]) ~= 'string' then fail("%s must be a string, got %s", k, type(spec[k])) end
  return spec[k]
end

local function opt_size(spec, k, def)
  local v = spec[k]
  if v == nil then return def end
  if math.type(v) ~= 'integer' or v < 100 or v > 8192 then
    fail('%s must be an integer in 100..8192, got %s', k, tostring(v))
  end
  return v
end

local function show(v)
  if type(v) ~= 'table' then return type(v) == 'string' and "'" .. v .. "'" or tostring(v) end
  local parts = {}
  for i = 1, max(#v, 2) do parts[i] = show(v[i]) end
  return '{' .. table.concat(parts, ', ') .. '}'
end

-- {lo, hi} with either end nil (or absent) to leave it to the data.
local function opt_lim(spec, k)
  local v = spec[k]
  if v == nil then return {} end
  local function ok(x) return x == nil or (type(x) == 'number' and finite(x)) end
  if type(v) ~= 'table' or not ok(v[1]) or not ok(v[2]) or (v[1] and v[2] and v[1] >= v[2]) then
    fail('%s must be {lo, hi} with finite lo < hi (either may be nil), got %s', k, show(v))
  end
  return { v[1], v[2] }
end

-- '#rrggbb' or {r, g, b} in 0..255, as '#rrggbb'.
local function opt_color(c, what)
  if type(c) == 'string' and c:match('^#%x%x%x%x%x%x$') then return c:lower() end
  if type(c) == 'table' and #c == 3 then
    local okc = true
    for i = 1, 3 do okc = okc and type(c[i]) == 'number' and c[i] >= 0 and c[i] <= 255 end
    if okc then return ('#%02x%02x%02x'):format(floor(c[1] + 0.5), floor(c[2] + 0.5), floor(c[3] + 0.5)) end
  end
  fail("%s must be '#rrggbb' or {r, g, b} with values in 0..255, got %s", what, show(c))
end

-- The checked, normalised spec: every series with x and y arrays of equal
-- length, a label and a colour.
local function normalise(spec, need_path)
  if type(spec) ~= 'table' then fail('expects a table of options, got %s', type(spec)) end
  for k in pairs(spec) do
    if not KNOWN[k] then fail("unknown option '%s'", tostring(k)) end
  end
  local path, ext = spec.path, nil
  if need_path or path ~= nil then
    if type(path) ~= 'string' then fail("path must be a string ending in .svg or .png, got %s", type(path)) end
    ext = path:match('%.(%w+)$')
    ext = ext and ext:lower()
    if ext ~= 'svg' and ext ~= 'png' then
      fail("path must end in .svg or .png, got '%s'", path)
    end
  end
  local list = spec.series
  if type(list) ~= 'table' or #list == 0 then fail('series must be a non-empty list of {label =, x =, y =}') end
  local p = {
    path = path, format = ext, title = opt_string(spec, 'title'), xlabel = opt_string(spec, 'xlabel'),
    ylabel = opt_string(spec, 'ylabel'), logy = spec.logy and true or false,
    width = opt_size(spec, 'width', 800), height = opt_size(spec, 'height', 500),
    xlim = opt_lim(spec, 'xlim'), ylim = opt_lim(spec, 'ylim'), quiet = spec.quiet,
    legend = spec.legend == nil and 'best' or spec.legend, series = {},
  }
  if p.legend ~= false and not LEGEND_AT[p.legend] then
    fail("legend must be false, 'best', 'upper right', 'upper left', 'lower left', 'lower right' or 'outside', got %s",
      tostring(p.legend))
  end
  local fs = spec.font_scale
  if fs ~= nil and (math.type(fs) ~= 'integer' or fs < 1 or fs > 8) then
    fail('font_scale must be an integer in 1..8, got %s', tostring(fs))
  end
  p.scale = fs or max(1, floor(min(p.width / 800, p.height / 500) + 0.2))
  p.labelled = false
  for i, s in ipairs(list) do
    local what = ('series[%d]'):format(i)
    if type(s) ~= 'table' then fail('%s must be a table {label =, x =, y =}, got %s', what, type(s)) end
    if s.y == nil then fail('%s has no y', what) end
    local y = numbers(s.y, what .. '.y')
    local x
    if s.x ~= nil then
      x = numbers(s.x, what .. '.x')
      if #x ~= #y then fail('%s: x and y lengths differ (%d and %d)', what, #x, #y) end
    else
      x = {}
      for k = 1, #y do x[k] = k end
    end
    if s.label ~= nil and type(s.label) ~= 'string' then fail('%s.label must be a string, got %s', what, type(s.label)) end
    p.labelled = p.labelled or s.label ~= nil
    local width = s.width or 1.5
    if type(width) ~= 'number' or not (width > 0 and width <= 100) then
      fail('%s.width must be a number in (0, 100], got %s', what, show(width))
    end
    local style = s.style or plot.styles[(i - 1) // #plot.palette % #plot.styles + 1]
    if DASHES[style] == nil then
      fail("%s.style must be 'solid', 'dashed', 'dotted' or 'dashdot', got %s", what, show(style))
    end
    local dash
    if DASHES[style] then
      dash = {}
      for k, d in ipairs(DASHES[style]) do dash[k] = d * max(width, 1) end
    end
    if s.legend ~= nil and type(s.legend) ~= 'boolean' then
      fail('%s.legend must be a boolean (false: not in the legend), got %s', what, type(s.legend))
    end
    local labels = s.labels
    if labels ~= nil then
      if type(labels) ~= 'table' or #labels ~= #y then
        fail('%s.labels must be a list of %d strings, one per point, got %s', what, #y,
          type(labels) == 'table' and ('%d of them'):format(#labels) or type(labels))
      end
      for k = 1, #labels do
        if type(labels[k]) ~= 'string' then fail('%s.labels[%d] must be a string, got %s', what, k, type(labels[k])) end
      end
    end
    p.series[i] = {
      label = s.label or ('series ' .. i), x = x, y = y, width = width, points = s.points and true or false,
      labels = labels, in_legend = s.legend ~= false,
      color = opt_color(s.color or plot.palette[(i - 1) % #plot.palette + 1], what .. '.color'), dash = dash,
    }
  end
  return p
end

-- ==== Scales and ticks ===================================================

-- Tick labels: fixed decimals from the step (0.0, 0.5, 1.0), or compact
-- scientific notation (1e+06, 2.5e-05) from a million up and below 1e-4
-- (matplotlib switches at 1e6 and 1e-5).
local function fmt_sci(v, digits)
  if v == 0 then return '0' end
  local m, e = ('%.' .. digits .. 'e'):format(v):match('^(.-)e(.*)$')
  if m:find('%.') then m = m:gsub('0+$', ''):gsub('%.$', '') end
  return m .. 'e' .. e
end

local function tick_formatter(lo, hi, step)
  local big = max(abs(lo), abs(hi))
  local k = floor(math.log(step, 10) + 1e-9)
  if big >= 1e6 or big < 1e-4 then
    local digits = max(0, floor(math.log(big, 10) + 1e-9) - k)
    return function(v) return fmt_sci(v, digits) end
  end
  local f = '%.' .. max(0, -k) .. 'f'
  return function(v)
    local s = f:format(v)
    return (s:match('^%-[0.]+$') and s:sub(2)) or s    -- no "-0.0"
  end
end

-- Ticks at multiples of a 1-2-5 step inside [lo, hi]: the finest step
-- that gives at most 8 (integer steps only when `integer`).
local function linear_ticks(lo, hi, integer)
  local span = hi - lo
  local e = floor(math.log(span, 10))
  local step
  for k = e - 2, e + 1 do
    for _, m in ipairs { 1, 2, 5 } do
      local st = m * 10.0 ^ k
      if not step and (not integer or st >= 1) and floor(hi / st + 1e-9) - ceil(lo / st - 1e-9) + 1 <= 8 then
        step = st
      end
    end
  end
  step = step or 10.0 ^ (e + 1)
  local fmt, ticks = tick_formatter(lo, hi, step), {}
  for i = ceil(lo / step - 1e-9), floor(hi / step + 1e-9) do
    local v = i * step
    ticks[#ticks + 1] = { at = v, label = fmt(v) }
  end
  return ticks
end

local function fmt_decade(k)
  if k >= -3 and k <= 4 then return ('%g'):format(10.0 ^ k) end
  return ('1e%+03d'):format(k)
end

-- Log-scale ticks over [lo, hi] given in log10 units. Three decades or
-- more: the decades (every n-th when there are many) with unlabelled minor
-- ticks at 2..9. Fewer: 1-2-5 multiples (then 1..9) when that gives 3 to
-- 10 ticks, the other multiples as minor ticks. Narrower still: plain
-- linear ticks of the values.
local function log_ticks(lo, hi)
  local ticks, minor = {}, {}
  local k0, k1 = ceil(lo - 1e-9), floor(hi + 1e-9)
  local function multiples(ms)
    local out = {}
    for k = floor(lo), ceil(hi) do
      for _, m in ipairs(ms) do
        local v = k + math.log(m, 10)
        if v >= lo - 1e-12 and v <= hi + 1e-12 then out[#out + 1] = { at = v, label = ('%g'):format(m * 10.0 ^ k), m = m } end
      end
    end
    return out
  end
  if k1 - k0 + 1 >= 3 then
    local every = ceil((k1 - k0 + 1) / 8)
    for k = k0, k1 do
      if k % every == 0 then ticks[#ticks + 1] = { at = k, label = fmt_decade(k) } end
    end
    if every == 1 then
      for _, t in ipairs(multiples { 2, 3, 4, 5, 6, 7, 8, 9 }) do minor[#minor + 1] = t.at end
    end
    return ticks, minor
  end
  for _, ms in ipairs { { 1, 2, 5 }, { 1, 2, 3, 4, 5, 6, 7, 8, 9 } } do
    ticks = multiples(ms)
    if #ticks >= 3 and #ticks <= 10 then
      local major = {}
      for _, m in ipairs(ms) do major[m] = true end
      for _, t in ipairs(multiples { 2, 3, 4, 5, 6, 7, 8, 9 }) do
        if not major[t.m] then minor[#minor + 1] = t.at end
      end
      return ticks, minor
    end
  end
  ticks = {}
  for _, t in ipairs(linear_ticks(10 ^ lo, 10 ^ hi, false)) do
    if t.at > 0 then ticks[#ticks + 1] = { at = math.log(t.at, 10), label = t.label } end
  end
  return ticks, minor
end

-- The data range of the finite points, widened by 5% as matplotlib does
-- (or a unit around a single value); lim pins either end.
local function data_range(lo, hi, lim, integer)
  if lo > hi then lo, hi = 0, 1 end
  if lo == hi then
    local d = (integer or lo == 0) and 1 or abs(lo) * 0.1
    lo, hi = lo - d, hi + d
  else
    local d = (hi - lo) * 0.05
    lo, hi = lo - d, hi + d
  end
  lo, hi = lim[1] or lo, lim[2] or hi
  if lo >= hi then fail('the limits leave an empty range (%g >= %g)', lo, hi) end
  return lo, hi
end

-- ==== Layout =============================================================

-- Pixel coordinates of one series, NaN where the line breaks; long runs
-- keep the first, lowest, highest and last point of each pixel column.
local function to_pixels(xs, ys, mx, my, columns)
  local px, py = {}, {}
  for i = 1, #xs do px[i], py[i] = mx(xs[i]), my(ys[i]) end
  if #px <= 4 * columns then return px, py end
  local ox, oy, i = {}, {}, 1
  local function keep(k) ox[#ox + 1], oy[#oy + 1] = px[k], py[k] end
  while i <= #px do
    if not (finite(px[i]) and finite(py[i])) then keep(i); i = i + 1 else
      local col, j, lo, hi = floor(px[i]), i, i, i
      while j + 1 <= #px and finite(px[j + 1]) and finite(py[j + 1]) and floor(px[j + 1]) == col do
        j = j + 1
        if py[j] < py[lo] then lo = j end
        if py[j] > py[hi] then hi = j end
      end
      local ks = { i, lo, hi, j }
      table.sort(ks)
      for n, k in ipairs(ks) do if n == 1 or k ~= ks[n - 1] then keep(k) end end
      i = j + 1
    end
  end
  return ox, oy
end

-- A polyline cut to the rectangle [x0, x1] x [y0, y1] (Liang-Barsky on
-- each segment), NaN where it leaves and comes back: the SVG needs no
-- clipPath, which some renderers (ImageMagick's) draw as nothing at all.
local function clip_line(xs, ys, x0, y0, x1, y1)
  local ox, oy = {}, {}
  local function put(x, y)
    local n = #ox
    if n > 0 and ox[n] == x and oy[n] == y then return end
    ox[n + 1], oy[n + 1] = x, y
  end
  local function brk() if #ox > 0 and ox[#ox] == ox[#ox] then ox[#ox + 1], oy[#oy + 1] = 0 / 0, 0 / 0 end end
  for i = 1, #xs do
    local ax, ay = xs[i], ys[i]
    if not (finite(ax) and finite(ay)) then brk()
    else
      local bx, by = xs[i + 1], ys[i + 1]
      if i == #xs or not (finite(bx) and finite(by)) then
        -- a last or lone point: kept when inside
        if ax >= x0 and ax <= x1 and ay >= y0 and ay <= y1 then put(ax, ay) end
      else
        local dx, dy, t0, t1 = bx - ax, by - ay, 0, 1
        for _, pq in ipairs { { -dx, ax - x0 }, { dx, x1 - ax }, { -dy, ay - y0 }, { dy, y1 - ay } } do
          local pp, q = pq[1], pq[2]
          if pp == 0 then
            if q < 0 then t0, t1 = 1, 0 end
          else
            local r = q / pp
            if pp < 0 then t0 = max(t0, r) else t1 = min(t1, r) end
          end
        end
        if t0 <= t1 then
          if t0 > 0 then brk() end
          put(ax + t0 * dx, ay + t0 * dy)
          put(ax + t1 * dx, ay + t1 * dy)
          if t1 < 1 then brk() end
        else brk() end
      end
    end
  end
  return ox, oy
end

-- How many segments of the data cross the rectangle (x, y, w, h).
local function hits(lines, x, y, w, h)
  local n = 0
  for _, l in ipairs(lines) do
    local xs, ys = l.xs, l.ys
    for i = 1, #xs - 1 do
      local x0, y0, x1, y1 = xs[i], ys[i], xs[i + 1], ys[i + 1]
      if finite(x0) and finite(y0) and finite(x1) and finite(y1)
          and max(x0, x1) >= x and min(x0, x1) <= x + w and max(y0, y1) >= y and min(y0, y1) <= y + h then
        -- the segment's box meets the rect; sample it to be sure
        for t = 0, 1, 0.125 do
          local sx, sy = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
          if sx >= x and sx <= x + w and sy >= y and sy <= y + h then n = n + 1; break end
        end
      end
    end
  end
  return n
end

-- The legend's size: rows of a swatch and a label, in as many columns as
-- the height of the frame needs when it stands outside.
local function legend_size(p, s, height, outside)
  local rowh, swatch, inner = 16 * s, 22 * s, 7 * s
  local tw, n = 0, 0
  for _, se in ipairs(p.series) do
    if se.in_legend then n = n + 1; tw = max(tw, image.text_width(se.label, s)) end
  end
  local colw = swatch + 6 * s + ceil(tw * 1.1) + inner
  local per_col = n
  if outside then per_col = max(1, floor((height - 2 * inner + 4 * s) / rowh)) end
  local cols = ceil(n / max(per_col, 1))
  per_col = ceil(n / max(cols, 1))
  return { w = inner + cols * colw, h = per_col * rowh + 2 * inner - 4 * s, rowh = rowh, swatch = swatch,
    inner = inner, colw = colw, per_col = per_col, n = n }
end

-- Where the legend goes: outside, right of the frame; else the corner asked
-- for, or with 'best' the one whose box the data cross least.
local function legend_box(p, lines, L, T, R, B, s, outside)
  local lg = legend_size(p, s, B - T, outside)
  local w, h, m = lg.w, lg.h, 8 * s
  local spots = {
    ['upper right'] = { R - m - w, T + m }, ['upper left'] = { L + m, T + m },
    ['lower left'] = { L + m, B - m - h }, ['lower right'] = { R - m - w, B - m - h },
    outside = { R + m, T },
  }
  local order = { 'upper right', 'upper left', 'lower left', 'lower right' }
  local at = outside and 'outside' or p.legend
  if at == 'best' then
    local best
    for _, name in ipairs(order) do
      local xy = spots[name]
      local n = hits(lines, xy[1], xy[2], w, h)
      if not best or n < best then best, at = n, name end
    end
  end
  local xy = spots[at]
  lg.x, lg.y = floor(xy[1]), floor(xy[2])
  return lg
end

-- ==== Point labels =======================================================

-- Labels beside the points of a scatter (a word beside its vector), placed
-- one after another where they cover the least of the labels already
-- placed, of the markers and of the space outside the frame: eight spots
-- around the point, then the same farther out with a thin leader line
-- back to the point. Crowded points still get every label, spread out
-- instead of piled on one another.
local function overlap(a, b)
  local w = min(a[3], b[3]) - max(a[1], b[1])
  local h = min(a[4], b[4]) - max(a[2], b[2])
  return (w > 0 and h > 0) and w * h or 0
end

local function place_labels(lines, L, T, R, B, s, add)
  local cap, size = 9 * s, 11 * s
  local taken, todo = {}, {}
  for _, l in ipairs(lines) do
    if l.kind == 'points' then
      for k = 1, #l.xs do
        local x, y = l.xs[k], l.ys[k]
        if finite(x) and finite(y) and x >= L and x <= R and y >= T and y <= B then
          local r = l.width + 1
          taken[#taken + 1] = { x - r, y - r, x + r, y + r }
          if l.labels and l.labels[k]:find('%S') then todo[#todo + 1] = { x = x, y = y, text = l.labels[k] } end
        end
      end
    end
  end
  local dirs = { { 1, 0 }, { 1, -1 }, { 1, 1 }, { -1, 0 }, { 0, -1 }, { 0, 1 }, { -1, -1 }, { -1, 1 } }
  for _, pt in ipairs(todo) do
    local w, h = ceil(image.text_width(pt.text, s) * 1.1), cap + 2 * s
    local best, best_cost
    for ring, d in ipairs { 4 * s, 14 * s, 26 * s, 40 * s, 56 * s } do
      for _, dir in ipairs(dirs) do
        -- the box's near side (or centre, along an axis) at distance d
        local x0 = dir[1] > 0 and pt.x + d or dir[1] < 0 and pt.x - d - w or pt.x - w / 2
        local y0 = dir[2] > 0 and pt.y + d or dir[2] < 0 and pt.y - d - h or pt.y - h / 2
        local box = { x0, y0, x0 + w, y0 + h }
        local cost = (ring - 1) * 4 * s * s
        for _, t in ipairs(taken) do cost = cost + overlap(box, t) end
        local inside = overlap(box, { L, T, R, B })
        cost = cost + 4 * (w * h - inside)
        if not best or cost < best_cost then best, best_cost = { box = box, ring = ring }, cost end
      end
      if best_cost == 0 then break end
    end
    local b = best.box
    taken[#taken + 1] = b
    if best.ring > 1 then            -- a leader from the point to the box's nearest edge
      local ex, ey = min(max(pt.x, b[1]), b[3]), min(max(pt.y, b[2]), b[4])
      add { kind = 'line', x0 = pt.x, y0 = pt.y, x1 = ex, y1 = ey, color = '#aaaaaa', width = 1 }
    end
    add { kind = 'text', x = b[1] + 1 * s, y = b[2] + cap + s, text = pt.text, color = '#333333', size = size,
      scale = s, anchor = 'start', rotate = false, bold = false }
  end
end

-- The display list of a normalised spec: pixel coordinates, back to front.
local function layout(p)
  local W, H, s = p.width, p.height, p.scale
  local cap, pad, tick = 9 * s, 10 * s, 4 * s
  local notes = {}
  -- the data, transformed (log10 when logy) and their range
  local xlo, xhi, ylo, yhi, integer = math.huge, -math.huge, math.huge, -math.huge, true
  local tys = {}
  for i, se in ipairs(p.series) do
    local ty, dropped = {}, 0
    for k = 1, #se.y do
      local v = se.y[k]
      if p.logy then
        if v <= 0 then dropped = dropped + 1; v = 0 / 0 else v = math.log(v, 10) end
      end
      ty[k] = v
      local x = se.x[k]
      if finite(x) and finite(v) then
        xlo, xhi, ylo, yhi = min(xlo, x), max(xhi, x), min(ylo, v), max(yhi, v)
        integer = integer and x == floor(x)
      end
    end
    if dropped > 0 then
      notes[#notes + 1] = ("plot.lines: logy: left out %d non-positive value%s of '%s'")
          :format(dropped, dropped == 1 and '' or 's', se.label)
    end
    tys[i] = ty
  end
  if xlo > xhi then fail('no finite (x, y) point to plot in any series') end
  local ylim = p.ylim
  if p.logy then
    for _, v in ipairs { ylim[1] or 1, ylim[2] or 1 } do
      if v <= 0 then fail('ylim must be positive with logy, got %g', v) end
    end
    ylim = { ylim[1] and math.log(ylim[1], 10), ylim[2] and math.log(ylim[2], 10) }
  end
  xlo, xhi = data_range(xlo, xhi, p.xlim, integer)
  ylo, yhi = data_range(ylo, yhi, ylim, false)
  local xt = linear_ticks(xlo, xhi, integer)
  local yt, yminor
  if p.logy then yt, yminor = log_ticks(ylo, yhi) else yt, yminor = linear_ticks(ylo, yhi, false), {} end

  -- margins from the texts they must hold (10% slack for the SVG's font)
  local ytw = 0
  for _, t in ipairs(yt) do ytw = max(ytw, image.text_width(t.label, s)) end
  ytw = ceil(ytw * 1.1)
  -- the y label reads across, above the axis: ImageMagick draws rotated SVG
  -- text turned the wrong way, and a label across reads without a tilt
  local L = pad + ytw + 4 * s + tick
  local T = pad + (p.title and cap + 12 * s or 2 * s)
  local ylabel_y
  if p.ylabel then ylabel_y, T = T + cap, T + cap + 8 * s end
  local xtb = tick + 4 * s + cap                          -- frame to x tick baselines
  local bottom = xtb + (p.xlabel and 9 * s + cap or 0) + 2 * s + pad
  local lastw = #xt > 0 and image.text_width(xt[#xt].label, s) / 2 or 0
  local R = W - max(pad + 6 * s, ceil(lastw * 1.1) + 2 * s)
  local B = H - bottom
  -- a legend taller than half the frame stands outside it, on the right
  local any = false
  for _, se in ipairs(p.series) do any = any or se.in_legend end
  local show_legend = p.legend and any and (p.labelled or #p.series > 1)
  local outside = false
  if show_legend then
    local lg = legend_size(p, s, B - T, false)
    outside = p.legend == 'outside' or (p.legend == 'best' and lg.h > (B - T) / 2)
    if outside then
      local right = W - pad - legend_size(p, s, B - T, true).w - 8 * s
      -- labels too long to leave the data room: back inside, over the data
      if right - L >= 200 * s then R = right else outside = false end
    end
  end
  if R - L < 60 or B - T < 60 then
    fail('width x height %dx%d leaves no room for the plot next to its labels', W, H)
  end
  -- the frame's lines run along pixel centres; data span between them
  local x0, x1, y0, y1 = L + 0.5, R - 0.5, T + 0.5, B - 0.5
  local function mx(v) return x0 + (v - xlo) / (xhi - xlo) * (x1 - x0) end
  local function my(v) return y1 - (v - ylo) / (yhi - ylo) * (y1 - y0) end
  local function snap(v) return floor(v) + 0.5 end

  local dl = { width = W, height = H, notes = notes }
  local function add(item) dl[#dl + 1] = item end
  local function text(x, y, str, size, o)
    o = o or {}
    add { kind = 'text', x = x, y = y, text = str, color = INK, size = size * s, scale = s,
      anchor = o.anchor or 'start', rotate = o.rotate or false, bold = o.bold or false }
  end
  add { kind = 'rect', x = 0, y = 0, w = W, h = H, color = BG }
  for _, t in ipairs(xt) do
    local x = snap(mx(t.at))
    add { kind = 'line', x0 = x, y0 = y0, x1 = x, y1 = y1, color = GRID, width = 1 }
  end
  for _, t in ipairs(yt) do
    local y = snap(my(t.at))
    add { kind = 'line', x0 = x0, y0 = y, x1 = x1, y1 = y, color = GRID, width = 1 }
  end
  -- the data, clipped to the frame
  local lines = {}
  for i, se in ipairs(p.series) do
    local xs, ys = to_pixels(se.x, tys[i], mx, my, R - L)
    local l = { kind = 'polyline', xs = xs, ys = ys, color = se.color, width = se.width, label = se.label,
      dash = se.dash }
    if se.points then            -- a scatter: every point a marker, none thinned away
      xs, ys = {}, {}
      for k = 1, #se.x do xs[k], ys[k] = mx(se.x[k]), my(tys[i][k]) end
      l = { kind = 'points', xs = xs, ys = ys, color = se.color, width = se.width, label = se.label,
        labels = se.labels }
    end
    lines[i] = l
  end
  add { kind = 'clip', x = L, y = T, w = R - L, h = B - T }
  for _, l in ipairs(lines) do
    if l.kind ~= 'points' then
      local cx, cy = clip_line(l.xs, l.ys, L, T, R, B)
      add { kind = 'polyline', xs = cx, ys = cy, color = l.color, width = l.width, dash = l.dash }
    end
    local xs, ys = l.xs, l.ys
    for k = 1, #xs do
      local ok = finite(xs[k]) and finite(ys[k]) and xs[k] >= L and xs[k] <= R and ys[k] >= T and ys[k] <= B
      if l.kind == 'points' then       -- every point a marker
        if ok then add { kind = 'marker', x = xs[k], y = ys[k], size = 2 * l.width + 1, color = l.color } end
      else                             -- a point alone between breaks gets a dot
        local prev = k > 1 and finite(xs[k - 1]) and finite(ys[k - 1])
        local next = k < #xs and finite(xs[k + 1]) and finite(ys[k + 1])
        if ok and not prev and not next then
          add { kind = 'marker', x = xs[k], y = ys[k], size = 2.5 * l.width + 1, color = l.color }
        end
      end
    end
  end
  add { kind = 'unclip' }
  place_labels(lines, L, T, R, B, s, add)
  -- frame, ticks and their labels
  for _, e in ipairs { { x0, y0, x1, y0 }, { x0, y1, x1, y1 }, { x0, y0, x0, y1 }, { x1, y0, x1, y1 } } do
    add { kind = 'line', x0 = e[1], y0 = e[2], x1 = e[3], y1 = e[4], color = FRAME, width = 1 }
  end
  for _, t in ipairs(xt) do
    local x = snap(mx(t.at))
    add { kind = 'line', x0 = x, y0 = B, x1 = x, y1 = B + tick, color = FRAME, width = 1 }
    text(x, B + xtb, t.label, 11, { anchor = 'middle' })
  end
  for _, t in ipairs(yt) do
    local y = snap(my(t.at))
    add { kind = 'line', x0 = L - tick, y0 = y, x1 = L, y1 = y, color = FRAME, width = 1 }
    text(L - tick - 4 * s, y + floor(cap / 2), t.label, 11, { anchor = 'end' })
  end
  for _, v in ipairs(yminor) do
    local y = snap(my(v))
    add { kind = 'line', x0 = L - tick / 2, y0 = y, x1 = L, y1 = y, color = FRAME, width = 1 }
  end
  -- the legend: one row per series (but those with legend = false), when
  -- any has a label or there are several
  if show_legend then
    local lg = legend_box(p, lines, L, T, R, B, s, outside)
    add { kind = 'rect', x = lg.x, y = lg.y, w = lg.w, h = lg.h, color = LEGEND_EDGE }
    add { kind = 'rect', x = lg.x + 1, y = lg.y + 1, w = lg.w - 2, h = lg.h - 2, color = BG }
    local shown = {}
    for i, l in ipairs(lines) do if p.series[i].in_legend then shown[#shown + 1] = l end end
    for row, l in ipairs(shown) do
      local cy = lg.y + lg.inner + (row - 1) % lg.per_col * lg.rowh + 4 * s
      local sx = lg.x + lg.inner + (row - 1) // lg.per_col * lg.colw
      if l.kind == 'points' then
        add { kind = 'marker', x = sx + lg.swatch / 2, y = cy + 0.5, size = 6 * s, color = l.color }
      else
        add { kind = 'line', x0 = sx, y0 = cy + 0.5, x1 = sx + lg.swatch, y1 = cy + 0.5, color = l.color,
          width = max(2, l.width), dash = l.dash }
      end
      text(sx + lg.swatch + 6 * s, cy + floor(cap / 2) + 1, l.label, 11)
    end
  end
  if p.title then text((L + R) / 2, pad + cap, p.title, 13, { anchor = 'middle', bold = true }) end
  if p.xlabel then text((L + R) / 2, B + xtb + 9 * s + cap, p.xlabel, 12, { anchor = 'middle' }) end
  if p.ylabel then text(pad, ylabel_y, p.ylabel, 12) end
  return dl
end

-- plot.layout(spec) -> the display list plot.lines would draw (path optional):
-- {width =, height =, notes = {...}, item, item, ...} with items
-- {kind = 'rect' | 'line' | 'polyline' | 'marker' | 'text' | 'clip' | 'unclip', ...}.
function plot.layout(spec)
  local ok, dl = pcall(function() return layout(normalise(spec, false)) end)
  if not ok then error(dl, 2) end
  return dl
end

-- ==== SVG ================================================================

local function num(v)
  local s = ('%.2f'):format(v)
  s = s:gsub('0+$', ''):gsub('%.$', '')
  return s == '-0' and '0' or s
end

local ESC = { ['&'] = '&amp;', ['<'] = '&lt;', ['>'] = '&gt;', ['"'] = '&quot;', ["'"] = '&#39;' }
local function esc(s) return (s:gsub('[&<>"\']', ESC)) end

-- Runs of finite points, as "x,y x,y ..." strings.
local function runs(xs, ys)
  local out, cur = {}, {}
  for i = 1, #xs + 1 do
    if i <= #xs and finite(xs[i]) and finite(ys[i]) then
      cur[#cur + 1] = num(xs[i]) .. ',' .. num(ys[i])
    else
      if #cur >= 2 then out[#out + 1] = table.concat(cur, ' ') end
      cur = {}
    end
  end
  return out
end

-- ' stroke-dasharray="on off ..."' for a dashed line, '' for a solid one.
local function dasharray(dash)
  if not dash then return '' end
  local parts = {}
  for i, d in ipairs(dash) do parts[i] = num(d) end
  return (' stroke-dasharray="%s"'):format(table.concat(parts, ' '))
end

-- to_svg(dl) -> the SVG text of a display list made by plot.layout. The
-- lines come clipped to the frame already, so it holds no clipPath: it
-- draws the same in browsers, rsvg-convert and ImageMagick.
function plot.to_svg(dl)
  local o = {
    ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
      .. 'font-family="sans-serif">'):format(dl.width, dl.height, dl.width, dl.height),
  }
  local function put(fmt, ...) o[#o + 1] = fmt:format(...) end
  for _, it in ipairs(dl) do
    local k = it.kind
    if k == 'rect' then
      put('<rect x="%s" y="%s" width="%s" height="%s" fill="%s" stroke="none"/>', num(it.x), num(it.y), num(it.w),
        num(it.h), it.color)
    elseif k == 'line' then
      put('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="%s"%s/>',
        num(it.x0), num(it.y0), num(it.x1), num(it.y1), it.color, num(it.width), dasharray(it.dash))
    elseif k == 'polyline' then
      for _, pts in ipairs(runs(it.xs, it.ys)) do
        put('<polyline fill="none" stroke="%s" stroke-width="%s" stroke-linejoin="round" '
          .. 'stroke-linecap="%s"%s points="%s"/>', it.color, num(it.width), it.dash and 'butt' or 'round',
          dasharray(it.dash), pts)
      end
    elseif k == 'marker' then
      put('<circle cx="%s" cy="%s" r="%s" fill="%s"/>', num(it.x), num(it.y), num(it.size / 2), it.color)
    elseif k == 'text' and not it.text:find('%S') then
      -- nothing to draw, and ImageMagick refuses a text of blanks
    elseif k == 'text' then
      -- rotated text as translate + rotate: ImageMagick ignores rotate(a x y)
      local attrs = it.rotate and ('x="0" y="0" transform="translate(%s %s) rotate(-90)"'):format(num(it.x), num(it.y))
        or ('x="%s" y="%s"'):format(num(it.x), num(it.y))
      attrs = attrs .. (' font-size="%s" fill="%s"'):format(num(it.size), it.color)
      if it.anchor ~= 'start' then attrs = attrs .. (' text-anchor="%s"'):format(it.anchor) end
      if it.bold then attrs = attrs .. ' font-weight="bold"' end
      put('<text %s>%s</text>', attrs, esc(it.text))
    end
  end
  o[#o + 1] = '</svg>\n'
  return table.concat(o, '\n')
end

-- ==== PNG ================================================================

-- The pieces of a polyline a dash pattern leaves drawn (on, off, on, ...
-- lengths in pixels, carried along the whole line): xs and ys with NaN
-- between the pieces, as canvas:polyline breaks a line.
local function dashed(xs, ys, dash)
  local ox, oy = {}, {}
  local k, left, on = 1, dash[1], true
  local function put(x, y) ox[#ox + 1], oy[#oy + 1] = x, y end
  for i = 1, #xs - 1 do
    local ax, ay, bx, by = xs[i], ys[i], xs[i + 1], ys[i + 1]
    if finite(ax) and finite(ay) and finite(bx) and finite(by) then
      local len, done = math.sqrt((bx - ax) ^ 2 + (by - ay) ^ 2), 0
      if on then put(ax, ay) end
      while len - done > left do
        done = done + left
        local t = done / len
        put(ax + t * (bx - ax), ay + t * (by - ay))
        if on then put(0 / 0, 0 / 0) end
        on, k = not on, k % #dash + 1
        left = dash[k]
      end
      left = left - (len - done)
      if on then put(bx, by) end
    else
      put(0 / 0, 0 / 0)
    end
  end
  return ox, oy
end

-- The canvas has no clip rectangle: the data are drawn, then the margins
-- outside the frame are painted over with the background.
function plot.to_canvas(dl)
  local c = image.canvas(dl.width, dl.height)
  local clip
  for _, it in ipairs(dl) do
    local k = it.kind
    if k == 'rect' then
      c:rect(it.x, it.y, it.w, it.h, it.color)
    elseif k == 'line' and it.dash then
      local xs, ys = dashed({ it.x0, it.x1 }, { it.y0, it.y1 }, it.dash)
      c:polyline(xs, ys, it.color, it.width)
    elseif k == 'line' then
      c:line(it.x0, it.y0, it.x1, it.y1, it.color, it.width)
    elseif k == 'polyline' then
      local xs, ys = it.xs, it.ys
      if it.dash then xs, ys = dashed(xs, ys, it.dash) end
      c:polyline(xs, ys, it.color, it.width)
    elseif k == 'marker' then
      c:marker(it.x, it.y, it.color, { size = it.size })
    elseif k == 'clip' then
      clip = it
    elseif k == 'unclip' and clip then
      local W, H = dl.width, dl.height
      c:rect(0, 0, W, clip.y, BG):rect(0, clip.y + clip.h, W, H - clip.y - clip.h, BG)
      c:rect(0, 0, clip.x, H, BG):rect(clip.x + clip.w, 0, W - clip.x - clip.w, H, BG)
    elseif k == 'text' then
      local o = { scale = it.scale, anchor = it.anchor, rotate = it.rotate }
      c:text(it.x, it.y, it.text, it.color, o)
      if it.bold then   -- a second pass one pixel along the text
        if it.rotate then c:text(it.x, it.y - 1, it.text, it.color, o)
        else c:text(it.x + 1, it.y, it.text, it.color, o) end
      end
    end
  end
  return c
end

-- ==== plot.lines =========================================================

local function lines(spec)
  local p = normalise(spec, true)
  local dl = layout(p)
  if p.format == 'svg' then
    local f, err = io.open(p.path, 'w')
    if not f then fail("cannot write '%s': %s", p.path, err) end
    local ok, werr = f:write(plot.to_svg(dl))
    f:close()
    if not ok then fail("cannot write '%s': %s", p.path, werr) end
  else
    local c = plot.to_canvas(dl)
    local ok, err = pcall(c.save_png, c, p.path)
    if not ok then fail('%s', (tostring(err):gsub('^canvas:save_png: ', ''))) end
  end
  if not p.quiet then
    for _, n in ipairs(dl.notes) do io.stderr:write(n, '\n') end
  end
  return p.path, dl.notes
end

-- plot.lines{ series = {{label =, x =, y =, color =, width =, style =, legend = true}, ...},
--   path = 'f.svg' | 'f.png', title =, xlabel =, ylabel =, logy = false, width = 800, height = 500,
--   xlim = {lo, hi}, ylim = {lo, hi}, legend = 'best' | 'upper right' | ... | 'outside' | false,
--   font_scale =, quiet = false } -> path, notes
-- x defaults to 1..#y; x and y are Lua arrays or 1-D tensors. style is
-- 'solid', 'dashed', 'dotted' or 'dashdot'; by default series 1-10 are solid
-- in the ten colours, 11-20 dashed, 21-30 dotted, and so on. A series with
-- legend = false has no row in the legend; a legend taller than half the
-- frame ('best') or 'outside' stands right of the frame. With logy,
-- non-positive values are left out and each series that lost some gets a
-- note (returned, and written to stderr unless quiet).
function plot.lines(spec)
  local ok, a, b = pcall(lines, spec)
  if not ok then error(a, 2) end
  return a, b
end

-- plot.scatter{...}: plot.lines with every series drawn as points (markers,
-- no line, none thinned away): series = {{label =, x =, y =, color =,
-- width = the marker's scale, labels = {a string per point}}, ...}, and the
-- other options of plot.lines. Labels go beside their points where they
-- cover the fewest others; crowded ones move out, with a leader line.
function plot.scatter(spec)
  if type(spec) == 'table' and type(spec.series) == 'table' then
    for _, se in ipairs(spec.series) do
      if type(se) == 'table' then se.points = true end
    end
  end
  local ok, a, b = pcall(lines, spec)
  if not ok then error(a, 2) end
  return a, b
end

-- plot.grid{images = (n, H * W) tensor, height = H, width = W, cols = 10,
--   path = 'f.png', pad = 1, scale} -> path: the images side by side, cols to
-- a row, grey levels 0 (black) to 1 (white), a pad of white between them,
-- each pixel drawn scale x scale (default 2, 4 for images under 16 pixels).
-- With under = a second (n, height * width) tensor, each row of images is
-- followed by the same row of under (inputs above their reconstructions).
function plot.grid(spec)
  local x, h, w = spec.images, spec.height, spec.width
  if not usagi.is_tensor(x) or x:dim() ~= 2 or not h or not w or x:size(2) ~= h * w then
    error('plot.grid: images must be (n, height * width) with height and width given, got ' ..
      (usagi.is_tensor(x) and tostring(x:size()) or type(x)), 2)
  end
  local cols = spec.cols or 10
  if spec.under ~= nil then
    local u = spec.under
    if not usagi.is_tensor(u) or tostring(u:size()) ~= tostring(x:size()) then
      error('plot.grid: under must have the shape of images, ' .. tostring(x:size()) .. ', got ' ..
        (usagi.is_tensor(u) and tostring(u:size()) or type(u)), 2)
    end
    local rows = {}
    for lo = 1, x:size(1), cols do
      local m = math.min(cols, x:size(1) - lo + 1)
      rows[#rows + 1] = x:narrow(1, lo, m)
      if m < cols then rows[#rows + 1] = usagi.ones(cols - m, h * w, { dtype = x:dtype() }) end
      rows[#rows + 1] = u:narrow(1, lo, m)
    end
    x = usagi.cat(rows, 1)
  end
  local n, pad = x:size(1), spec.pad or 1
  local sc = spec.scale or (math.max(h, w) < 16 and 4 or 2)
  local rows, H, W = math.ceil(n / cols), h * sc, w * sc
  local canvas = usagi.ones(rows * (H + pad) + pad, cols * (W + pad) + pad)
  local img = x:float():clamp(0, 1)
  for k = 1, n do
    local r, c = (k - 1) // cols, (k - 1) % cols
    local big = img[k]:view(h, 1, w, 1):expand(h, sc, w, sc):reshape(H, W)
    canvas:narrow(1, pad + r * (H + pad) + 1, H):narrow(2, pad + c * (W + pad) + 1, W):copy_(big)
  end
  image.save_png(spec.path, canvas)
  return spec.path
end

-- ==== plot.heatmap =======================================================

-- viridis at five stops, interpolated: dark purple (0) to yellow (1)
local VIRIDIS = { { 68, 1, 84 }, { 59, 82, 139 }, { 33, 145, 140 }, { 94, 201, 98 }, { 253, 231, 37 } }

local function viridis(v)
  v = min(max(v, 0), 1) * (#VIRIDIS - 1)
  local i = min(floor(v), #VIRIDIS - 2)
  local f, a, b = v - i, VIRIDIS[i + 1], VIRIDIS[i + 2]
  return ('#%02x%02x%02x'):format(floor(a[1] + f * (b[1] - a[1]) + 0.5),
    floor(a[2] + f * (b[2] - a[2]) + 0.5), floor(a[3] + f * (b[3] - a[3]) + 0.5))
end

local function heatmap(spec)
  if type(spec) ~= 'table' then error('plot.heatmap: takes a table, got ' .. type(spec), 0) end
  local v = spec.values
  if not usagi.is_tensor(v) or v:dim() ~= 2 then
    error('plot.heatmap: values must be a 2-D tensor (rows, columns), got ' ..
      (usagi.is_tensor(v) and tostring(v:size()) or type(v)), 0)
  end
  local path = spec.path
  if type(path) ~= 'string' or not (path:match('%.png$') or path:match('%.svg$')) then
    error('plot.heatmap: path must end in .png or .svg, got ' .. tostring(path), 0)
  end
  local R, C, rows = v:size(1), v:size(2), v:double():totable()
  local xl, yl = spec.xlabels or {}, spec.ylabels or {}
  local lo, hi = spec.vmin or v:min():item(), spec.vmax or v:max():item()
  if hi <= lo then hi = lo + 1 end
  local cell = spec.cell or 18
  -- the y label reads across, above the row labels (see plot.lines)
  local left, top = 16, (spec.title and 34 or 12) + (spec.ylabel and 18 or 0)
  local label_w = 0
  for r = 1, R do label_w = max(label_w, image.text_width(tostring(yl[r] or ''))) end
  left = left + label_w + 6
  -- the colour bar right of the cells, as tall as they are, its ticks
  -- those of a plot's axis over [lo, hi] (only the two ends when short)
  local barh, barx = R * cell, left + C * cell + 14
  local ticks = {}
  if barh >= 60 then
    for _, t in ipairs(linear_ticks(lo, hi, false)) do
      if t.at >= lo - 1e-12 * abs(lo) and t.at <= hi + 1e-12 * abs(hi) then ticks[#ticks + 1] = t end
    end
  end
  if #ticks < 2 then ticks = { { at = lo, label = ('%.3g'):format(lo) }, { at = hi, label = ('%.3g'):format(hi) } } end
  local tick_w = 0
  for _, t in ipairs(ticks) do tick_w = max(tick_w, image.text_width(t.label)) end
  local W = barx + 14 + 6 + ceil(tick_w * 1.1) + 12
  local H = top + R * cell + 24 + (spec.xlabel and 16 or 0)
  local dl = { width = W, height = H, notes = {} }
  local function add(it) dl[#dl + 1] = it end
  add { kind = 'rect', x = 0, y = 0, w = W, h = H, color = BG }
  if spec.title then
    add { kind = 'text', x = W / 2, y = 22, text = spec.title, color = INK, size = 14, scale = 1, anchor = 'middle', bold = true }
  end
  for r = 1, R do
    for c = 1, C do
      add { kind = 'rect', x = left + (c - 1) * cell, y = top + (r - 1) * cell, w = cell, h = cell,
            color = viridis((rows[r][c] - lo) / (hi - lo)) }
    end
    add { kind = 'text', x = left - 6, y = top + (r - 0.5) * cell + 4, text = tostring(yl[r] or ''),
          color = INK, size = 11, scale = 1, anchor = 'end' }
  end
  for c = 1, C do
    add { kind = 'text', x = left + (c - 0.5) * cell, y = top + R * cell + 14, text = tostring(xl[c] or ''),
          color = INK, size = 11, scale = 1, anchor = 'middle' }
  end
  if spec.xlabel then
    add { kind = 'text', x = left + C * cell / 2, y = H - 6, text = spec.xlabel, color = INK, size = 12, scale = 1, anchor = 'middle' }
  end
  if spec.ylabel then
    add { kind = 'text', x = 8, y = top - 8, text = spec.ylabel, color = INK, size = 12, scale = 1, anchor = 'start' }
  end
  -- the colour bar: stripes of viridis from lo (bottom) to hi (top)
  local stripes = min(barh, 64)
  for k = 0, stripes - 1 do
    local y0, y1 = top + floor(barh * k / stripes), top + floor(barh * (k + 1) / stripes)
    add { kind = 'rect', x = barx, y = y0, w = 14, h = y1 - y0, color = viridis(1 - (k + 0.5) / stripes) }
  end
  for _, t in ipairs(ticks) do
    local y = top + floor((1 - (t.at - lo) / (hi - lo)) * (barh - 1)) + 0.5
    add { kind = 'line', x0 = barx + 14, y0 = y, x1 = barx + 18, y1 = y, color = FRAME, width = 1 }
    add { kind = 'text', x = barx + 20, y = y + 4, text = t.label, color = INK, size = 11, scale = 1, anchor = 'start' }
  end
  if path:match('%.svg$') then
    local f, err = io.open(path, 'w')
    if not f then error(("plot.heatmap: cannot write '%s': %s"):format(path, err), 0) end
    f:write(plot.to_svg(dl))
    f:close()
  else
    local canvas = plot.to_canvas(dl)
    local ok, err = pcall(canvas.save_png, canvas, path)
    if not ok then error('plot.heatmap: ' .. tostring(err):gsub('^canvas:save_png: ', ''), 0) end
  end
  return path
end

-- plot.heatmap{ values = (R, C) tensor, path = 'f.png' | 'f.svg', xlabels = {...},
--   ylabels = {...}, title =, xlabel =, ylabel =, vmin =, vmax =, cell = 18 } -> path
-- One square per value, viridis from vmin (the smallest value) to vmax (the
-- largest), labels under the columns and left of the rows: attention
-- weights with the characters on the axes, a confusion matrix.
function plot.heatmap(spec)
  local ok, a = pcall(heatmap, spec)
  if not ok then error(a, 2) end
  return a
end

return plot
