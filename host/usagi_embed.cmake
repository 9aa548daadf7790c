# Turn a Lua source file into a C file holding its bytes:
#   cmake -DIN=face.lua -DOUT=face.c -DNAME=family -P usagi_embed.cmake
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR size "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
file(WRITE ${OUT} "/* generated from ${NAME}'s Lua face; do not edit */\n#include <stddef.h>\n"
  "const char usg_plugin_lua[] = {\n${bytes}0};\nconst size_t usg_plugin_lua_size = ${size};\n")
