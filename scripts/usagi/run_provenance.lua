-- usagi.run_provenance -- where a run (usagi.run) comes from, as the
-- attributes on '/' of its results.h5: usagi's version, the git commit of
-- the experiment's work tree (read from its files, no process) and whether
-- it was dirty (a `git status` in a child, collected at the end), the
-- command line, seed, threads, BLAS, plugins, host and start time.
local usagi = require 'usagi'
local util = require 'usagi.util'
local sys = usagi.sys

local M = {}

local function shell_quote(s)
  if s:match('^[%w_./=:,+%-]+$') then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function read_file(path)
  local f = io.open(path, 'r')
  if not f then return nil end
  local text = f:read('a')
  f:close()
  return text
end

-- The git directory of the work tree that holds dir, or nil.
local function git_dir(dir)
  local d = dir
  for _ = 1, 64 do
    local g = d .. '/.git'
    local kind = sys.kind(g)
    if kind == 'directory' then return g end
    if kind == 'file' then                 -- a worktree or submodule: "gitdir: PATH"
      local to = (read_file(g) or ''):match('^gitdir:%s*(.-)%s*$')
      if not to then return nil end
      return to:sub(1, 1) == '/' and to or d .. '/' .. to
    end
    if d == '/' then return nil end
    d = d:match('^(.*)/[^/]*$')
    if d == '' then d = '/' end
  end
end

-- The commit HEAD names, read from the repository's files (no process):
-- HEAD holds a hash or "ref: refs/heads/NAME", whose hash is in its own
-- file or in packed-refs (or, in a worktree, in the common directory).
local function git_commit(gdir)
  local head = (read_file(gdir .. '/HEAD') or ''):match('^%s*(.-)%s*$')
  local ref = head:match('^ref:%s*(%S+)$')
  if not ref then return head:match('^%x+$') end
  local common = (read_file(gdir .. '/commondir') or ''):match('^%s*(.-)%s*$')
  local dirs = { gdir }
  if common ~= '' then dirs[2] = common:sub(1, 1) == '/' and common or gdir .. '/' .. common end
  for _, d in ipairs(dirs) do
    local hash = (read_file(d .. '/' .. ref) or ''):match('^(%x+)')
    if hash then return hash end
    for line in (read_file(d .. '/packed-refs') or ''):gmatch('[^\n]+') do
      local h, name = line:match('^(%x+) (%S+)$')
      if name == ref then return h end
    end
  end
end

-- git_info(script) -> commit or 'unknown', and a pending dirty check:
-- `git status` runs in a child while the experiment starts (it takes
-- longer than reading the commit), and dirty_of(pending) collects it.
local function git_info(script)
  local dir = script and script:match('^(.*)/[^/]*$') or '.'
  if dir:sub(1, 1) ~= '/' then dir = (os.getenv('PWD') or '.') .. '/' .. dir end
  local gdir = git_dir(dir)
  local commit = gdir and git_commit(gdir)
  if not commit then return 'unknown', nil end
  local out = os.tmpname()
  local ok, pid = pcall(sys.spawn, { 'git', '-C', dir, 'status', '--porcelain', '--untracked-files=no' },
    { stdout = out, stderr = '/dev/null' })
  if not ok then os.remove(out); return commit, nil end
  return commit, { pid = pid, out = out }
end

function M.dirty_of(pending)
  local _, how, code = sys.wait(pending.pid)
  local text = read_file(pending.out) or ''
  os.remove(pending.out)
  if how ~= 'exit' or code ~= 0 then return nil end
  return text ~= ''
end

function M.provenance(self, opts)
  local commit
  commit, self.git_pending = git_info(opts.script)
  local plugins = {}
  for _, p in ipairs(usagi.plugins()) do
    plugins[#plugins + 1] = type(p) == 'table' and ('%s %s'):format(p.name, p.version) or tostring(p)
  end
  local cmd = {}
  for _, a in ipairs(opts.argv or {}) do cmd[#cmd + 1] = shell_quote(a) end
  return {
    experiment = self.name, run_id = self.id, usagi_version = usagi.version,
    git_commit = commit, command_line = table.concat(cmd, ' '),
    script = opts.script or '', seed = self.seed, threads = usagi.get_num_threads(),
    blas = usagi.blas_info().config, plugins = table.concat(plugins, ', '),
    host = sys.hostname(), started = util.iso(self.started), smoke = opts.smoke and true or false,
    ranks = self.world,
  }
end

return M
