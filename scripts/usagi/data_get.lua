-- usagi.data_get -- `usagi data`: list the data sets of the registry
-- (usagi.datasets), download them into the cache, import local copies,
-- verify and locate them. usagi.data reads what lands here.
--
-- Where files go: $USAGI_DATA, else $XDG_DATA_HOME/usagi/data, else
-- ~/.local/share/usagi/data; a set's files are <cache>/<set>/<file>.
-- Every file comes in as <file>.part beside its place, is checked against
-- the registry's size and SHA-256, and only then renamed into place
-- (fsync, rename): a file under its own name is always a whole, verified
-- one, and a failed or corrupt download never replaces a good file.
-- The downloads themselves (libcurl) and the hashing are C, in the usagi
-- executable (host/cli/fetch.c); archives are opened with unzip and tar.
local usagi = require 'usagi'
local sys = usagi.sys

local M = {}
M.registry = require 'usagi.datasets'

-- ==== Places =============================================================

-- cache_dir([getenv]) -> the cache directory (not created here).
function M.cache_dir(getenv)
  getenv = getenv or os.getenv
  local function set(v) return v and v ~= '' and v end
  local dir = set(getenv('USAGI_DATA'))
  if not dir then
    local xdg = set(getenv('XDG_DATA_HOME')) or ((set(getenv('HOME')) or '.') .. '/.local/share')
    dir = xdg .. '/usagi/data'
  end
  return (dir:gsub('(.)/+$', '%1'))
end

