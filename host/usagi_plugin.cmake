# usagi_add_plugin(<family> SOURCES <c files...> [LUA <face.lua>])
#
# Builds the plugin MODULE usagi/<family>.so exporting luaopen_usagi_<family>
# (found by `require 'usagi.<family>'` through package.cpath), linked to the
# binding and libusagi, never to a Lua core. The optional Lua face is
# embedded into the .so as usg_plugin_lua / usg_plugin_lua_size (see
# usg_lua_plugin_open in usagi/lua.h), so the plugin is one file that a
# stock lua5.4 loads as well. Used in this tree (modules/*/CMakeLists.txt)
# and from the installed package config by third parties.
#
# USAGI_PLUGIN_LINK: the binding target (usagi_lua here, usagi::usagi_lua
# installed); USAGI_PLUGIN_OUTPUT: where the build puts usagi/<family>.so.
function(usagi_add_plugin family)
  cmake_parse_arguments(P "" "LUA" "SOURCES" ${ARGN})
  set(target usagi_plugin_${family})
  set(srcs ${P_SOURCES})
  set(face ${CMAKE_CURRENT_BINARY_DIR}/${family}_face.c)
  if(P_LUA)
    get_filename_component(lua_path ${P_LUA} ABSOLUTE)
    add_custom_command(OUTPUT ${face}
      COMMAND ${CMAKE_COMMAND} -DIN=${lua_path} -DOUT=${face} -DNAME=${family}
              -P ${USAGI_PLUGIN_EMBED}
      DEPENDS ${lua_path} ${USAGI_PLUGIN_EMBED} VERBATIM)
  else()
    file(WRITE ${face} "#include <stddef.h>\nconst char usg_plugin_lua[] = \"\";\nconst size_t usg_plugin_lua_size = 0;\n")
  endif()
  add_library(${target} MODULE ${srcs} ${face})
  set_target_properties(${target} PROPERTIES PREFIX "" OUTPUT_NAME ${family}
    C_VISIBILITY_PRESET hidden
    LIBRARY_OUTPUT_DIRECTORY ${USAGI_PLUGIN_OUTPUT}/usagi)
  target_link_libraries(${target} PRIVATE ${USAGI_PLUGIN_LINK})
  install(TARGETS ${target} LIBRARY DESTINATION ${USAGI_PLUGIN_DESTINATION})
endfunction()
