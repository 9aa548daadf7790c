-- helpers.lua -- small assertion helpers shared by the busted specs in
-- tests/lua. Specs load it with `local h = dofile('tests/lua/helpers.lua')`
-- (they run from the repository root). Only helpers that several specs use
-- in the same form live here; a spec's own variants stay in that spec.
local usagi = require 'usagi'
-- dofile runs outside busted's spec environment: take luassert directly
local assert = require 'luassert'

local h = {}

local inf = math.huge

-- f() raises an error whose message contains each of the needles (plain
-- find); f is called once.
function h.raises(f, ...)
  local ok, msg = pcall(f)
  assert.is_false(ok, 'no error')
  msg = tostring(msg)
  for _, needle in ipairs { ... } do
    assert.is_truthy(msg:find(needle, 1, true), ('"%s" lacks "%s"'):format(msg, needle))
  end
end

-- f raises an error whose message contains `text` (plain).
function h.fails(f, text)
  local ok, msg = pcall(f)
  assert.is_false(ok, 'no error')
  assert.is_truthy(tostring(msg):find(text, 1, true),
    ('message "%s" lacks "%s"'):format(tostring(msg), text))
end

-- A string quoted for the shell.
function h.quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- A new empty directory, and removing one with all it holds.
function h.tmpdir()
  local p = os.tmpname()
  os.remove(p)
  usagi.sys.mkdir(p)
  return p
end

function h.rmrf(p) os.execute('rm -rf ' .. h.quote(p)) end

-- Whether data file rel (usagi.data.path) is on this machine; when not, the
-- test is skipped with the reason printed (a newcomer's machine lacks it,
-- CI has it).
function h.have_data(rel, what)
  local ok, why = pcall(require('usagi.data').path, rel)
  if not ok then print('\n  skipped ' .. what .. ': ' .. tostring(why)) end
  return ok
end

