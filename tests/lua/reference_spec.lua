-- reference_spec.lua -- scripts/usagi/REFERENCE.md is what
-- scripts/usagi/reference.lua makes from the docs help() shows, so the
-- reference in the tree cannot drift from the code.
local reference = require 'usagi.reference'

describe('scripts/usagi/REFERENCE.md', function()
  it('is what usagi.reference makes from the docs of this build', function()
    local f = assert(io.open('scripts/usagi/REFERENCE.md', 'r'))
    local have = f:read('a')
    f:close()
    local want = reference.markdown()
    if have ~= want then
      local line, a, b = 1, 1, 1
      while true do
        local ea, eb = have:find('\n', a, true), want:find('\n', b, true)
        if not ea or not eb or have:sub(a, ea) ~= want:sub(b, eb) then break end
        a, b, line = ea + 1, eb + 1, line + 1
      end
      error(('scripts/usagi/REFERENCE.md is out of date from line %d (%q, made: %q); remake it with\n'
        .. '  build/usagi -e "io.write(require(\'usagi.reference\').markdown())" > scripts/usagi/REFERENCE.md')
        :format(line, have:match('[^\n]*', a), want:match('[^\n]*', b)), 0)
    end
  end)
end)
