-- usagi.reference -- the function reference, scripts/usagi/REFERENCE.md,
-- made from the same docs help() shows: the op tables' (host/ops/ and the
-- plugins'), the C binding's others (doc_binding.lua) and the comments of
-- the Lua library and the plugins' faces. tests/lua/reference_spec.lua
-- fails when the file in the tree differs from what this makes, so the
-- reference cannot drift from the code. Remake it with
--
--   build/usagi -e "io.write(require('usagi.reference').markdown())" > scripts/usagi/REFERENCE.md
local doc = require 'usagi.doc'

local M = {}

-- The section a name belongs to: what comes before its last '.' or ':'.
local function section_of(name)
  return name:match('^(.*)[.:][%w_]+$') or name
end

-- M.markdown() -> the reference as Markdown: every public function, class
-- and method of usagi, its Lua library and every plugin of this build,
-- grouped by module, each with its doc.
function M.markdown()
  for _, fam in ipairs(doc.plugin_names()) do pcall(require, 'usagi.' .. fam) end
  local out = {
    '# Function reference',
    '',
    'Every public function, class and method, with the text `help()` shows for it. Made by',
    '`scripts/usagi/reference.lua` from the op tables (`host/ops/README.md`), the C binding\'s',
    'docs and the Lua sources\' comments; `tests/lua/reference_spec.lua` checks it is current.',
  }
  -- sorted by section, then name: the same file whatever this process
  -- loaded before
  local list = doc.public()
  table.sort(list, function(a, b)
    local sa, sb = section_of(a[1]), section_of(b[1])
    if sa ~= sb then return sa < sb end
    return a[1] < b[1]
  end)
  local current
  for _, e in ipairs(list) do
    local name, v = e[1], e[2]
    local sec = section_of(name)
    if sec ~= current then
      if current then out[#out + 1] = '```' end
      out[#out + 1] = ''
      out[#out + 1] = '## ' .. sec
      out[#out + 1] = ''
      out[#out + 1] = '```text'
      current = sec
    end
    local text = doc.text(name, v) or '(no doc)'
    out[#out + 1] = name
    out[#out + 1] = '    ' .. text:gsub('\n', '\n    ')
  end
  if current then out[#out + 1] = '```' end
  return table.concat(out, '\n') .. '\n'
end

return M
