-- usagi.compare -- the table of `usagi compare` and of the end of a sweep,
-- and the labels `usagi plot` gives runs: what sets runs apart (their
-- experiment, the config keys whose values differ, the seed) and their
-- final metrics. Runs of one combination that differ only in their seed
-- are folded into one row of mean ± std over the seeds, with n.
--
-- It reads nothing itself: the runs come loaded by usagi.cli (load_run).
local M = {}

-- The mark of a value a run does not have (a config key, a metric).
M.ABSENT = '-'

-- fmt(v) -> v as a table cell: integers whole, other numbers to 6 digits.
function M.fmt(v)
  if v == nil then return M.ABSENT end
  if type(v) == 'number' then
    if math.type(v) == 'integer' then return tostring(v) end
    if v ~= v or v == math.huge or v == -math.huge then return tostring(v) end
    return ('%.6g'):format(v)
  end
  return tostring(v)
end

-- Width of a cell on the terminal: UTF-8 characters, not bytes (±).
local function width(s) return utf8.len(s) or #s end

-- print_table(header, rows): a header row, a rule, and the rows, each
-- column padded to its widest cell.
function M.print_table(header, rows)
  local w = {}
  for _, row in ipairs({ header, table.unpack(rows) }) do
    for j, cell in ipairs(row) do w[j] = math.max(w[j] or 0, width(cell)) end
  end
  local function line(row)
    local cells = {}
    for j, cell in ipairs(row) do cells[j] = cell .. (' '):rep(w[j] - width(cell)) end
    print((table.concat(cells, '  '):gsub('%s+$', '')))
  end
  line(header)
  local rule = {}
  for j = 1, #header do rule[j] = ('-'):rep(w[j]) end
  line(rule)
  for _, row in ipairs(rows) do line(row) end
end

-- ==== What sets runs apart ===============================================

-- value(run, key) -> the run's value of a config key; 'seed' is the run's
-- seed when the config has no key of that name.
function M.value(r, k)
  local v = r.config[k]
  if v == nil and k == 'seed' then v = r.attrs.seed end
  return v
end