-- A function that makes the tensors it gets the parameters of module m (in
-- m:named_parameters() order, as fields of their modules): for gradcheck
-- through a whole model, since gradcheck passes its own copies of inputs.
function h.installer(m)
  local named = m:named_parameters()
  return function(...)
    for k, t in ipairs { ... } do
      local owner, path = m, {}
      for part in named[k][1]:gmatch('[^.]+') do path[#path + 1] = part end
      for i = 1, #path - 1 do owner = owner[path[i]] end
      owner[path[#path]] = t
    end
  end
end

-- A fixture's tensor, { shape = {...}, data = {...} } (row-major), as a tensor.
function h.tensor_of(spec, dtype)
  return usagi.tensor(spec.data, { dtype = dtype or 'f64' }):view(spec.shape)
end

-- The largest |a - b| of two tensors of one shape, in f64.
function h.maxdiff(a, b)
  assert.are.equal(tostring(a:size()), tostring(b:size()))
  return (a:double() - b:double()):abs():max():item()
end

-- A case of tests/reference/*_fixture.lua (PyTorch) run in dtype: its x and
-- initial states (h0, and c0 for an LSTM) become leaves requiring grad;
-- forward(x, states) returns out, the final states {h_n [, c_n]} and a
-- function from a PyTorch parameter name to the tensor it used. Outputs,
-- final states and, after the fixture's loss L = sum(out * r_out) +
-- sum(h_n * r_hn) [+ sum(c_n * r_cn)], every gradient must agree within tol.
function h.check_fixture(case, dtype, tol, forward)
  local names = case.c0 and { 'h', 'c' } or { 'h' }
  local x = h.tensor_of(case.x, dtype):requires_grad(true)
  local s0 = {}
  for k, n in ipairs(names) do s0[k] = h.tensor_of(case[n .. '0'], dtype):requires_grad(true) end
  local out, fin, weight = forward(x, s0)
  assert.is_true(h.maxdiff(out, h.tensor_of(case.out)) < tol, 'out')
  local loss = (out * h.tensor_of(case.r_out, dtype)):sum()
  for k, n in ipairs(names) do
    assert.is_true(h.maxdiff(fin[k], h.tensor_of(case[n .. '_n'])) < tol, n .. '_n')
    loss = loss + (fin[k] * h.tensor_of(case['r_' .. n .. 'n'], dtype)):sum()
  end
  loss:backward()
  assert.is_true(h.maxdiff(x.grad, h.tensor_of(case.grad_x)) < tol, 'grad x')
  for k, n in ipairs(names) do
    assert.is_true(h.maxdiff(s0[k].grad, h.tensor_of(case['grad_' .. n .. '0'])) < tol, 'grad ' .. n .. '0')
  end
  for name, spec in pairs(case.grads) do
    assert.is_true(h.maxdiff(weight(name).grad, h.tensor_of(spec)) < tol, name)
  end
end

-- The fixture's weights for an op's per-layer list: { {w_ih, w_hh, b_ih,
-- b_hh}, ... } as leaves in dtype, and the lookup by PyTorch name.
function h.fixture_weights(case, dtype)
  local ws, by_name = {}, {}
  for l = 0, case.num_layers - 1 do
    ws[l + 1] = {}
    for k, n in ipairs { 'weight_ih', 'weight_hh', 'bias_ih', 'bias_hh' } do
      local t = h.tensor_of(case.weights[n .. '_l' .. l], dtype):requires_grad(true)
      ws[l + 1][k], by_name[n .. '_l' .. l] = t, t
    end
  end
  return ws, function(name) return by_name[name] end
end

-- The float inputs of a recurrent op's call as one list for gradcheck: x,
-- the initial states present (states[1..n], nil for absent), then every
-- weight present in each layer's list (up to 7 a layer, holes allowed).
function h.flat_inputs(x, states, n, ws)
  local list = { x }
  for k = 1, n do if states[k] then list[#list + 1] = states[k] end end
  for _, w in ipairs(ws) do
    for k = 1, 7 do if w[k] then list[#list + 1] = w[k] end end
  end
  return list
end

-- The inverse: x, the states (has[k]: state k is in the list) and layers
-- with the same holes as ws, from such a list.
function h.unflatten(list, has, ws)
  local i = 0
  local function take() i = i + 1; return list[i] end
  local x, states, out = take(), {}, {}
  for k = 1, #has do states[k] = has[k] and take() or nil end
  for l, w in ipairs(ws) do
    out[l] = {}
    for k = 1, 7 do if w[k] then out[l][k] = take() end end
  end
  return x, states, out
end

-- A nested table of numbers flattened in row-major order (appended to out).
function h.flat(x, out)
  out = out or {}
  if type(x) ~= 'table' then out[#out + 1] = x; return out end
  for _, v in ipairs(x) do h.flat(v, out) end
  return out
end

-- Lists got and want have the same length and each got[i] is within tol of
-- want[i], relative to 1 + |want[i]|; `what` prefixes the failure message.
function h.near_list(got, want, tol, what)
  assert.equal(#want, #got)
  for i = 1, #want do
    assert.is_true(math.abs(got[i] - want[i]) <= tol * (1 + math.abs(want[i])),
      ('%s element %d: got %.17g, want %.17g'):format(what or '', i, got[i], want[i]))
  end
end

-- The shape of tensor t as a plain table.
function h.shape(t)
  local s = {}
  for i = 1, t:dim() do s[i] = t:size(i) end
  return s
end

-- got is within tol (default 1e-5) of want, relative to 1 + |want|; a NaN
-- want needs a NaN, an infinite want must be hit exactly. A 0-dim tensor got
-- is read with :item(). `what` prefixes the failure message.
function h.near_nan(want, got, tol, what)
  tol = tol or 1e-5
  if usagi.is_tensor(got) then got = got:item() end
  if want ~= want then
    assert.is_true(got ~= got, ('%swant NaN, got %s'):format(what or '', tostring(got)))
  elseif want == inf or want == -inf then
    assert.are.equal(want, got, what)
  else
    assert.is_true(math.abs(got - want) <= tol * (1 + math.abs(want)),
                   ('%swant %.10g, got %.10g'):format(what or '', want, got))
  end
end

-- t is a tensor of dtype dt, shape sh and the flat (row-major) values vals,
-- each within tol by near_nan.
function h.expect(t, dt, sh, vals, tol)
  assert.is_true(usagi.is_tensor(t))
  assert.are.equal(dt, t:dtype())
  assert.are.same(sh, h.shape(t))
  local flat = t:dim() == 0 and { t:item() } or t:reshape(-1):totable()
  assert.are.equal(#vals, #flat)
  for i = 1, #vals do h.near_nan(vals[i], flat[i], tol, ('[%d] '):format(i)) end
end

-- usagi args... -> exit code, stdout and stderr together
function h.usagi_cli(...)
  local parts = { h.quote(usagi.sys.exe()) }
  for _, a in ipairs { ... } do parts[#parts + 1] = h.quote(a) end
  local p = io.popen(table.concat(parts, ' ') .. ' 2>&1')
  local out = p:read('a')
  local _, _, code = p:close()
  return code, out
end

-- usagi args... under a file-size limit of kb KiB, which fails writes as a
-- full disk does (EFBIG for ENOSPC) without a mount -> how, code, output.
function h.usagi_limited(kb, ...)
  local parts = { ("trap '' XFSZ; ulimit -f %d; exec"):format(kb), h.quote(usagi.sys.exe()) }
  for _, a in ipairs { ... } do parts[#parts + 1] = h.quote(a) end
  local p = io.popen('bash -c ' .. h.quote(table.concat(parts, ' ') .. ' 2>&1'))
  local text = p:read('a')
  local _, how, code = p:close()
  return how, code, text
end

-- path -> tensor (a list for a dataset of strings) for every dataset in the file
function h.datasets(path)
  local out = {}
  local f <close> = usagi.h5.open(path, 'r')
  local function walk(g)
    for _, name in ipairs(f:list(g)) do
      local p = (g == '/' and '' or g) .. '/' .. name
      if f:kind(p) == 'group' then walk(p)
      elseif f:dtype(p) == 'string' then out[p] = f:read_strings(p)
      else out[p] = f:read(p) end
    end
  end
  walk('/')
  return out
end

-- The same datasets, shapes, dtypes and bits (exact; NaN matches NaN), as
-- many as the number returned. skip(name), when given, leaves out the
-- datasets it is true for (timings); the times of the metrics (/seconds/<k>
-- in results.h5, /metrics/<k>/seconds in a checkpoint) are always left out.
-- what names the comparison in errors.
function h.assert_same_datasets(a, b, skip, what)
  what = what and what .. ': ' or ''
  local da, db = h.datasets(a), h.datasets(b)
  for _, d in ipairs { da, db } do
    for k in pairs(d) do
      -- when each value was logged, which no seed repeats
      if (skip and skip(k)) or k:find('^/seconds/') or k:find('^/metrics/[^/]+/seconds$') then d[k] = nil end
    end
  end
  local names = {}
  for k in pairs(da) do names[#names + 1] = k end
  table.sort(names)
  assert.is_true(#names >= 2, what .. 'too few datasets: ' .. table.concat(names, ' '))
  for _, k in ipairs(names) do
    local x, y = da[k], db[k]
    assert.is_truthy(y, what .. k .. ' is missing from ' .. b)
    if type(x) == 'table' then                 -- strings: the same list
      assert.are.same(x, y, what .. k)
      goto next
    end
    assert.are.equal(x:dtype(), y:dtype(), what .. k)
    assert.are.same(x:size(), y:size(), what .. k)
    local xs, ys = x:reshape(-1), y:reshape(-1)
    for j = 1, xs:numel() do
      local v, w = xs[j], ys[j]
      if v ~= w and not (v ~= v and w ~= w) then
        error(('%s%s differs at element %d: %.17g in %s, %.17g in %s'):format(what, k, j, v, a, w, b), 0)
      end
    end
    ::next::
  end
  for k in pairs(db) do assert.is_truthy(da[k], what .. k .. ' is only in ' .. b) end
  return #names
end

-- Runs gen, one of the generators of host/ops (gen.lua or gen_ad.lua),
-- over a table given as Lua source, as CMake runs it: true and what it
-- wrote, or false and its error.
function h.generate(gen, source, ext)
  local base = os.tmpname()
  local tbl, out = base .. '.lua', base .. (ext or '.c')
  local f = assert(io.open(tbl, 'w'))
  f:write(source)
  f:close()
  local saved = _G.arg                     -- the generators read the global arg, as lua5.4 sets it
  _G.arg = { tbl, out }
  local ok, err = pcall(dofile, 'host/ops/' .. gen)
  _G.arg = saved
  os.remove(tbl)
  os.remove(base)
  local c
  if ok then
    f = assert(io.open(out))
    c = f:read('a')
    f:close()
    os.remove(out)
  end
  return ok, ok and c or tostring(err)
end

return h
