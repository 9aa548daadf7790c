-- usagi.run_carry -- what a training loop of a run (usagi.run) carries from
-- one step to the next, kept by a checkpoint in the middle of the loop: the
-- checks of a loop's carry table, the tree a checkpoint holds of it, the
-- way it is put back on --resume, and the refusals of a loop that could
-- not resume to the same bits (no carry declared, or state of its own on
-- each rank under mpirun).
local usagi = require 'usagi'

local M = {}
-- The methods of usagi.run's Run that this file defines; run.lua puts them
-- into the class.
local Run = {}
M.methods = Run

-- ==== Carried state =====================================================
--
-- What a loop carries from one step to the next besides the tracked model,
-- optimizer and generator (running sums, a recurrent state, the order an
-- epoch drew at its start) shapes the rest of the run, so a checkpoint in
-- the middle of the loop must hold it. The loop declares it as a table,
-- run:progress(n, {carry = t}); a checkpoint keeps t, and on --resume
-- run:progress puts it back into the same table before the first step.

-- The frame `level` levels above the caller: "file:line" and the names of
-- its locals in scope there, the candidates for what a loop carries.
local function loop_site(level)
  level = level + 2                        -- this function, then its caller
  local info = debug.getinfo(level, 'Sl')
  if not info then return '?', {} end
  local names, seen = {}, {}
  for i = 1, 250 do
    local name = debug.getlocal(level, i)
    if not name then break end
    if not name:find('^%(') and not seen[name] then seen[name] = true; names[#names + 1] = name end
  end
  return ('%s:%d'):format(info.short_src, info.currentline), names
end

-- An object whose state a checkpoint takes through carried()/set_carried()
-- (nn.LSTM, nn.GRU, nn.RNN with carry = true).
local function carrier(v)
  return type(v) == 'table' and type(v.carried) == 'function' and type(v.set_carried) == 'function'
end

-- Every value of a carry table must be one a checkpoint can hold.
local function check_carry(fn, t, path, seen)
  seen = seen or {}
  if seen[t] then error(('%s: carry%s refers to itself; it must be a tree'):format(fn, path), 0) end
  seen[t] = true
  for k, v in pairs(t) do
    local here = ('%s.%s'):format(path, tostring(k))
    local kind = type(v)
    if carrier(v) then                     -- its own state, through carried()
    elseif kind == 'table' and getmetatable(v) == nil then check_carry(fn, v, here, seen)
    elseif not (usagi.is_tensor(v) or kind == 'number' or kind == 'string' or kind == 'boolean') then
      error(('%s: carry%s is a %s; a carried value must be a number, string, boolean, tensor, a plain '
        .. 'table of those, or a module with carried() and set_carried() (nn.LSTM, nn.GRU, nn.RNN)')
        :format(fn, here, usagi.is_tensor(v) and 'tensor' or (kind == 'table' and 'table with a metatable' or kind)), 0)
    end
  end
  seen[t] = nil
end

-- The tree a checkpoint keeps of a carry table.
local function carry_tree(t)
  local out = {}
  for k, v in pairs(t) do
    if carrier(v) then out[k] = v:carried()
    elseif type(v) == 'table' then out[k] = carry_tree(v)
    else out[k] = v end
  end
  return out
end

-- The saved tree back into the live table t, in place: the loop's code
-- holds t itself, so the table stays and its contents change.
local function load_carry(t, saved)
  for k, v in pairs(t) do
    local s = saved[k]
    if carrier(v) then v:set_carried(s)
    elseif type(v) == 'table' and not usagi.is_tensor(v) and type(s) == 'table' then load_carry(v, s)
    else t[k] = s end
  end
  for k, s in pairs(saved) do
    if t[k] == nil then t[k] = s end
  end
end

M.loop_site, M.check_carry, M.carry_tree, M.load_carry = loop_site, check_carry, carry_tree, load_carry

-- Under mpirun only rank 0 writes checkpoints, so a loop whose ranks carry
-- values of their own cannot checkpoint in its middle: refused, with them.
function Run:_carry_on_ranks(fn, carry, where)
  if not (self.world > 1 and self.every and self.saving) then return end
  local own = {}
  for k in pairs(carry) do own[#own + 1] = tostring(k) end
  if #own == 0 then return end
  table.sort(own)
  self.stopped = ('%s: under mpirun (%d ranks) a checkpoint in the middle of the loop at %s would keep '
    .. 'rank 0\'s carried state only, and every rank carries its own (%s); checkpoint at epoch ends '
    .. 'instead (--checkpoint-epochs)'):format(fn, self.world, where, table.concat(own, ', '))
  error(self.stopped, 0)
end

-- The refusal of a loop that declares no carry under checkpoint_every.
function Run:_undeclared(fn, where, names, how)
  return ('%s: the loop at %s declares no carried state, so a checkpoint every %d steps in the middle of '
    .. 'it could not resume to the same bits. Declare what it carries from one step to the next (running '
    .. 'sums, a recurrent state, an order drawn at the start of the epoch) with %s, or {carry = {}} if '
    .. 'nothing; or checkpoint at epoch ends only (--checkpoint-epochs). Candidates, the locals in scope '
    .. 'there: %s'):format(fn, where, self.every, how, table.concat(names or {}, ', '))
end

return M
