# contrast_add_plugin(NAME SOURCES src...) — build a plugin MODULE against
# the SDK with hidden visibility (only the entry symbol is exported).
# In-tree it links the contrast_sdk target; the installed package defines
# the same function over contrast::sdk.
function(contrast_add_plugin name)
  cmake_parse_arguments(ARG "NO_INSTALL" "OUTPUT_DIR" "SOURCES;LIBRARIES" ${ARGN})
  add_library(${name} MODULE ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE contrast_sdk ${ARG_LIBRARIES})
  set(out "${CONTRAST_PLUGIN_BUILD_DIR}")
  if(ARG_OUTPUT_DIR)
    set(out "${ARG_OUTPUT_DIR}")
  endif()
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    C_VISIBILITY_PRESET hidden
    LIBRARY_OUTPUT_DIRECTORY "${out}"
    # Installed in <libdir>/contrast/plugins: libcontrast is two levels up.
    INSTALL_RPATH "$ORIGIN/../..")
  if(NOT ARG_NO_INSTALL)
    install(TARGETS ${name} LIBRARY DESTINATION "${CONTRAST_PLUGIN_INSTALL_DIR}")
  endif()
endfunction()