-- differing(runs [, with_seed]) -> the config keys whose values are not the
-- same in all the runs, sorted, then 'seed' when the seeds differ and
-- with_seed is not false.
function M.differing(runs, with_seed)
  local keys, out = {}, {}
  for _, r in ipairs(runs) do for k in pairs(r.config) do keys[k] = true end end
  if with_seed ~= false then keys.seed = true end
  for k in pairs(keys) do
    local first = M.fmt(M.value(runs[1], k))
    for _, r in ipairs(runs) do
      if M.fmt(M.value(r, k)) ~= first then out[#out + 1] = k; break end
    end
  end
  table.sort(out, function(a, b)
    if (a == 'seed') ~= (b == 'seed') then return b == 'seed' end
    return a < b
  end)
  return out
end

-- less(a, b): strings compared with their runs of digits as numbers, so
-- "hidden=8" comes before "hidden=16" and "lr=0.001" before "lr=0.01".
function M.less(a, b)
  local function parts(s)
    local out = {}
    for text, num in tostring(s):gmatch('([^%d]*)([%d%.]*)') do
      if text ~= '' then out[#out + 1] = text end
      if num ~= '' then out[#out + 1] = tonumber(num) or num end
    end
    return out
  end
  local pa, pb = parts(a), parts(b)
  for i = 1, math.max(#pa, #pb) do
    local x, y = pa[i], pb[i]
    if x == nil then return true end
    if y == nil then return false end
    if x ~= y then
      if type(x) == type(y) then return x < y end
      return type(x) == 'number'
    end
  end
  return false
end

-- ==== Statistics =========================================================

-- The last value of a metric, nil when it has none.
local function last(r, k)
  local m = r.metrics[k]
  local n = m and m.values:numel() or 0
  return n > 0 and m.values[n] or nil
end

-- mean and sample standard deviation (n - 1) of a list; std nil when n < 2.
function M.mean_std(xs)
  local n, s = #xs, 0
  for _, x in ipairs(xs) do s = s + x end
  local mean = s / n
  if n < 2 then return mean, nil end
  local ss = 0
  for _, x in ipairs(xs) do ss = ss + (x - mean) ^ 2 end
  return mean, math.sqrt(ss / (n - 1))
end

-- "mean ± std": the mean to 4 significant digits, the spread to 2; the
-- value alone when all are the same (an epoch count, a size).
local function fmt_mean(xs)
  local mean, std = M.mean_std(xs)
  if not std or std == 0 then return M.fmt(xs[1]) end
  return ('%.4g ± %.2g'):format(mean, std)
end

-- "3 ok", "2 ok, 1 error": how the runs of a row ended.
local function status_counts(runs)
  local counts, order = {}, {}
  for _, r in ipairs(runs) do
    local s = r.unreadable and 'unreadable' or tostring(r.attrs.status or '?')
    if not counts[s] then counts[s] = 0; order[#order + 1] = s end
    counts[s] = counts[s] + 1
  end
  local out = {}
  for _, s in ipairs(order) do out[#out + 1] = ('%d %s'):format(counts[s], s) end
  return table.concat(out, ', ')
end

-- ==== The table ==========================================================

-- The names of all metrics, in the order the runs list them.
local function metric_names(runs)
  local names, seen = {}, {}
  for _, r in ipairs(runs) do
    for _, k in ipairs(r.names) do if not seen[k] then seen[k] = true; names[#names + 1] = k end end
  end
  return names
end

-- Runs that are the same but for their seed, in groups, in the order of
-- their first run; an unreadable run is a group of its own.
local function groups_of(runs, keys)
  local groups, index = {}, {}
  for i, r in ipairs(runs) do
    local id = { r.attrs.experiment or '' }
    for _, k in ipairs(keys) do id[#id + 1] = M.fmt(M.value(r, k)) end
    local key = r.unreadable and ('\0' .. i) or table.concat(id, '\0')
    local g = index[key]
    if not g then g = { runs = {} }; index[key] = g; groups[#groups + 1] = g end
    g.runs[#g.runs + 1] = r
  end
  return groups
end

-- One row per run: run, experiment, the differing keys (seed included),
-- the last value of every metric, the status.
local function each_table(runs, keys, names)
  local header = { 'run', 'experiment' }
  for _, k in ipairs(keys) do header[#header + 1] = k end
  for _, k in ipairs(names) do header[#header + 1] = k end
  header[#header + 1] = 'status'
  local rows = {}
  for _, r in ipairs(runs) do
    local row = { r.id, M.fmt(r.attrs.experiment) }
    for _, k in ipairs(keys) do row[#row + 1] = M.fmt(M.value(r, k)) end
    for _, k in ipairs(names) do row[#row + 1] = M.fmt(last(r, k)) end
    row[#row + 1] = tostring(r.attrs.status or '?')
    rows[#rows + 1] = row
  end
  return header, rows
end

-- One row per group of runs that differ only in their seed: the mean ± std
-- of each metric's last value over the group's finished ('ok') runs (over
-- all its readable runs when none finished), n, the seeds and how the
-- runs ended. A metric some of those runs lack says its own n.
local function seeds_table(groups, keys, names)
  local header = { 'experiment' }
  for _, k in ipairs(keys) do header[#header + 1] = k end
  header[#header + 1] = 'n'
  header[#header + 1] = 'seeds'
  for _, k in ipairs(names) do header[#header + 1] = k end
  header[#header + 1] = 'status'
  local rows = {}
  for _, g in ipairs(groups) do
    local first, counted = g.runs[1], {}
    for _, r in ipairs(g.runs) do if r.attrs.status == 'ok' then counted[#counted + 1] = r end end
    if #counted == 0 then
      for _, r in ipairs(g.runs) do if not r.unreadable then counted[#counted + 1] = r end end
    end
    local seeds = {}
    for _, r in ipairs(counted) do seeds[#seeds + 1] = M.fmt(r.attrs.seed) end
    local row = { first.unreadable and first.id or M.fmt(first.attrs.experiment) }
    for _, k in ipairs(keys) do row[#row + 1] = M.fmt(not first.unreadable and M.value(first, k) or nil) end
    row[#row + 1] = tostring(#counted)
    row[#row + 1] = #seeds > 0 and table.concat(seeds, ',') or M.ABSENT
    for _, k in ipairs(names) do
      local xs = {}
      for _, r in ipairs(counted) do xs[#xs + 1] = last(r, k) end
      local cell = #xs > 0 and fmt_mean(xs) or M.ABSENT
      if #xs > 0 and #xs < #counted then cell = ('%s (n=%d)'):format(cell, #xs) end
      row[#row + 1] = cell
    end
    row[#row + 1] = first.unreadable and tostring(first.attrs.status) or status_counts(g.runs)
    rows[#rows + 1] = row
  end
  return header, rows
end

-- print(runs [, {each = true}]): the table of `usagi compare`. When some
-- runs differ only in their seed, one row per such group (mean ± std over
-- the seeds, with n); else, or with each, one row per run.
function M.print(runs, opts)
  local readable = {}
  for _, r in ipairs(runs) do if not r.unreadable then readable[#readable + 1] = r end end
  local keys = #readable > 0 and M.differing(readable) or {}
  local names = metric_names(runs)
  local by_config = {}
  for _, k in ipairs(keys) do if k ~= 'seed' then by_config[#by_config + 1] = k end end
  local groups = groups_of(runs, by_config)
  if not (opts and opts.each) and #groups < #runs then
    M.print_table(seeds_table(groups, by_config, names))
    return
  end
  M.print_table(each_table(runs, keys, names))
end

return M
