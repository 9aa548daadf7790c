-- Every repository path the docs name must exist. Docs drift from the code
-- when files move or are renamed, and a newcomer who follows a dead path is
-- lost at once, so this spec reads every Markdown file of the tree and the
-- comments of every source file and checks each path they name. It runs from the
-- source root (ctest's working directory for the specs).

local TOP = { 'host/', 'modules/', 'scripts/', 'experiments/', 'tests/' }

-- Paths that appear in the docs as examples of what a user writes or sees,
-- not as files of this tree; each says why it may be absent.
local EXAMPLES = {
  ['experiments/x.lua'] = 'a user script named in an example error message',
  ['experiments/my.lua'] = 'a user script in an example',
  ['t.lua'] = 'a user script in an example',
}

local function exists(path)
  local f = io.open(path, 'r')
  if f then f:close() return true end
  return false
end

local function lines_of(cmd)
  local out, p = {}, assert(io.popen(cmd))
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  return out
end

-- The tracked files when this is a git checkout, else every file under the
-- top-level folders; build trees never count.
local function files()
  local list = lines_of('git ls-files --cached --others --exclude-standard 2>/dev/null')
  if #list == 0 then
    list = lines_of('find README.md host modules scripts experiments tests -type f 2>/dev/null')
  end
  return list
end

-- A path as written may end with punctuation of the sentence or a line
-- number (experiments/x.lua:52); neither is part of the file's name.
local function clean(p)
  p = p:gsub(':%d+$', '')
  p = p:gsub('[%.,;:%)]+$', '')
  return p
end

local function placeholder(p)
  return p:find('[<>%*%?]') or p:find('%.%.%.') or p:find('%$') or p:find('{')
end

-- Every path of the form top/... in a line, with the column it starts at.
local function top_paths(line)
  local found = {}
  for _, top in ipairs(TOP) do
    local init = 1
    while true do
      local s = line:find(top, init, true)
      if not s then break end
      local before = s > 1 and line:sub(s - 1, s - 1) or ''
      -- build/modules/x.so or a/scripts/b is not a path from the root.
      if not before:find('[%w_%./%-]') then
        local p = line:match('^[%w_%-%./<>%*%?%$]+', s)
        found[#found + 1] = clean(p)
      end
      init = s + #top
    end
  end
  return found
end

-- Public headers are named as plugins include them: usagi/autograd.h.
local function header_paths(line)
  local found = {}
  for h in line:gmatch('usagi/([%w_]+%.h)') do found[#found + 1] = 'host/include/usagi/' .. h end
  return found
end

local function check(errors, file, n, path, shown)
  if not placeholder(path) and not EXAMPLES[path] and not exists(path) then
    errors[#errors + 1] = string.format('%s:%d names %s, which does not exist', file, n, shown or path)
  end
end

local function dirname(path) return path:match('^(.*)/[^/]*$') or '.' end

describe('docs', function()
  local all = files()
  local basenames = {}
  for _, f in ipairs(all) do basenames[f:match('[^/]+$')] = true end

  it('name only repository paths that exist', function()
    local errors, seen = {}, 0
    for _, file in ipairs(all) do
      if file:match('%.md$') then
        local n = 0
        for line in io.lines(file) do
          n = n + 1
          for _, p in ipairs(top_paths(line)) do seen = seen + 1; check(errors, file, n, p) end
          for _, p in ipairs(header_paths(line)) do seen = seen + 1; check(errors, file, n, p) end
          -- A bare source file name (`lstm_ad.c`) must name a file of
          -- the tree: a README beside the code names its files so.
          for name in line:gmatch('`([%w_%-]+%.[%w]+)`') do
            if (name:match('%.[ch]$') or name:match('%.lua$')) and not EXAMPLES[name] then
              seen = seen + 1
              if not basenames[name] then
                errors[#errors + 1] = string.format('%s:%d names %s, which is no file of the tree',
                  file, n, name)
              end
            end
          end
          -- Markdown links are relative to the file that holds them.
          for target in line:gmatch('%]%(([^%)#]+)[^%)]*%)') do
            if not target:find('^%a+:') then
              seen = seen + 1
              check(errors, file, n, dirname(file) .. '/' .. target, target)
            end
          end
        end
      end
    end
    assert.is_true(seen > 100, 'too few paths found in the docs: ' .. seen)
    assert.is_true(#errors == 0, '\n' .. table.concat(errors, '\n'))
  end)

  -- The comment part of a line of code, or nil: paths in strings are data
  -- (completion prefixes, patterns), not references.
  local function comment(file, line)
    if file:match('%.lua$') then return line:match('%-%-(.*)$') end
    if file:match('%.[ch]$') then
      return line:match('/%*(.*)$') or line:match('//(.*)$') or line:match('^%s*%*(.*)$')
    end
    return line:match('^%s*#(.*)$') or line:match('%s#%s(.*)$')
  end

  it('point code comments at files that exist', function()
    local errors, seen = {}, 0
    for _, file in ipairs(all) do
      if file:match('%.[ch]$') or file:match('%.lua$') or file:match('%.sh$')
          or file:match('%.py$') or file:match('CMakeLists%.txt$') or file:match('%.cmake$') then
        local n = 0
        for line in io.lines(file) do
          n = n + 1
          local text = comment(file, line)
          if text then
            for _, p in ipairs(top_paths(text)) do seen = seen + 1; check(errors, file, n, p) end
            for _, p in ipairs(header_paths(text)) do seen = seen + 1; check(errors, file, n, p) end
            -- After "see", a bare file name (see ad_nn.c) must name some file
            -- of the tree.
            local at = text:lower():find('%f[%w]see%f[%W]')
            for name in (at and text:sub(at) or ''):gmatch('[%w_]+%.%a+') do
              if name:match('%.[ch]$') or name:match('%.lua$') then
                seen = seen + 1
                if not basenames[name] then
                  errors[#errors + 1] = string.format('%s:%d names %s, which no file of the tree is called', file, n, name)
                end
              end
            end
          end
        end
      end
    end
    assert.is_true(seen > 100, 'too few paths found in code comments: ' .. seen)
    assert.is_true(#errors == 0, '\n' .. table.concat(errors, '\n'))
  end)

  -- A plugin folder missing from modules/README.md's table is a family a
  -- newcomer never hears of.
  it('keep the README what a newcomer reads in ten minutes: under 250 lines', function()
    local n = 0
    for _ in io.lines('README.md') do n = n + 1 end
    assert.is_true(n < 250, ('README.md has %d lines; move reference detail into the README '
      .. 'beside what it describes'):format(n))
  end)

  it('list every plugin folder in the table of modules/README.md', function()
    local readme = assert(io.open('modules/README.md')):read('a')
    local missing, plugins = {}, 0
    for _, f in ipairs(all) do
      local name = f:match('^modules/([%w_]+)/CMakeLists%.txt$')
      if name then
        plugins = plugins + 1
        if not readme:find('\n| `' .. name .. '/` |', 1, true) then missing[#missing + 1] = name end
      end
    end
    assert.is_true(plugins >= 10, 'found only ' .. plugins .. ' plugin folders')
    assert.is_true(#missing == 0, 'modules/README.md does not list: ' .. table.concat(missing, ', '))
  end)
end)
