-- usagi.kernel_install -- `usagi kernel install [--user | --prefix P]`:
-- the kernelspec that makes Jupyter start `usagi kernel -f FILE`
-- (kernels/usagi/kernel.json under Jupyter's data directory), with argv
-- from the absolute path of the usagi that writes it. The kernel itself is
-- scripts/usagi/kernel.lua.
local usagi = require 'usagi'
local J = require 'usagi.kernel_json'

local M = {}

-- M.help: the text of `usagi kernel --help`.
local HELP = [[
usage: usagi kernel -f CONNECTION_FILE     serve a notebook (what Jupyter runs)
       usagi kernel install [--user | --prefix P]   write the kernelspec 'usagi'

install writes kernels/usagi/kernel.json under Jupyter's data directory:
--user for ~/.local/share/jupyter (the default), --prefix P for
P/share/jupyter (as a virtual environment's; --prefix /usr/local for
every user of this machine).]]


-- `usagi kernel install`: kernel.json with argv from this usagi's absolute path.
function M.install(args, exe)
  local where = 'user'
  local prefix
  local i = 1
  while args[i] do
    local a = args[i]
    if a == '--user' then where = 'user'
    elseif a == '--prefix' then
      prefix = args[i + 1]
      if not prefix then error('kernel install: --prefix needs a directory', 0) end
      where, i = 'prefix', i + 1
    else error(('kernel install: unknown option %s\n%s'):format(a, HELP), 0) end
    i = i + 1
  end
  local base
  if where == 'user' then
    local data = os.getenv('JUPYTER_DATA_DIR')
    if not data or data == '' then
      local xdg = os.getenv('XDG_DATA_HOME')
      local home = os.getenv('HOME')
      if (not xdg or xdg == '') and not home then error('kernel install: HOME is not set; give --prefix', 0) end
      data = ((xdg and xdg ~= '') and xdg or home .. '/.local/share') .. '/jupyter'
    end
    base = data
  else
    base = prefix .. '/share/jupyter'
  end
  local dir = base .. '/kernels/usagi'
  local ok, err = pcall(usagi.sys.mkdir, dir)
  if not ok then error('kernel install: ' .. tostring(err), 0) end
  local spec = '{\n  "argv": [' .. J.encode(exe) .. ', "kernel", "-f", "{connection_file}"],\n'
    .. '  "display_name": "usagi (Lua)",\n  "language": "lua",\n  "interrupt_mode": "signal",\n'
    .. '  "metadata": {"debugger": false}\n}\n'
  local f, err = io.open(dir .. '/kernel.json', 'w')
  if not f then error('kernel install: ' .. err, 0) end
  f:write(spec)
  f:close()
  io.stdout:write(('installed the kernelspec usagi in %s\n'):format(dir))
  return 0
end

M.help = HELP

return M