local function names()
  local list = {}
  for k in pairs(M.registry) do list[#list + 1] = k end
  table.sort(list)
  return list
end

local function lookup(name)
  local set = M.registry[name]
  if not set then
    error(('no data set named %q; the registry has: %s'):format(tostring(name), table.concat(names(), ', ')), 0)
  end
  return set
end

local function size_of(path)
  local f = io.open(path, 'rb')
  if not f then return nil end
  local n = f:seek('end')
  f:close()
  return n
end

local function human(n)
  if not n then return '?' end
  if n >= 1e9 then return ('%.2f GB'):format(n / 1e9) end
  if n >= 1e6 then return ('%.1f MB'):format(n / 1e6) end
  return ('%.0f kB'):format(n / 1e3)
end

local fetch_module
local function fetch()
  if not fetch_module then
    local ok, m = pcall(require, 'usagi.fetch')
    if not ok then error('downloads and checksums need the usagi executable (usagi.fetch is built into it)', 0) end
    fetch_module = m
  end
  return fetch_module
end

-- ==== Checking a file ====================================================

-- check(path, file [, stored]) -> true | nil, why: path holds file's
-- content, as is or gzipped when the name it is stored under (stored,
-- default path; a .part is checked for the name it will take) ends in .gz
-- and the entry allows it.
function M.check(path, file, stored)
  local gz = (stored or path):sub(-3) == '.gz' and file.gz
  if not gz and file.size then
    local n = size_of(path)
    if n ~= file.size then
      return nil, ('%s bytes, expected %d'):format(tostring(n), file.size)
    end
  end
  if not file.sha256 then
    if gz and file.size then
      local _, n = fetch().sha256(path, true)
      if n ~= file.size then return nil, ('decompresses to %s bytes, expected %d'):format(tostring(n), file.size) end
    end
    return true
  end
  local hex, n = fetch().sha256(path, gz)
  if not hex then return nil, n end
  if hex ~= file.sha256 then
    return nil, ('SHA-256 mismatch%s: got %s, expected %s'):format(gz and ' (of its decompressed content)' or '',
      hex, file.sha256)
  end
  return true
end

-- The forms a file may be kept in, the preferred first.
local function forms(file)
  local list = { file.name }
  if file.gz then list[2] = file.name .. '.gz' end
  return list
end

-- present(dir, file) -> the path of the file in dir in one of its forms, or nil
local function present(dir, file)
  for _, f in ipairs(forms(file)) do
    if sys.kind(dir .. '/' .. f) == 'file' then return dir .. '/' .. f end
  end
end

-- Puts a checked .part into place: fsync, rename.
local function commit(part, dst)
  local ok, err = pcall(sys.replace, part, dst)
  if not ok then error(('cannot move %s into place: %s'):format(part, tostring(err)), 0) end
end

-- ==== Getting files ======================================================

local function say(opts, fmt, ...)
  if not opts.quiet then io.stderr:write(fmt:format(...), '\n') end
end

-- One get or import of a set at a time: a second waits for the first
-- (then finds its files in place) instead of writing the same .part files
-- beside it. The lock is a flock on the set's directory, which dies with
-- its process: a killed get leaves no stale lock.
local function hold(dir, name, opts)
  local lock = sys.lock(dir)
  if lock then return lock end
  say(opts, 'waiting: another usagi is getting %s into %s', name, dir)
  repeat
    sys.sleep(0.2)
    lock = sys.lock(dir)
  until lock
  return lock
end

local function ensure_dir(dir)
  local ok, err = pcall(sys.mkdir, dir)
  if not ok then error(('cannot create the cache directory %s: %s'):format(dir, tostring(err)), 0) end
  -- A directory we cannot write into fails here, before any download.
  local probe = dir .. '/.usagi-write-test'
  local f, why = io.open(probe, 'wb')
  if not f then error(('cannot write into the cache directory %s: %s'):format(dir, why), 0) end
  f:close()
  os.remove(probe)
end

-- download(url, part, label, opts) -> true | nil, message, kind, http
local function download(url, part, label, opts)
  return fetch().download(url, part, { label = label, progress = opts.progress,
    connect_timeout = opts.connect_timeout, stall_timeout = opts.stall_timeout })
end

-- Downloads one file to <dir>/<stored>.part, checks it and renames it into
-- place. urls: a list of {url, stored} to try in order (a mirror may hold
-- the file gzipped); the next is tried only after a 404.
local function fetch_into(dir, file, urls, label, opts)
  local last
  for _, u in ipairs(urls) do
    local url, stored = u[1], u[2]
    local part = dir .. '/' .. stored .. '.part'
    say(opts, 'get %s  <- %s', label, url)
    local ok, msg, kind, http = download(url, part, label, opts)
    if ok then
      local good, why = M.check(part, file, stored)
      if not good then
        os.remove(part)
        error(('%s: the download from %s is corrupt and was deleted (%s)%s'):format(label, url, why,
          present(dir, file) and '; the copy already in the cache is kept' or ''), 0)
      end
      commit(part, dir .. '/' .. stored)
      return dir .. '/' .. stored
    end
    last = ('%s: %s'):format(label, msg)
    if kind == 'interrupted' then error(last, 0) end
    if not (kind == 'http' and http == 404) then
      if (size_of(part) or 0) == 0 then os.remove(part)
      elseif kind == 'network' then
        last = last .. ('\n  the part fetched so far is kept as %s; run the same command again to resume it'):format(part)
      end
      error(last, 0)
    end
    if size_of(part) == 0 then os.remove(part) end
  end
  error(last, 0)
end

-- Runs a command; its stdout goes to the file out. -> true | nil, message
local function run(argv, out)
  local ok, pid = pcall(sys.spawn, argv, { stdout = out })
  if not ok then return nil, ('cannot run %s: %s'):format(argv[1], tostring(pid)) end
  local _, how, code = sys.wait(pid)
  if how ~= 'exit' or code ~= 0 then
    return nil, ('%s failed (%s %d)'):format(table.concat(argv, ' '), how, code)
  end
  return true
end

-- The path of archive key of set name, fetched (or taken out of its own
-- archive) into <dir>/.archives/ when not there yet.
local function archive_path(name, set, dir, key, opts, mirror)
  local a = set.archives[key]
  local adir = dir .. '/.archives'
  ensure_dir(adir)
  local path = adir .. '/' .. a.name
  if sys.kind(path) == 'file' then return path end
  if a.url then
    fetch_into(adir, { name = a.name, size = a.size, sha256 = a.sha256 }, { { a.url, a.name } },
      name .. '/' .. a.name, opts)
  else
    local outer = archive_path(name, set, dir, a.archive, opts, mirror)
    local part = path .. '.part'
    os.remove(part)
    local ok, why = run({ 'unzip', '-p', outer, a.member }, part)
    if not ok or (size_of(part) or 0) == 0 then
      os.remove(part)
      error(('%s: %s has no member %s%s'):format(name, outer, a.member, why and ' (' .. why .. ')' or ''), 0)
    end
    commit(part, path)
  end
  return path
end

-- Takes file out of an archive into dir, checked.
local function extract_into(name, set, dir, file, opts, mirror)
  local archive = archive_path(name, set, dir, file.archive, opts, mirror)
  local part = dir .. '/' .. file.name .. '.part'
  os.remove(part)
  say(opts, 'get %s/%s  <- %s', name, file.name, archive:match('[^/]+$'))
  local ok, why = run({ 'unzip', '-p', archive, file.member }, part)
  if not ok then os.remove(part); error(('%s/%s: %s'):format(name, file.name, why), 0) end
  local good, bad = M.check(part, file)
  if not good then
    os.remove(part)
    error(('%s/%s: the file taken out of %s is not the expected one and was deleted (%s)'):format(name,
      file.name, archive, bad), 0)
  end
  commit(part, dir .. '/' .. file.name)
  return dir .. '/' .. file.name
end

-- get(name [, opts]) -> the set's directory: every file of the set there
-- and verified, downloading what is missing or bad. opts: quiet, progress
-- ('bar', 'lines', 'none'), mirror (a base URL; default $USAGI_DATA_MIRROR),
-- cache (default cache_dir()).
function M.get(name, opts)
  opts = opts or {}
  local set = lookup(name)
  local dir = (opts.cache or M.cache_dir()) .. '/' .. name
  ensure_dir(dir)
  local lock <close> = hold(dir, name, opts)
  local mirror = opts.mirror
  if mirror == nil then mirror = os.getenv('USAGI_DATA_MIRROR') end
  if mirror == '' then mirror = nil end
  for _, file in ipairs(set.files) do
    local have = present(dir, file)
    local label = name .. '/' .. file.name
    if have and M.check(have, file) then
      say(opts, 'ok  %s', label)
    else
      local got
      if mirror then
        local base = mirror:gsub('/+$', '') .. '/' .. name .. '/' .. file.name
        local urls = { { base, file.name } }
        if file.gz then urls[2] = { base .. '.gz', file.name .. '.gz' } end
        got = fetch_into(dir, file, urls, label, opts)
      elseif file.url then
        got = fetch_into(dir, file, { { file.url, file.name } }, label, opts)
      else
        got = extract_into(name, set, dir, file, opts, mirror)
      end
      -- A bad copy in the other form must not shadow the good one.
      for _, f in ipairs(forms(file)) do
        local p = dir .. '/' .. f
        if p ~= got and sys.kind(p) == 'file' then os.remove(p) end
      end
      if file.unverified then say(opts, '  note: %s: %s', label, file.unverified) end
    end
  end
  -- The archives served their purpose once every file is out of them.
  if set.archives and sys.kind(dir .. '/.archives') == 'directory' then
    for _, f in ipairs(sys.listdir(dir .. '/.archives')) do
      if not f:match('%.part$') then os.remove(dir .. '/.archives/' .. f) end
    end
    pcall(sys.remove, dir .. '/.archives')
  end
  return dir
end

-- ==== Importing local copies =============================================

-- Copies src to dst.part, returns the part's path.
local function copy(src, part)
  local i, why = io.open(src, 'rb')
  if not i then error(('cannot read %s: %s'):format(src, why), 0) end
  local o, why2 = io.open(part, 'wb')
  if not o then i:close(); error(('cannot write %s: %s'):format(part, why2), 0) end
  while true do
    local chunk = i:read(1 << 20)
    if not chunk then break end
    local ok, err = o:write(chunk)
    if not ok then i:close(); o:close(); os.remove(part); error(('cannot write %s: %s'):format(part, err), 0) end
  end
  i:close()
  local ok, err = o:close()
  if not ok then os.remove(part); error(('cannot write %s: %s'):format(part, err), 0) end
  return part
end

-- An archive given to --from is unpacked into a temporary directory of the
-- cache first. -> the directory, a function that removes it
local function unpack(archive, cache)
  local tmp = ('%s/.import-%d-%d'):format(cache, sys.getpid(), math.floor(sys.time() * 1000) % 1000000)
  ensure_dir(tmp)
  local argv
  if archive:match('%.zip$') then argv = { 'unzip', '-q', '-o', archive, '-d', tmp }
  elseif archive:match('%.tar%.gz$') or archive:match('%.tgz$') or archive:match('%.tar$')
      or archive:match('%.tar%.xz$') or archive:match('%.tar%.bz2$') then
    argv = { 'tar', '-xf', archive, '-C', tmp }
  else
    error(('--from %s: expected a directory or an archive (.zip, .tar, .tar.gz, .tgz, .tar.xz)'):format(archive), 0)
  end
  local ok, why = run(argv, '/dev/null')
  local function cleanup() run({ 'rm', '-rf', tmp }, '/dev/null') end
  if not ok then cleanup(); error(('--from %s: %s'):format(archive, why), 0) end
  return tmp, cleanup
end

-- The places under from where a set's file may be: <from>/<set>/, <from>/,
-- and any one level deeper (an archive usually holds one top folder).
local function candidates(from, name)
  local dirs = { from .. '/' .. name, from }
  if sys.kind(from) == 'directory' then
    for _, d in ipairs(sys.listdir(from)) do
      local p = from .. '/' .. d
      if sys.kind(p) == 'directory' then dirs[#dirs + 1] = p .. '/' .. name; dirs[#dirs + 1] = p end
    end
  end
  return dirs
end

-- import(name, from [, opts]) -> the set's directory, filled from a local
-- folder or archive with the same checks as a download. Files of the set
-- already good in the cache are left alone.
function M.import(name, from, opts)
  opts = opts or {}
  local set = lookup(name)
  local cache = opts.cache or M.cache_dir()
  local kind = sys.kind(from)
  if not kind then error(('--from %s: no such file or directory'):format(from), 0) end
  local dir = cache .. '/' .. name
  ensure_dir(dir)
  local lock <close> = hold(dir, name, opts)
  local root, cleanup = from, function() end
  if kind == 'file' then root, cleanup = unpack(from, cache) end
  local ok, err = pcall(function()
    local missing = {}
    for _, file in ipairs(set.files) do
      local label = name .. '/' .. file.name
      local have = present(dir, file)
      if have and M.check(have, file) then
        say(opts, 'ok  %s', label)
      else
        local src
        for _, d in ipairs(candidates(root, name)) do
          src = present(d, file)
          if src then break end
        end
        if not src then
          missing[#missing + 1] = file.name
        else
          local stored = src:match('[^/]+$')
          local part = copy(src, dir .. '/' .. stored .. '.part')
          local good, why = M.check(part, file, stored)
          if not good then
            os.remove(part)
            error(('%s: the copy in %s is not the expected file (%s)%s'):format(label, from, why,
              have and '; the copy already in the cache is kept' or ''), 0)
          end
          commit(part, dir .. '/' .. stored)
          for _, f in ipairs(forms(file)) do
            if f ~= stored and sys.kind(dir .. '/' .. f) == 'file' then os.remove(dir .. '/' .. f) end
          end
          say(opts, 'imported %s  <- %s', label, src)
        end
      end
    end
    if #missing > 0 and opts.partial then
      say(opts, 'note: %s: %s has no %s; the rest of the set was imported', name, from, table.concat(missing, ', '))
    elseif #missing > 0 then
      error(('%s: %s has no %s (looked in %s/%s/ and %s/)'):format(name, from, table.concat(missing, ', '),
        from, name, from), 0)
    end
  end)
  cleanup()
  if not ok then error(err, 0) end
  return dir
end

-- ==== Status =============================================================

-- status(name [, cache]) -> {dir, files = {{file, path or nil}}, here, total}
function M.status(name, cache)
  local set = lookup(name)
  local dir = (cache or M.cache_dir()) .. '/' .. name
  local st = { dir = dir, files = {}, here = 0, total = #set.files }
  for i, file in ipairs(set.files) do
    local p = present(dir, file)
    st.files[i] = { file, p }
    if p then st.here = st.here + 1 end
  end
  return st
end

-- verify(name [, cache]) -> ok, lines: every file of the set present and
-- matching its checksum.
function M.verify(name, cache)
  local st = M.status(name, cache)
  local ok, lines = true, {}
  for _, fp in ipairs(st.files) do
    local file, p = fp[1], fp[2]
    if not p then
      ok = false
      lines[#lines + 1] = ('missing  %s/%s'):format(name, file.name)
    else
      local good, why = M.check(p, file)
      if good then
        lines[#lines + 1] = ('ok       %s/%s%s'):format(name, file.name, file.unverified and ' (size only: ' .. file.unverified .. ')' or '')
      else
        ok = false
        lines[#lines + 1] = ('BAD      %s/%s: %s'):format(name, file.name, why)
      end
    end
  end
  return ok, lines
end

-- ==== The command ========================================================

M.help = [==[
usagi data list                      the known data sets, which are here, sizes
usagi data get NAME... [--from DIR|ARCHIVE [--partial]] [--quiet]
                                     download (or import) into the cache, verified
usagi data verify [NAME...]          check the files in the cache (all sets here)
usagi data path NAME                 the directory of a set in the cache
Files go to $USAGI_DATA, else $XDG_DATA_HOME/usagi/data, else
~/.local/share/usagi/data, as <cache>/<name>/<file>. A download resumes
where a cut one stopped; every file is checked against the SHA-256 of the
registry (scripts/usagi/datasets.lua) before it is renamed into place.
--from imports a local folder (holding <name>/<file> or <file>) or an archive
(.zip, .tar.gz, ...) with the same checks: how offline machines and CI fill
the cache; --partial takes the files there when some are missing.
USAGI_DATA_MIRROR=URL fetches <URL>/<name>/<file> (or <file>.gz)
instead of the registry's URLs. Proxies come from http_proxy/https_proxy.]==]

local function list(args)
  local cache = M.cache_dir()
  print(('cache: %s'):format(cache))
  local rows = { { 'name', 'here', 'size', 'licence', 'what' } }
  local elsewhere = false
  for _, name in ipairs(names()) do
    local set, st = M.registry[name], M.status(name, cache)
    local here = ('%d/%d'):format(st.here, st.total)
    if st.here < st.total then
      -- usagi.data also reads ./data and Debian's /usr/share/datasets
      local found = 0
      for _, f in ipairs(set.files) do
        if pcall(require('usagi.data').path, name .. '/' .. f.name) then found = found + 1 end
      end
      if found > st.here then here, elsewhere = ('%d/%d*'):format(found, st.total), true end
    end
    local size, known = 0, true
    for _, f in ipairs(set.files) do
      if f.size then size = size + f.size else known = false end
    end
    rows[#rows + 1] = { name, here, (known and '' or '>') .. human(size),
      (set.licence:gsub(' %(.*', ''):gsub(';.*', '')), set.title }
  end
  local width = {}
  for _, r in ipairs(rows) do
    for i = 1, 4 do width[i] = math.max(width[i] or 0, #r[i]) end
  end
  for _, r in ipairs(rows) do
    print(('%-' .. width[1] .. 's  %-' .. width[2] .. 's  %' .. width[3] .. 's  %-' .. width[4] .. 's  %s')
      :format(r[1], r[2], r[3], r[4], r[5]))
  end
  if elsewhere then print('* found outside the cache too: ./data or /usr/share/datasets (Debian\'s dataset packages)') end
  print('`usagi data get NAME` downloads a set; scripts/usagi/DATASETS.md lists sources and citations.')
  return 0
end

local function get(args)
  local sets, from, opts = {}, nil, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == '--from' then
      from = args[i + 1]
      if not from then error('--from needs a directory or an archive', 0) end
      i = i + 1
    elseif a == '--quiet' or a == '-q' then opts.quiet, opts.progress = true, 'none'
    elseif a == '--partial' then opts.partial = true
    elseif a:sub(1, 1) == '-' then error(('unknown option %s\n%s'):format(a, M.help), 0)
    else sets[#sets + 1] = a end
    i = i + 1
  end
  if #sets == 0 then error('which data set? `usagi data list` shows them\n' .. M.help, 0) end
  for _, name in ipairs(sets) do lookup(name) end
  if opts.partial and not from then error('--partial goes with --from', 0) end
  -- Each set on its own: one that fails does not stop the others.
  local failed = 0
  for _, name in ipairs(sets) do
    local ok, dir = pcall(function() return from and M.import(name, from, opts) or M.get(name, opts) end)
    if ok then say(opts, '%s: %s', name, dir)
    else
      failed = failed + 1
      io.stderr:write('usagi data get: ', tostring(dir), '\n')
      if tostring(dir):find(': interrupted; ', 1, true) then return 130 end   -- Ctrl-C stops them all
    end
  end
  return failed == 0 and 0 or 1
end

local function verify(args)
  local sets, cache = args, M.cache_dir()
  if #sets == 0 then
    sets = {}
    for _, name in ipairs(names()) do
      if M.status(name, cache).here > 0 then sets[#sets + 1] = name end
    end
    if #sets == 0 then print(('nothing in %s yet; `usagi data get NAME` fills it'):format(cache)); return 0 end
  end
  local all = true
  for _, name in ipairs(sets) do
    local ok, lines = M.verify(name, cache)
    for _, l in ipairs(lines) do print(l) end
    all = all and ok
  end
  return all and 0 or 1
end

local function path(args)
  if #args ~= 1 then error('usagi data path takes one NAME, got ' .. #args, 0) end
  local st = M.status(args[1])
  if st.here < st.total then
    io.stderr:write(('usagi data path: %s is not in %s yet (%d of %d files); `usagi data get %s` gets it\n')
      :format(args[1], M.cache_dir(), st.here, st.total, args[1]))
    return 1
  end
  print(st.dir)
  return 0
end

local subcommands = { list = list, get = get, verify = verify, path = path }

-- main(args) -> exit code: `usagi data SUBCOMMAND args...`
function M.main(args)
  local sub = args[1]
  if sub == nil or sub == '-h' or sub == '--help' or sub == 'help' then print(M.help); return sub and 0 or 2 end
  local fn = subcommands[sub]
  if not fn then
    io.stderr:write(('usagi data: unknown subcommand %s\n%s\n'):format(sub, M.help))
    return 2
  end
  local rest = table.move(args, 2, #args, 1, {})
  if rest[1] == '-h' or rest[1] == '--help' then print(M.help); return 0 end
  return fn(rest)
end

return M
