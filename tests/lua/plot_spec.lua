-- plot_spec.lua -- scripts/usagi/plot.lua and its raster back end,
-- usagi.image (host/lua/image_lua.c).
--
-- SVG output is read as text: the title, the legend labels (escaped), one
-- <polyline> per series with one point per value (two when a NaN breaks
-- it), the tick labels of known ranges, log decades. PNG output is decoded
-- by Debian's /usr/bin/python3 with only its zlib and struct modules (an
-- independent reader: chunk CRCs, IHDR, inflate, the five row filters),
-- which reports the size and how many pixels have each colour asked about.
-- Bad input must raise errors that name plot.lines and the argument.
local usagi = require 'usagi'
local plot = require 'usagi.plot'
local h = dofile('tests/lua/helpers.lua')
local fails = h.fails
local image = usagi.image

local PY = '/usr/bin/python3'

-- A fresh temporary path ending in ext; removed by cleanup().
local made = {}
local function tmp(ext)
  local p = os.tmpname()
  os.remove(p)
  p = p .. ext
  made[#made + 1] = p
  return p
end
local function cleanup()
  for _, p in ipairs(made) do os.remove(p) end
  made = {}
end

local function slurp(path)
  local f = assert(io.open(path, 'rb'))
  local s = f:read('a')
  f:close()
  return s
end

local DECODER = [[
import struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n', 'signature'
pos, idat, w = 8, b'', None
while pos < len(data):
    n, = struct.unpack('>I', data[pos:pos + 4])
    kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
    crc, = struct.unpack('>I', data[pos + 8 + n:pos + 12 + n])
    assert zlib.crc32(kind + body) == crc, 'crc of ' + kind.decode()
    if kind == b'IHDR':
        w, h, depth, ctype, _, _, interlace = struct.unpack('>IIBBBBB', body)
        assert depth == 8 and interlace == 0
    elif kind == b'IDAT':
        idat += body
    pos += 12 + n
    if kind == b'IEND':
        break
assert pos == len(data), 'bytes after IEND'
bpp = {0: 1, 2: 3}[ctype]
raw, stride, rows, prev, i = zlib.decompress(idat), w * bpp, [], bytearray(w * bpp), 0
assert len(raw) == h * (1 + stride), 'inflated size'
for y in range(h):
    f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
    i += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0
        b, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(bytes(line))
    prev = line
counts = {}
for line in rows:
    for x in range(0, stride, bpp):
        px = line[x:x + bpp]
        counts[px] = counts.get(px, 0) + 1
print(w, h, ctype)
for want in sys.argv[2:]:
    print(counts.get(bytes.fromhex(want), 0))
]]

-- Decode the PNG at path: width, height, colour type, and for each
-- '#rrggbb' (or 'gg' grey byte) the number of pixels of exactly that colour.
local function decode_png(path, ...)
  local script = tmp('.py')
  local f = assert(io.open(script, 'w'))
  f:write(DECODER)
  f:close()
  local args = {}
  for _, c in ipairs { ... } do args[#args + 1] = c:gsub('^#', '') end
  local p = io.popen(('%s %s %s %s 2>&1'):format(PY, script, path, table.concat(args, ' ')))
  local out = p:read('a')
  local ok = p:close()
  assert(ok, 'python could not decode the PNG: ' .. out)
  local nums = {}
  for n in out:gmatch('%d+') do nums[#nums + 1] = tonumber(n) end
  local counts = {}
  for i = 4, #nums do counts[#counts + 1] = nums[i] end
  return nums[1], nums[2], nums[3], counts
end

-- The <polyline>s of an SVG: a list of their point counts, by stroke colour.
local function polylines(svg)
  local out = {}
  for stroke, pts in svg:gmatch('<polyline[^>]-stroke="(#%x+)"[^>]-points="([^"]*)"') do
    local n = 0
    for _ in pts:gmatch('[^ ]+') do n = n + 1 end
    out[stroke] = out[stroke] or {}
    table.insert(out[stroke], n)
  end
  return out
end

-- The texts of an SVG, in order.
local function texts(svg)
  local out = {}
  for t in svg:gmatch('<text[^>]*>([^<]*)</text>') do out[#out + 1] = t end
  return out
end
local function has(list, v)
  for _, x in ipairs(list) do if x == v then return true end end
  return false
end

local function ramp(n, f)
  local t = {}
  for i = 1, n do t[i] = f(i) end
  return t
end

describe('plot.lines to SVG', function()
  after_each(cleanup)

  it('writes the title, labels, legend and one polyline per series', function()
    local path = tmp('.svg')
    local got = plot.lines {
      series = {
        { label = 'train', y = ramp(25, function(i) return 10 - i * 0.3 end) },
        { label = 'valid', x = ramp(5, function(i) return 5 * i end), y = { 9, 6, 4.5, 3.9, 3.5 } },
      },
      title = 'Loss & <friends>', xlabel = 'step', ylabel = 'nats', path = path,
    }
    assert.equal(path, got)
    local svg = slurp(path)
    assert.truthy(svg:find('^<svg xmlns="http://www.w3.org/2000/svg" width="800" height="500" viewBox="0 0 800 500"'))
    assert.truthy(svg:find('font-family="sans-serif"', 1, true))
    assert.truthy(svg:find('<rect x="0" y="0" width="800" height="500" fill="#ffffff" stroke="none"/>', 1, true))
    local tx = texts(svg)
    assert.is_true(has(tx, 'Loss &amp; &lt;friends&gt;'))
    for _, want in ipairs { 'train', 'valid', 'step', 'nats' } do assert.is_true(has(tx, want), want) end
    local pl = polylines(svg)
    assert.same({ 25 }, pl['#1f77b4'])
    assert.same({ 5 }, pl['#ff7f0e'])
    -- x runs 1..25: ticks at multiples of 5 from 0 to 25; y 2.5..9.7: 2, 3, ... 9 (8 ticks)
    for _, want in ipairs { '0', '5', '10', '15', '20', '25' } do assert.is_true(has(tx, want), 'x tick ' .. want) end
    for v = 3, 9 do assert.is_true(has(tx, tostring(v)), 'y tick ' .. v) end
    assert.is_false(has(tx, '2.5'))
    assert.truthy(svg:find('</svg>%s*$'))
  end)

  it('breaks a line at NaN and infinity and dots a lone point', function()
    local path = tmp('.svg')
    local nan = 0 / 0
    plot.lines { series = { { label = 'a', y = { 1, 2, 3, nan, 5, 6, math.huge, 8, nan } } }, path = path }
    local svg = slurp(path)
    assert.same({ 3, 2 }, polylines(svg)['#1f77b4'])
    local cx = {}
    for c in svg:gmatch('<circle cx="([%d.]+)"') do cx[#cx + 1] = c end
    assert.equal(1, #cx)   -- the 8 alone between inf and NaN
  end)

  it('takes tensors for x and y, and formats ticks compactly', function()
    local path = tmp('.svg')
    plot.lines {
      series = { { label = 'tok/s', x = usagi.arange(0, 10):double(), y = usagi.linspace(1e6, 5e6, 10) } },
      path = path,
    }
    local svg = slurp(path)
    assert.same({ 10 }, polylines(svg)['#1f77b4'])
    local tx = texts(svg)
    for _, want in ipairs { '1e+06', '2e+06', '3e+06', '4e+06', '5e+06' } do assert.is_true(has(tx, want), want) end
    for _, want in ipairs { '0', '2', '4', '6', '8' } do assert.is_true(has(tx, want), want) end

    plot.lines { series = { { y = { 0.001, 0.002, 0.004 } } }, path = path }
    tx = texts(slurp(path))
    for _, want in ipairs { '0.0010', '0.0020', '0.0030', '0.0040' } do assert.is_true(has(tx, want), want) end
    -- one unlabelled series: no legend
    assert.is_false(has(tx, 'series 1'))
  end)

  it('puts decades on a log axis and leaves out non-positive values', function()
    local path = tmp('.svg')
    local y = ramp(30, function(i) return 10 ^ (2 - i / 6) end)    -- 10^1.83 .. 10^-3
    y[4] = 0
    y[9] = -2
    local got, notes = plot.lines { series = { { label = 'loss', y = y } }, logy = true, path = path, quiet = true }
    assert.equal(path, got)
    assert.equal(1, #notes)
    assert.truthy(notes[1]:find("left out 2 non-positive values of 'loss'", 1, true))
    local svg = slurp(path)
    local tx = texts(svg)
    for _, want in ipairs { '0.001', '0.01', '0.1', '1', '10', '100' } do assert.is_true(has(tx, want), want) end
    assert.is_false(has(tx, '1000'))   -- the top is 10^1.83, padded to 10^2.07
    assert.same({ 3, 4, 21 }, polylines(svg)['#1f77b4'])
    -- within a decade: 1-2-5 or 1..9 ticks
    plot.lines { series = { { y = { 2.2, 1.9, 1.6, 1.4, 1.3 } } }, logy = true, path = path }
    tx = texts(slurp(path))
    assert.is_true(has(tx, '2'))
  end)

  it('moves the legend away from the data', function()
    local path = tmp('.svg')
    -- rising lines fill the upper right and lower left; upper left is free
    plot.lines { series = { { label = 'up', y = ramp(50, function(i) return i * i end) } }, path = path }
    local svg = slurp(path)
    local lx = tonumber(svg:match('<text x="([%d.]+)" y="[%d.]+" font%-size="11" fill="#222222">up</text>'))
    assert.is_true(lx < 200, 'legend at x = ' .. tostring(lx))
    plot.lines { series = { { label = 'down', y = ramp(50, function(i) return -i * i end) } }, path = path }
    svg = slurp(path)
    lx = tonumber(svg:match('<text x="([%d.]+)" y="[%d.]+" font%-size="11" fill="#222222">down</text>'))
    assert.is_true(lx > 600, 'legend at x = ' .. tostring(lx))
  end)

  it('lays out the same display list it draws', function()
    local dl = plot.layout { series = { { label = 'a', y = { 1, 2, 3 } } }, width = 300, height = 200 }
    assert.equal(300, dl.width)
    assert.equal(200, dl.height)
    local kinds = {}
    for _, it in ipairs(dl) do kinds[it.kind] = (kinds[it.kind] or 0) + 1 end
    assert.equal(1, kinds.polyline)
    assert.is_true(kinds.text >= 5)
    assert.is_string(plot.to_svg(dl))
  end)
end)

-- A program on PATH, or nil; with version_needle, only when `NAME -version`
-- says it (a `convert` that is not ImageMagick's does not count).
local function program(name, version_needle)
  local p = io.popen(('command -v %s 2>/dev/null'):format(name))
  local path = p:read('l')
  p:close()
  if not path or path == '' then return nil end
  if version_needle then
    p = io.popen(('%s -version 2>&1'):format(path))
    local v = p:read('a')
    p:close()
    if not v:find(version_needle, 1, true) then return nil end
  end
  return path
end

describe('plot.lines: many series, clipping, other renderers', function()
  after_each(cleanup)

  it('dashes the series past the ten colours, in the legend too, SVG and PNG', function()
    local series = {}
    for i = 1, 23 do series[i] = { label = 'run ' .. i, y = ramp(30, function(k) return i + k / 30 end) } end
    local path = tmp('.svg')
    plot.lines { series = series, path = path }
    local svg = slurp(path)
    local styles = {}
    for tag in svg:gmatch('<polyline[^>]*>') do styles[#styles + 1] = tag:match('stroke%-dasharray="([^"]*)"') or 'solid' end
    assert.equal(23, #styles)
    assert.equal('solid', styles[10])
    assert.equal('6 3.75', styles[11])          -- 4 and 2.5 widths of 1.5
    assert.equal('1.5 2.4', styles[21])
    -- the 11th takes the 1st colour again, told apart by its dashes
    local strokes = {}
    for c in svg:gmatch('<polyline[^>]-stroke="(#%x+)"') do strokes[#strokes + 1] = c end
    assert.equal(strokes[1], strokes[11])
    local _, dashed_swatches = svg:gsub('<line[^>]*stroke%-dasharray', '')
    assert.equal(13, dashed_swatches)
    -- on a PNG a dashed line leaves gaps: fewer pixels than the solid one
    local one = tmp('.png')
    plot.lines { series = { { y = { 1, 2 }, width = 3 } }, legend = false, path = one }
    local dash = tmp('.png')
    plot.lines { series = { { y = { 1, 2 }, width = 3, style = 'dashed' } }, legend = false, path = dash }
    local _, _, _, a = decode_png(one, '#1f77b4')
    local _, _, _, b = decode_png(dash, '#1f77b4')
    assert.is_true(b[1] > 0.4 * a[1] and b[1] < 0.8 * a[1], ('solid %d, dashed %d pixels'):format(a[1], b[1]))
    fails(function() plot.lines { series = { { y = { 1, 2 }, style = 'wavy' } }, path = path } end,
      "plot.lines: series[1].style must be 'solid', 'dashed', 'dotted' or 'dashdot', got 'wavy'")
  end)

  it('puts a legend taller than half the frame outside it, in columns, and leaves out legend = false', function()
    local series = {}
    for i = 1, 45 do series[i] = { label = 'run ' .. i, y = { i, i + 1 }, legend = i ~= 7 } end
    local dl = plot.layout { series = series }
    local frame, boxes, rows = nil, {}, {}
    for _, it in ipairs(dl) do
      if it.kind == 'clip' then frame = it end
      if it.kind == 'rect' and it.color == '#cccccc' then boxes[#boxes + 1] = it end
      if it.kind == 'text' and it.text:find('^run ') then rows[#rows + 1] = it end
    end
    assert.equal(1, #boxes)
    assert.is_true(boxes[1].x > frame.x + frame.w, 'the legend is right of the frame')
    assert.is_true(boxes[1].y + boxes[1].h <= 500 and boxes[1].x + boxes[1].w <= 800)
    assert.equal(44, #rows)                               -- 'run 7' has no row
    local xs = {}
    for _, t in ipairs(rows) do xs[t.x] = true end
    local cols = 0
    for _ in pairs(xs) do cols = cols + 1 end
    assert.equal(2, cols)
    -- a few series keep their legend inside the frame
    dl = plot.layout { series = { series[1], series[2] } }
    for _, it in ipairs(dl) do if it.kind == 'rect' and it.color == '#cccccc' then boxes[2] = it end end
    assert.is_true(boxes[2].x < frame.x + frame.w)
    fails(function() plot.layout { series = { { y = { 1 }, legend = 'no' } } } end,
      'plot.lines: series[1].legend must be a boolean (false: not in the legend), got string')
  end)

  it('cuts lines at the frame itself: no clipPath, no point outside, no marker outside', function()
    local path = tmp('.svg')
    local y = ramp(50, function(k) return math.sin(k / 4) * 10 end)
    y[25] = 0 / 0
    y[30] = 100                      -- a lone point far above the frame
    y[29], y[31] = 0 / 0, 0 / 0
    local dl = plot.layout { series = { { y = y } }, ylim = { -5, 5 }, xlim = { 3, 45 } }
    plot.lines { series = { { y = y } }, ylim = { -5, 5 }, xlim = { 3, 45 }, path = path }
    local svg = slurp(path)
    assert.is_falsy(svg:find('clipPath', 1, true))
    local frame
    for _, it in ipairs(dl) do if it.kind == 'clip' then frame = it end end
    local n = 0
    for pts in svg:gmatch('<polyline[^>]-points="([^"]*)"') do
      for x, yy in pts:gmatch('([%d.%-]+),([%d.%-]+)') do
        x, yy = tonumber(x), tonumber(yy)
        n = n + 1
        assert.is_true(x >= frame.x - 0.006 and x <= frame.x + frame.w + 0.006, 'x ' .. x)
        assert.is_true(yy >= frame.y - 0.006 and yy <= frame.y + frame.h + 0.006, 'y ' .. yy)
      end
    end
    assert.is_true(n > 12)
    assert.is_falsy(svg:find('<circle', 1, true))
  end)

  it('draws the same in rsvg-convert and ImageMagick as in usagi\'s own PNG', function()
    local rsvg = program('rsvg-convert')
    local magick = program('magick', 'Version: ImageMagick') or program('convert', 'Version: ImageMagick')
      or program('convert-im6.q16', 'Version: ImageMagick')
    if not (rsvg or magick) then
      print('skipped: neither rsvg-convert (librsvg2-bin) nor ImageMagick\'s convert is installed')
      return
    end
    if not (rsvg and magick) then
      print(('skipped the %s check: it is not installed'):format(rsvg and 'ImageMagick' or 'rsvg-convert'))
    end
    local svg = tmp('.svg')
    plot.lines { series = { { label = 'a', y = ramp(40, function(i) return math.exp(-i / 10) end), width = 4 },
      { label = 'b', y = ramp(40, function(i) return 0.5 + 0.01 * i end), width = 4, color = '#123456' } },
      title = 'two', xlabel = 'step', ylabel = 'loss', ylim = { 0.1, 0.9 }, path = svg }
    assert.is_falsy(slurp(svg):find('rotate', 1, true))   -- rotated text turns the wrong way in ImageMagick
    for name, cmd in pairs { rsvg = rsvg and '%s %s -o %s', magick = magick and '%s %s %s' } do
      local exe = name == 'rsvg' and rsvg or magick
      local png = tmp('.png')
      assert.is_true(os.execute(cmd:format(exe, svg, png) .. ' 2>/dev/null') == true, name)
      if name == 'magick' then      -- as 8-bit RGB, which the reader here takes
        assert.is_true(os.execute(('%s %s -type TrueColor -depth 8 PNG24:%s'):format(exe, png, png)) == true)
      end
      local _, _, _, n = decode_png(png, '#1f77b4', '#123456')
      assert.is_true(n[1] > 300, name .. ': the first curve has ' .. n[1] .. ' pixels')
      assert.is_true(n[2] > 300, name .. ': the second curve has ' .. n[2] .. ' pixels')
    end
  end)
end)

describe('plot.lines to PNG', function()
  after_each(cleanup)

  it('writes a PNG of the asked size that shows every series colour', function()
    local path = tmp('.png')
    plot.lines {
      series = {
        { label = 'a', y = ramp(40, function(i) return math.exp(-i / 10) end) },
        { label = 'b', y = ramp(40, function(i) return 0.5 * math.exp(-i / 20) end) },
        { label = 'c', y = ramp(40, function(i) return 0.2 + 0.001 * i end), color = { 0x12, 0x34, 0x56 } },
      },
      title = 'three', xlabel = 'x', ylabel = 'y', width = 640, height = 400, path = path,
    }
    local w, hgt, ctype, n = decode_png(path, '#1f77b4', '#ff7f0e', '#123456', '#ffffff', '#2ca02c')
    assert.equal(640, w)
    assert.equal(400, hgt)
    assert.equal(2, ctype)
    assert.is_true(n[1] > 100, 'blue pixels: ' .. n[1])
    assert.is_true(n[2] > 100, 'orange pixels: ' .. n[2])
    assert.is_true(n[3] > 100, 'custom colour pixels: ' .. n[3])
    assert.is_true(n[4] > 640 * 400 / 2, 'white pixels: ' .. n[4])
    assert.equal(0, n[5])   -- the third series took its own colour
  end)

  it('scales the text with large figures', function()
    local small = plot.layout { series = { { y = { 1, 2 } } }, title = 't' }
    local big = plot.layout { series = { { y = { 1, 2 } } }, title = 't', width = 1600, height = 1000 }
    local function title(dl) for _, it in ipairs(dl) do if it.kind == 'text' and it.text == 't' then return it end end end
    assert.equal(1, title(small).scale)
    assert.equal(2, title(big).scale)
  end)
end)

describe('plot.lines errors', function()
  after_each(cleanup)
  local ok_series = { { y = { 1, 2 } } }

  it('names plot.lines and the argument', function()
    fails(function() plot.lines { series = {}, path = tmp('.svg') } end, 'plot.lines: series must be a non-empty list')
    fails(function() plot.lines { path = tmp('.svg') } end, 'plot.lines: series must be a non-empty list')
    fails(function() plot.lines { series = { { x = { 1, 2, 3 }, y = { 1, 2 } } }, path = tmp('.svg') } end,
      'plot.lines: series[1]: x and y lengths differ (3 and 2)')
    fails(function() plot.lines { series = ok_series, path = 'out.jpg' } end,
      "plot.lines: path must end in .svg or .png, got 'out.jpg'")
    fails(function() plot.lines { series = ok_series } end, 'plot.lines: path must be a string')
    fails(function() plot.lines { series = ok_series, path = tmp('.svg'), titel = 'x' } end,
      "plot.lines: unknown option 'titel'")
    fails(function() plot.lines { series = { { y = { 1, 'a' } } }, path = tmp('.svg') } end,
      'plot.lines: series[1].y[2] must be a number, got string')
    fails(function() plot.lines { series = { ok_series[1], { x = {} } }, path = tmp('.svg') } end,
      'plot.lines: series[2] has no y')
    fails(function() plot.lines { series = { { y = usagi.zeros(2, 2) } }, path = tmp('.svg') } end,
      'plot.lines: series[1].y must be a Lua array or a 1-D tensor, got a tensor of size (2, 2)')
    fails(function() plot.lines { series = { { y = { 0 / 0 } } }, path = tmp('.svg') } end,
      'plot.lines: no finite (x, y) point to plot')
    fails(function() plot.lines { series = { { y = { -1, 0 } } }, logy = true, path = tmp('.svg') } end,
      'plot.lines: no finite (x, y) point to plot')
    fails(function() plot.lines { series = ok_series, width = 10, path = tmp('.svg') } end,
      'plot.lines: width must be an integer in 100..8192, got 10')
    fails(function() plot.lines { series = ok_series, ylim = { 3, 1 }, path = tmp('.svg') } end,
      'plot.lines: ylim must be {lo, hi} with finite lo < hi (either may be nil), got {3, 1}')
    fails(function() plot.lines { series = ok_series, legend = 'middle', path = tmp('.svg') } end,
      "plot.lines: legend must be false, 'best'")
    fails(function() plot.lines(42) end, 'plot.lines: expects a table of options, got number')
    fails(function() plot.lines { series = { { y = { 1 }, color = 'red' } }, path = tmp('.svg') } end,
      "plot.lines: series[1].color must be '#rrggbb' or {r, g, b} with values in 0..255, got 'red'")
    fails(function() plot.lines { series = { { y = { 1 }, width = 0 } }, path = tmp('.svg') } end,
      'plot.lines: series[1].width must be a number in (0, 100], got 0')
  end)

  it('names the path it cannot write', function()
    fails(function() plot.lines { series = ok_series, path = '/nonexistent-dir/x.svg' } end,
      "plot.lines: cannot write '/nonexistent-dir/x.svg'")
    fails(function() plot.lines { series = ok_series, path = '/nonexistent-dir/x.png' } end,
      "plot.lines: cannot write '/nonexistent-dir/x.png': No such file or directory")
  end)
end)

describe('usagi.image', function()
  after_each(cleanup)

  it('draws on a canvas and reads pixels back', function()
    local c = image.canvas(20, 10, { 10, 20, 30 })
    assert.equal(20, c.width)
    assert.equal(10, c.height)
    assert.same({ 10, 20, 30 }, { c:get(19, 9) })
    assert.is_nil(c:get(20, 0))
    c:fill('#ffffff'):line(0, 4.5, 20, 4.5, '#ff0000', 1)
    assert.same({ 255, 0, 0 }, { c:get(7, 4) })
    assert.same({ 255, 255, 255 }, { c:get(7, 3) })
    c:rect(2, 6, 3, 2, { 0, 0, 255 })
    assert.same({ 0, 0, 255 }, { c:get(4, 7) })
    c:polyline({ 10.5, 10.5, 0 / 0, 15.5 }, { 0, 3, 3, 9 }, '#00ff00', 1)
    assert.same({ 0, 255, 0 }, { c:get(10, 1) })
    c:marker(17, 2, '#000000', { size = 3, shape = 'square' })
    assert.same({ 0, 0, 0 }, { c:get(17, 2) })
    assert.equal(30, image.text_width('hello'))
    assert.equal(24, c:text_width('ab', 2))
    c:text(1, 12, 'Hi', '#000000', { scale = 1, anchor = 'start', rotate = false })
    assert.truthy(tostring(c):find('usagi.image.Canvas 20x10', 1, true))
    assert.equal(6, image.font.width)
    assert.equal(13, image.font.height)
  end)

  it('writes canvases and tensors as PNG files', function()
    local path = tmp('.png')
    local c = image.canvas(3, 2, '#102030')
    c:save_png(path)
    local w, hgt, ctype, n = decode_png(path, '#102030')
    assert.same({ 3, 2, 2, 6 }, { w, hgt, ctype, n[1] })
    assert.equal(c:encode_png(), slurp(path))

    image.save_png(path, usagi.tensor { { 0, 0.5 }, { 1, 2 } })
    w, hgt, ctype, n = decode_png(path, '00', '80', 'ff')
    assert.same({ 2, 2, 0 }, { w, hgt, ctype })
    assert.same({ 1, 1, 2 }, n)
    image.save_png(path, usagi.tensor({ { { 255, 0, 0 }, { 0, 0, 255 } } }, 'i32'))
    w, hgt, ctype, n = decode_png(path, '#ff0000', '#0000ff')
    assert.same({ 2, 1, 2, 1, 1 }, { w, hgt, ctype, n[1], n[2] })
  end)

  it('refuses bad arguments with clear messages', function()
    local c = image.canvas(4, 4)
    fails(function() image.canvas(0, 4) end, 'image.canvas: width must be in 1..32768, got 0')
    fails(function() c:line(0, 0, 1, 1, 'red') end,
      "canvas:line: color must be {r, g, b} with values in 0..255 or '#rrggbb', got 'red'")
    fails(function() c:rect(0, 0, 1, 1, { 0, 0, 256 }) end, 'canvas:rect: color must be')
    fails(function() c:polyline({ 1, 2 }, { 1 }, '#000000') end,
      'canvas:polyline: xs and ys must have the same length, got 2 and 1')
    fails(function() c:text(0, 0, 'x', '#000000', { anchr = 'end' }) end, "canvas:text: unknown option 'anchr'")
    fails(function() c:text(0, 0, 'x', '#000000', { scale = 0 }) end, 'canvas:text: scale must be an integer in 1..64')
    fails(function() c:save_png('/nonexistent-dir/c.png') end,
      "canvas:save_png: cannot write '/nonexistent-dir/c.png': No such file or directory")
    fails(function() image.save_png('/nonexistent-dir/t.png', usagi.zeros(2, 2)) end,
      "image.save_png: cannot write '/nonexistent-dir/t.png': No such file or directory")
    fails(function() image.save_png(tmp('.png'), usagi.zeros(2, 2, 2)) end,
      'image.save_png: tensor must be (H, W), (H, W, 1) or (H, W, 3), got (2, 2, 2)')
    fails(function() image.save_png(tmp('.png'), usagi.tensor({ { 0, 300 } }, 'i32')) end,
      'image.save_png: i32 values must be in 0..255, got 300')
    c:close()
    fails(function() c:fill('#000000') end, 'the canvas was closed')
  end)
end)

describe('plot.scatter, plot.grid and plot.heatmap', function()
  after_each(cleanup)

  it('draws every point of a scatter as a marker, none thinned away, and a marker per legend row', function()
    local xs, ys = {}, {}
    for i = 1, 3000 do xs[i], ys[i] = i % 17, (i * 7) % 13 end     -- more points than pixel columns
    local p = tmp('.svg')
    plot.scatter { series = { { label = 'a', x = xs, y = ys }, { label = 'b', x = { 1, 2 }, y = { 3, 4 } } }, path = p }
    local _, circles = slurp(p):gsub('<circle', '')
    assert.are.equal(3000 + 2 + 2, circles)
  end)

  it('spreads the labels of crowded points instead of piling them up', function()
    -- 16 words on a 4 x 4 grid much finer than a label, among 200 points
    local xs, ys, labels = {}, {}, {}
    for i = 1, 16 do
      xs[i], ys[i], labels[i] = ((i - 1) % 4) * 0.01, ((i - 1) // 4) * 0.01, 'word' .. i
    end
    for i = 17, 216 do xs[i], ys[i], labels[i] = (i % 20) * 0.2 - 2, (i % 17) * 0.2 - 2, '' end
    local dl = plot.layout { series = { { x = xs, y = ys, labels = labels, points = true } }, legend = false }
    local boxes, leaders = {}, 0
    for _, it in ipairs(dl) do
      if it.kind == 'text' and it.text:find('^word') then
        local w = image.text_width(it.text, it.scale)
        boxes[#boxes + 1] = { it.x, it.y - 9, it.x + w, it.y }
      elseif it.kind == 'line' and it.color == '#aaaaaa' then
        leaders = leaders + 1
      end
    end
    assert.are.equal(16, #boxes)
    local piled = 0
    for a = 1, #boxes do
      for b = a + 1, #boxes do
        local p, q = boxes[a], boxes[b]
        if math.min(p[3], q[3]) > math.max(p[1], q[1]) and math.min(p[4], q[4]) > math.max(p[2], q[2]) then
          piled = piled + 1
        end
      end
    end
    assert.are.equal(0, piled)
    assert.is_true(leaders > 0)
    fails(function() plot.scatter { series = { { x = { 1, 2 }, y = { 1, 2 }, labels = { 'a' } } }, path = 'x.svg' } end,
      'plot.lines: series[1].labels must be a list of 2 strings, one per point, got 1 of them')
  end)

  it('puts n images into a grid of cols, each pixel scale x scale, with a pad', function()
    local p = tmp('.png')
    plot.grid { images = usagi.rand(7, 12), height = 3, width = 4, cols = 3, scale = 2, pad = 1, path = p }
    local png = slurp(p)
    local w, hgt = string.unpack('>I4>I4', png, 17)
    assert.are.same({ 3 * (8 + 1) + 1, 3 * (6 + 1) + 1 }, { w, hgt })   -- 3 columns, 3 rows
    plot.grid { images = usagi.rand(7, 12), under = usagi.rand(7, 12), height = 3, width = 4, cols = 3,
                scale = 2, pad = 1, path = p }
    w, hgt = string.unpack('>I4>I4', slurp(p), 17)
    assert.are.same({ 3 * (8 + 1) + 1, 6 * (6 + 1) + 1 }, { w, hgt })   -- each row of 3 with its row under
    fails(function() plot.grid { images = usagi.rand(2, 12), under = usagi.rand(3, 12), height = 3, width = 4, path = p } end,
      'plot.grid: under must have the shape of images')
    fails(function() plot.grid { images = usagi.rand(2, 5), height = 2, width = 2, path = p } end,
      'plot.grid: images must be (n, height * width)')
  end)

  it('draws one square per value of a heatmap with its labels', function()
    local p = tmp('.svg')
    plot.heatmap { values = usagi.rand(3, 4), xlabels = { 'a', 'b', 'c', 'd' }, ylabels = { 'x', 'y', 'z' }, path = p }
    local svg = slurp(p)
    local _, rects = svg:gsub('<rect[^>]-width="18" height="18"', '')
    assert.are.equal(12, rects)
    assert.is_truthy(svg:find('>d</text>', 1, true) and svg:find('>z</text>', 1, true))
    fails(function() plot.heatmap { values = usagi.rand(3), path = p } end, 'plot.heatmap: values must be a 2-D tensor')
  end)

  it('gives a heatmap a colour bar from vmin (dark) to vmax (yellow), with its ticks', function()
    local p = tmp('.svg')
    plot.heatmap { values = usagi.rand(4, 5), vmin = 0, vmax = 1, ylabel = 'out', path = p }
    local svg = slurp(p)
    local stripes = {}
    for y, c in svg:gmatch('<rect x="[%d.]+" y="([%d.]+)" width="14" height="[%d.]+" fill="(#%x+)"') do
      stripes[#stripes + 1] = { tonumber(y), c }
    end
    assert.are.equal(64, #stripes)                    -- 4 rows of 18 pixels: 72 high, in 64 stripes
    assert.are.equal('#f', stripes[1][2]:sub(1, 2))   -- yellow at the top
    assert.are.equal('#4', stripes[64][2]:sub(1, 2))  -- dark purple at the bottom
    assert.is_true(stripes[1][1] < stripes[64][1])
    for _, want in ipairs { '0.0', '0.4', '1.0', 'out' } do
      assert.is_truthy(svg:find('>' .. want .. '</text>', 1, true), want)
    end
    assert.is_falsy(svg:find('rotate', 1, true))
    -- a heatmap one row high: the two ends only
    plot.heatmap { values = usagi.tensor { { 0.25, 0.75 } }, xlabels = { 'a', ' ' }, path = p }
    svg = slurp(p)
    assert.is_truthy(svg:find('>0.25</text>', 1, true) and svg:find('>0.75</text>', 1, true), svg)
    assert.is_falsy(svg:find('> </text>', 1, true), svg)     -- ImageMagick refuses a text of blanks
  end)
end)
