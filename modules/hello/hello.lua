-- The Lua face of the hello plugin: receives the module table that the C
-- side made (with iota in it) and adds what is easier to write in Lua.
local M = ...
local usagi = require 'usagi'

-- hello.triangle(n): 1 + 2 + ... + n, through the C function
function M.triangle(n)
  return M.iota(n):sum():item()
end

return M
