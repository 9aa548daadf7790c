-- host/ops/gen.lua -- writes the Lua binding of a family of ops from its
-- op table (host/ops/README.md describes the table):
--
--   lua5.4 host/ops/gen.lua TABLE.lua OUT.c
--
-- CMake runs it at build time, as Torch7 ran cwrap over TensorMath.lua. OUT.c
-- holds one lua_CFunction per op (and per in-place form), the argument
-- checks with the project's messages, the registration, and the table
-- itself as a Lua chunk that the opener hands to usg_lua_add_ops, so that
-- help() and tests/lua/ops_spec.lua read the same declarations the code was
-- made from. For a plugin it writes the entry point too, or, when the
-- plugin opens itself (plugin.opener = false: it has userdata or state),
-- usg_NAME_ops_open for that opener to call. Only the C of the wrappers is
-- generated; the kernels and their backwards are written by hand, with
-- their equations, beside each other in host/core.
local table_path, out_path = arg[1], arg[2]
assert(table_path and out_path, 'usage: lua5.4 host/ops/gen.lua TABLE.lua OUT.c')
local family = assert(dofile(table_path))

-- ==== Emitting C ==========================================================
local out = {}
local function emit(fmt, ...) out[#out + 1] = select('#', ...) > 0 and fmt:format(...) or fmt end

local function c_string(s)
  return '"' .. s:gsub('\\', '\\\\'):gsub('"', '\\"'):gsub('\n', '\\n') .. '"'
end

-- ==== Argument kinds ======================================================
-- Each kind says how an argument at stack index i is declared, checked and
-- recognised among overloads (sig: the code usg_lua_overload reads), and
-- what its default means when it is optional. `%i` is the index, `%n` the
-- argument's name, `%d` its default, `%of` the tensor a dim refers to.
local kinds = {
  tensor = { sig = 'T', decl = 'usg_tensor *%n', check = 'usg_lua_checktensor(L, %i)' },
  number = { sig = 'n', decl = 'double %n', check = 'luaL_checknumber(L, %i)' },
  integer = { sig = 'n', decl = 'lua_Integer %n', check = 'luaL_checkinteger(L, %i)' },
  boolean = { sig = 'b', decl = 'bool %n', check = 'usg_lua_checkboolean(L, %i)' },
  -- a tensor, or a number made a 0-dim tensor that this call owns
  scalar = { sig = 'x', decl = 'usg_tensor *%n_own = NULL, *%n',
             check = 'usg_lua_checktensor_or_number(L, %i, &%n_own)', release = '%n_own' },
  dim = { sig = 'n', decl = 'int %n', check = 'usg_lua_checkdim(L, %i, %of->ndim, 0)' },
  -- a dim that defaults to the last; a 0-dim tensor has one
  lastdim = { sig = 'n?', decl = 'int %n', check = 'usg_lua_checkdim(L, %i, %of->ndim ? %of->ndim : 1, 0)',
              default = '-1' },
  -- a dim of the result of inserting one (unsqueeze): 1..ndim + 1
  newdim = { sig = 'n', decl = 'int %n', check = 'usg_lua_checkdim(L, %i, %of->ndim, 1)' },
  -- 'f32', 'f64' or 'i32'
  dtype = { sig = 's', decl = 'usg_dtype %n', check = 'usg_lua_optdtype(L, %i, %d)' },
  -- no dim: every dim (USG_ALL_DIMS)
  optdim = { sig = 'n?', decl = 'int %n', check = 'usg_lua_optdim(L, %i, %of->ndim)',
             default = 'USG_ALL_DIMS' },
  -- the weights of a layered op, { {w1, w2, ...}, ... }: `per` tensors a
  -- layer, the first `required` of them mandatory (usg_lua_check_layers)
  layers = { sig = 't', emit = function(a, i, p)
    local names = {}
    for j, n in ipairs(a.names) do names[j] = c_string(n) end
    emit('%susg_tensor *%s[%d * 64];', p, a.name, #a.names)
    emit('%sint %s_count = usg_lua_check_layers(L, %d, %d, %d, (const char *const[]){%s}, %s, 64);',
      p, a.name, i, #a.names, a.required or #a.names, table.concat(names, ', '), a.name)
  end },
  -- a recurrent op's options: dropout and lengths, and `extra` keys the
  -- call reads itself (usg_lua_rec_opts)
  recopts = { sig = 't?', emit = function(a, i, p, fname)
    local extra = {}
    for j, n in ipairs(a.extra or {}) do extra[j] = c_string(n) end
    extra[#extra + 1] = 'NULL'
    emit('%sdouble dropout;', p)
    emit('%susg_tensor *lengths;', p)
    emit('%susg_lua_rec_opts(L, %d, %s, (const char *[]){%s}, &dropout, &lengths);', p, i,
      c_string(a.op or fname), table.concat(extra, ', '))
  end },
  -- p of a norm: a number, math.huge or 'inf', or 'fro' (2)
  norm_p = { sig = 'p', decl = 'double %n', check = 'usg_lua_checknorm_p(L, %i)' },
  -- 'f32', 'f64', 'i32' or {dtype = ...}, `default` (C) when absent
  dtypeopt = { sig = 'd', decl = 'usg_dtype %n', check = 'usg_lua_dtype_arg(L, %i, %d, %f)' },

  -- The kinds below take the rest of the arguments (`rest`): the ones
  -- declared after them are read from `at`, the index they return, and an
  -- argument left over is an error. At most one an overload.
  -- A shape: sizes as numbers (all but those of the number arguments that
  -- follow, as in full(2, 3, value)), one table or a usagi.Size, into
  -- `%n` and `%n_ndim`. `neg = true`: -1 allowed (view); `view = true`: a
  -- numel past int64 refused (a view could otherwise reach past its storage).
  shape = { sig = 'z?', rest = true, emit = function(a, i, p, fname, ctx)
    local flags = {}
    if a.neg then flags[#flags + 1] = 'USG_LUA_SHAPE_NEG' end
    if a.view then flags[#flags + 1] = 'USG_LUA_SHAPE_VIEW' end
    emit('%sint %s_ndim;', p, a.name)
    emit('%sint64_t %s[USG_MAX_DIMS];', p, a.name)
    emit('%sint at = usg_lua_shape(L, %s, %s, %d, %s, %s, &%s_ndim, %s);', p, i, ctx.last, ctx.reserve,
      #flags > 0 and table.concat(flags, ' | ') or '0', c_string(fname), a.name, a.name)
  end },
  -- every dim of the tensor `of` (a permutation): numbers or one table, into `%n`
  dims = { sig = 'z?', rest = true, emit = function(a, i, p, fname, ctx)
    emit('%sint %s[USG_MAX_DIMS];', p, a.name)
    emit('%sint at = usg_lua_dims(L, %s, %s, %s->ndim, %s, %s);', p, i, ctx.last, a.of, c_string(fname),
      a.name)
  end },
  -- a list of tensors: a table of them or the tensors themselves, into
  -- `%n` (an array) and `%n_n`; a dim `of` it refers to its first tensor
  tensors = { sig = 'L', rest = true, emit = function(a, i, p, fname, ctx)
    emit('%susg_tensor **%s;', p, a.name)
    emit('%sint %s_n;', p, a.name)
    emit('%sint at = usg_lua_tensors(L, %s, %d, &%s, &%s_n);', p, i, ctx.after, a.name, a.name)
    emit('%sint %s_ndim = %s_n ? %s[0]->ndim : 0;', p, a.name, a.name, a.name)
  end },
}

-- A plugin may add kinds of its own (family.kinds, same fields), such as
-- an argument that is one of its userdata; `test` then tells
-- tests/lua/ops_spec.lua how to make a value (`make`, Lua source of a
-- function given the module) and which value to refuse (`bad`).
for k, v in pairs(family.kinds or {}) do kinds[k] = v end

local function subst(s, a, i, fname)
  return (s:gsub('%%of%->ndim', a.ofndim or '?'):gsub('%%of', a.of or '?'):gsub('%%n', a.name)
    :gsub('%%i', tostring(i)):gsub('%%d', tostring(a.default)):gsub('%%f', c_string(fname or '?')))
end

-- The argument list of an overload: {kind, name, default = C, of = dim's tensor}.
local function args_of(o)
  local out = {}
  for i, a in ipairs(o.args or {}) do
    local k = a.options and 'options' or a[1]
    assert(k == 'options' or kinds[k], ('%s: unknown argument kind %s'):format(table_path, k))
    out[i] = { kind = k, name = a[2] or a.name, default = a.default, of = a.of,
      options = a.options, trailing = a.trailing, names = a.names, required = a.required,
      extra = a.extra, op = a.op, neg = a.neg, view = a.view }
  end
  -- a dim of a list of tensors is checked against the first one's ndim
  for _, a in ipairs(out) do
    for _, b in ipairs(out) do
      if a.of and b.name == a.of then a.ofndim = b.kind == 'tensors' and a.of .. '_ndim' or a.of .. '->ndim' end
    end
  end
  return out
end

local function sig_of(args)
  local s = {}
  for _, a in ipairs(args) do
    local code = a.kind == 'options' and 't' or kinds[a.kind].sig
    if (a.default ~= nil or a.kind == 'options') and not code:find('?', 1, true) then
      code = code .. '?'
    end
    s[#s + 1] = code
    if kinds[a.kind] and kinds[a.kind].rest then break end  -- what follows has no fixed place
  end
  return table.concat(s)
end

-- ==== Emitting C (continued) ============================================
-- The body of one overload, `fname` the name errors give (add, add_).
local function body(fname, o, args, inplace, indent)
  local p = indent
  -- An in-place form, or an op declared to return its first argument
  -- (scatter_add_), writes into that argument: refused when it requires grad.
  local returns = inplace and 'self' or (o.returns or 'tensor')
  local writes_self = returns == 'self'
  local trailing, rest
  for i, a in ipairs(args) do
    if a.trailing then trailing = i end
    if kinds[a.kind] and kinds[a.kind].rest then
      assert(not rest, ('%s: %s takes two rests'):format(table_path, fname))
      rest = i
    end
  end
  if trailing or rest then emit('%sint top = lua_gettop(L);', p) end
  -- The stack index of argument i, a C expression: after a rest, counted
  -- from the index it returns (`at`).
  local function pos(i)
    if not rest or i <= rest then return tostring(i) end
    return i == rest + 1 and 'at' or ('at + %d'):format(i - rest - 1)
  end
  local release = {}
  -- A trailing options table is taken off the top first: the optional
  -- arguments before it are then read only as far as they were given.
  local function options(i, a)
    local names, codes, ptrs = {}, {}, {}
    local ctype = { number = 'double', integer = 'int', boolean = 'bool', tensor = 'usg_tensor *',
      choice = 'const char *', dtype = 'usg_dtype' }
    local code = { number = 'n', integer = 'i', boolean = 'b', tensor = 'T', choice = 's', dtype = 'd' }
    local choices = {}
    for j, f in ipairs(a.options) do
      assert(code[f[1]], ('%s: option %s of %s: unknown kind %s'):format(table_path, f[2], fname, f[1]))
      -- a choice is read as a string, then named by its index (f.c_type)
      local var = f[1] == 'choice' and f[2] .. '_name' or f[2]
      names[j], codes[j], ptrs[j] = c_string(f[2]), code[f[1]], '&' .. var
      local default = f.default
      if default == nil or f[1] == 'choice' then
        default = (f[1] == 'tensor' or f[1] == 'choice') and 'NULL' or f[1] == 'boolean' and 'false' or '0'
      end
      emit('%s%s%s%s = %s;', p, ctype[f[1]], ctype[f[1]]:sub(-1) == '*' and '' or ' ', var, tostring(default))
      if f[1] == 'choice' then choices[#choices + 1] = f end
    end
    local first = i
    for j, b in ipairs(args) do
      if b.default ~= nil or (kinds[b.kind] or {}).default ~= nil then first = math.min(first, j) end
    end
    local at = trailing == i and 'top' or pos(i)
    local cond = trailing == i and ('top >= %d && lua_istable(L, top)'):format(first)
      or ('!lua_isnoneornil(L, %s)'):format(pos(i))
    -- after a rest, a last table is the options unless it is the rest's
    -- one table ({2, 3}) or a usagi.Size: rand{2, 3}, rand({dtype = 'f64'})
    if trailing == i and rest then cond = ('usg_lua_trailing_options(L, top, %d)'):format(rest) end
    emit('%sif (%s) {', p, cond)
    emit('%s    usg_lua_options(L, %s, %s, (const char *const[]){%s, NULL}, "%s",', p, at,
      c_string(fname), table.concat(names, ', '), table.concat(codes))
    emit('%s                    (void *const[]){%s});', p, table.concat(ptrs, ', '))
    if trailing == i then emit('%s    top--;', p) end
    emit('%s}', p)
    for _, f in ipairs(choices) do
      local list = {}
      for k, c in ipairs(f.choices) do list[k] = c_string(c) end
      emit('%s%s %s = (%s)usg_lua_choice(L, %s, %s, %s_name, (const char *const[]){%s, NULL}, %d);', p,
        f.c_type or 'int', f[2], f.c_type or 'int', c_string(fname), c_string(f[2]), f[2],
        table.concat(list, ', '), f.default or 0)
    end
  end
  if trailing then options(trailing, args[trailing]) end
  for i, a in ipairs(args) do
    if a.kind == 'options' then
      if trailing ~= i then options(i, a) end
    else
      local k = kinds[a.kind]
      if k.emit then
        -- what a rest reads up to, the number arguments after it that
        -- it leaves (reserve), and how many are declared after it
        local reserve = 0
        for j = i + 1, #args do
          local b = args[j]
          if (b.kind == 'number' or b.kind == 'integer') and b.default == nil then reserve = reserve + 1 end
        end
        k.emit(a, tonumber(pos(i)) or pos(i), p, fname, { last = 'top', reserve = reserve, after = #args - i })
        goto next
      end
      local check = subst(k.check, a, pos(i), fname)
      local default = a.default or k.default
      local value = check
      if default ~= nil then
        local absent = trailing and ('(%s > top || lua_isnil(L, %s))'):format(pos(i), pos(i))
          or ('lua_isnoneornil(L, %s)'):format(pos(i))
        value = ('%s ? %s : %s'):format(absent, default, check)
      end
      if a.kind == 'scalar' then
        emit('%s%s;', p, subst(k.decl, a, i))
        emit('%s%s = %s;', p, a.name, value)
      else
        emit('%s%s = %s;', p, subst(k.decl, a, i), value)
      end
      if k.release then release[#release + 1] = subst(k.release, a, i) end
    end
    ::next::
  end
  if rest then
    local last = args[#args].trailing and #args - 1 or #args
    emit('%susg_lua_check_end(L, %s, top, %s);', p, pos(last + 1),
      c_string(rest == last and args[rest].name or ''))
  end
  if o.pre then emit('%s%s', p, (o.pre:gsub('\n', '\n' .. p))) end
  local call = inplace and o.inplace or o.call
  if type(returns) == 'table' then
    local names = {}
    for j = 1, #returns do names[j] = '*r' .. j .. ' = NULL' end
    emit('%susg_tensor %s;', p, table.concat(names, ', '))
  elseif returns == 'tensor' then emit('%susg_tensor *r = NULL;', p)
  elseif returns == 'boolean' then emit('%sbool ok = false;', p)
  elseif returns == 'index' then emit('%susg_tensor *ix = NULL;', p)
  elseif returns == 'values_indices' then emit('%susg_tensor *v = NULL, *ix = NULL;', p)
  elseif returns == 'number' or returns == 'integer' then
    -- call is the C expression of the value: a computation that cannot fail
    assert(#release == 0, table_path .. ': ' .. fname .. ' returns a number and owns a temporary')
    emit('%slua_push%s(L, (lua_%s)(%s));', p, returns, returns == 'number' and 'Number' or 'Integer',
      o.call)
    emit('%sreturn 1;', p)
    return
  elseif returns == 'list' then emit('%susg_lua_list *list = usg_lua_newlist(L);', p)
  end
  if writes_self and o.check_inplace ~= false then
    emit('%sUSG_LUA_TRY(L, usg_check_inplace(%s, %s));', p, args[1].name, c_string(fname))
  end
  -- errors_as: the core's message is given the op's name (t:int() says int)
  local try = o.errors_as and ('if ((%%s) != USG_OK) usg_lua_error_as(L, %s);'):format(c_string(o.errors_as))
    or 'USG_LUA_TRY(L, %s);'
  if #release > 0 then
    emit('%susg_status s = %s;', p, call)
    for _, r in ipairs(release) do emit('%susg_tensor_release(%s);', p, r) end
    emit('%s' .. try, p, 's')
  else
    emit('%s' .. try, p, call)
  end
  if type(returns) == 'table' then
    for j = 1, #returns do
      -- 'tensor?': nil when the call gives none (dropout's mask in evaluation)
      if returns[j] == 'tensor?' then emit('%sif (!r%d) lua_pushnil(L); else', p, j) end
      emit('%susg_lua_pushtensor(L, r%d);', p, j)
    end
    emit('%sreturn %d;', p, #returns)
  elseif returns == 'list' then
    emit('%sreturn usg_lua_pushlist(L, list);', p)
  elseif returns == 'tensor' then
    emit('%susg_lua_pushtensor(L, r);', p)
    emit('%sreturn 1;', p)
  elseif returns == 'boolean' then
    emit('%slua_pushboolean(L, ok);', p)
    emit('%sreturn 1;', p)
  elseif returns == 'index' then
    emit('%susg_lua_push_index(L, ix, %s, %s);', p, o.dim or 'dim', o.keepdim or 'keepdim')
    emit('%sreturn 1;', p)
  elseif returns == 'values_indices' then
    emit('%susg_lua_pushtensor(L, v);', p)
    emit('%susg_lua_push_index(L, ix, %s, %s);', p, o.dim or 'dim', o.keepdim or 'keepdim')
    emit('%sreturn 2;', p)
  elseif returns == 'self' or returns == 'first' then
    -- first: the first argument, written in place by a call autograd does
    -- not see (a collective), so a tensor that requires grad is taken
    emit('%slua_settop(L, 1);', p)
    emit('%sreturn 1;', p)
  else
    error(('%s: %s returns %s, which gen.lua does not know'):format(table_path, fname, returns))
  end
end

-- One lua_CFunction: c_name, for the op `fname`, over its overloads.
local function wrapper(c_name, fname, overloads, inplace)
  emit('static int %s(lua_State *L)', c_name)
  emit('{')
  if #overloads == 1 then
    body(fname, overloads[1], args_of(overloads[1]), inplace, '    ')
  else
    local sigs = {}
    for i, o in ipairs(overloads) do sigs[i] = c_string(sig_of(args_of(o))) end
    emit('    static const char *const sigs[] = {%s, NULL};', table.concat(sigs, ', '))
    emit('    switch (usg_lua_overload(L, sigs)) {')
    for i, o in ipairs(overloads) do
      emit('    case %d: {', i - 1)
      body(fname, o, args_of(o), inplace, '        ')
      emit('    }')
    end
    emit('    }')
    emit('    return 0;')
  end
  emit('}')
  emit('')
end

-- ==== Serialising the table for the binding =============================
local function serialise(v, indent)
  local t = type(v)
  if t == 'nil' then return 'nil'
  elseif t == 'string' then return ('%q'):format(v)
  elseif t == 'number' or t == 'boolean' then return tostring(v)
  elseif t == 'table' then
    local parts, n = {}, #v
    for i = 1, n do parts[#parts + 1] = serialise(v[i], indent) end
    local keys = {}
    for k in pairs(v) do
      if not (math.type(k) == 'integer' and k >= 1 and k <= n) then keys[#keys + 1] = k end
    end
    table.sort(keys)
    for _, k in ipairs(keys) do
      parts[#parts + 1] = ('%s = %s'):format(k, serialise(v[k], indent))
    end
    return '{' .. table.concat(parts, ', ') .. '}'
  end
  error('cannot serialise a ' .. t)
end

-- What the binding keeps of an op: no C, only what help and the tests read.
local function declaration(op)
  local d = { name = op.name, errname = op.errname, doc = op.doc, forms = op.forms, grad = op.grad,
    dtypes = op.dtypes, test = op.test, overloads = {}, inplace = op.inplace and true or nil,
    class = op.class, aliases = op.aliases }
  for i, o in ipairs(op.overloads) do
    local args = {}
    for j, a in ipairs(args_of(o)) do
      local fields
      if a.options then
        fields = {}
        for k, f in ipairs(a.options) do fields[k] = { f[1], f[2], default = f.default } end
      end
      args[j] = { a.kind, a.name, optional = (a.default ~= nil or (kinds[a.kind] or {}).default ~= nil
        or a.kind == 'options' or a.kind == 'recopts') or nil, options = fields, names = a.names,
        required = a.required, test = (kinds[a.kind] or {}).test }
    end
    d.overloads[i] = { args = args, returns = o.returns or 'tensor', dtypes = o.dtypes }
  end
  return d
end

-- ==== The file ============================================================
emit('/*')
emit(' * Generated by host/ops/gen.lua from %s: do not edit.', table_path:match('host/.*$')
  or table_path:match('modules/.*$') or table_path)
emit(' * %s', family.about or ('The Lua binding of the ' .. family.name .. ' ops.'))
emit(' */')
emit('#include <math.h>')
emit('#include <stdbool.h>')
emit('')
for _, h in ipairs(family.includes or { 'usagi/lua.h', 'usagi/autograd.h' }) do
  emit('#include "%s"', h)
end
emit('')

-- The dtype rules an op may declare (host/ops/README.md): which dtypes its
-- tensors take and what its result is. The kernels enforce them; the
-- declaration is what help() shows and tests/lua/ops_spec.lua checks.
local DTYPE_RULES = { float = true, any = true, to_float = true, f32 = true, f64 = true, i32 = true }

local regs = { usagi = {}, both = {}, method = {}, classes = {} }
for _, op in ipairs(family.ops) do
  if op.call then op.overloads = { { args = op.args, call = op.call, returns = op.returns,
    inplace = op.inplace, dim = op.dim, keepdim = op.keepdim, pre = op.pre,
    errors_as = op.errors_as, check_inplace = op.check_inplace } } end
  -- the op's rule, and an overload's own where it has one
  for _, rule in ipairs { op.dtypes, table.unpack(op.overloads) } do
    if type(rule) == 'table' then rule = rule.dtypes or op.dtypes end
    if not DTYPE_RULES[rule] then
      error(('%s: %s: dtypes must be one of float, any, to_float, f32, f64, i32; got %s')
        :format(table_path, op.name, tostring(rule)), 0)
    end
  end
  op.forms = op.forms or { 'usagi', 'method' }
  local c_name = 'op_' .. op.name   -- luaconf.h takes l_floor
  wrapper(c_name, op.errname or op.name, op.overloads, false)
  local fn, me = false, false
  for _, f in ipairs(op.forms) do
    if f == 'usagi' then fn = true
    elseif f == 'method' then me = true
    else regs.method[#regs.method + 1] = { f, c_name } end  -- an operator such as __add
  end
  local list = fn and me and regs.both or fn and regs.usagi or regs.method
  if op.class then
    -- a method of a plugin's userdata (plugin.opener = false): the
    -- metatable the plugin's own opener made
    assert(family.plugin and me and not fn, table_path .. ': ' .. op.name
      .. ': a class op is a method of a plugin\'s userdata')
    local cls = regs.classes[op.class]
    if not cls then
      cls = { name = op.class, var = 'class' .. (#regs.classes + 1) .. '_fns' }
      regs.classes[op.class], regs.classes[#regs.classes + 1] = cls, cls
    end
    cls[#cls + 1] = { op.name, c_name }
  elseif fn or me then
    list[#list + 1] = { op.name, c_name }
    -- Torch7's names (t:copy for t:copy_): methods calling the same function
    for _, alias in ipairs(op.aliases or {}) do regs.method[#regs.method + 1] = { alias, c_name } end
  end
  local inplace = {}
  for _, o in ipairs(op.overloads) do if o.inplace then inplace[#inplace + 1] = o end end
  if #inplace > 0 then
    op.inplace = true
    wrapper(c_name .. '_', (op.errname or op.name) .. '_', inplace, true)
    regs.method[#regs.method + 1] = { op.name .. '_', c_name .. '_' }
  end
end

for _, which in ipairs(family.plugin and { 'usagi' } or { 'usagi', 'both', 'method' }) do
  emit('static const luaL_Reg %s_fns[] = {', which)
  for _, r in ipairs(regs[which]) do emit('    {"%s", %s},', r[1], r[2]) end
  emit('    {NULL, NULL}};')
  emit('')
end
for _, cls in ipairs(regs.classes) do
  emit('static const luaL_Reg %s[] = {', cls.var)
  for _, r in ipairs(cls) do emit('    {"%s", %s},', r[1], r[2]) end
  emit('    {NULL, NULL}};')
  emit('')
end

local decls = {}
for i, op in ipairs(family.ops) do decls[i] = declaration(op) end
local chunk = 'return ' .. serialise { family = family.name, ops = decls }
emit('/* The table this file was made from, for help() and the tests. */')
emit('static const char declarations[] =')
for i = 1, #chunk, 96 do emit('    %s', c_string(chunk:sub(i, i + 95))) end
emit('    ;')
emit('')
if family.plugin and family.plugin.opener == false then
  -- A plugin with an opener of its own (userdata, state): it calls this
  -- with its module table once usg_lua_plugin_open made it, after making
  -- the metatables its class ops go into.
  assert(#regs.both == 0 and #regs.method == 0, table_path .. ': a plugin op is a function of its module')
  emit('int usg_%s_ops_open(lua_State *L, int module);', family.name)
  emit('')
  emit('/* [..] -> [..]: the ops of %s into the module table at `module` and the', family.name)
  emit(' * metatables of their classes; their declarations into usagi.op_table(). */')
  emit('int usg_%s_ops_open(lua_State *L, int module)', family.name)
  emit('{')
  emit('    module = lua_absindex(L, module);')
  emit('    lua_pushvalue(L, module);                       /* [.., M] */')
  emit('    luaL_setfuncs(L, usagi_fns, 0);')
  emit('    lua_pop(L, 1);')
  for _, cls in ipairs(regs.classes) do
    emit('    if (luaL_getmetatable(L, %s) != LUA_TTABLE)   /* [.., mt] */', c_string(cls.name))
    emit('        return luaL_error(L, "usagi.%s: make the metatable %s before usg_%s_ops_open");',
      family.name, cls.name, family.name)
    emit('    luaL_setfuncs(L, %s, 0);', cls.var)
    emit('    lua_pop(L, 1);')
  end
  emit('    usg_lua_add_ops(L, %s, declarations, sizeof declarations - 1);', c_string(family.name))
  emit('    return 0;')
  emit('}')
elseif family.plugin then
  -- A plugin's entry point: its ops join usagi.op_table(), then the
  -- plugin opens as every plugin does (usg_lua_plugin_open).
  assert(#regs.both == 0 and #regs.method == 0 and #regs.classes == 0,
    table_path .. ': a plugin op is a function of its module (a method of a class needs opener = false)')
  emit('USG_API int luaopen_usagi_%s(lua_State *L)', family.name)
  emit('{')
  emit('    usg_lua_add_ops(L, %s, declarations, sizeof declarations - 1);', c_string(family.name))
  emit('    return USG_PLUGIN_OPEN(L, %s, %s, usagi_fns);', c_string(family.name),
    c_string(family.plugin.version))
  emit('}')
else
  emit('/* [module] -> [module]: the functions, methods and operators of the %s ops. */',
    family.name)
  emit('int %s(lua_State *L)', family.opener)
  emit('{')
  emit('    usg_lua_register(L, usagi_fns, 1, 0);')
  emit('    usg_lua_register(L, both_fns, 1, 1);')
  emit('    usg_lua_register(L, method_fns, 0, 1);')
  emit('    usg_lua_add_ops(L, %s, declarations, sizeof declarations - 1);', c_string(family.module or 'usagi'))
  emit('    return 0;')
  emit('}')
end
local f = assert(io.open(out_path .. '.tmp', 'w'))
f:write(table.concat(out, '\n'), '\n')
f:close()
assert(os.rename(out_path .. '.tmp', out_path))
