# bevt_add_plugin(<name> SOURCES <files...> [DATA] [LIBRARIES <targets...>] [NO_INSTALL])
#
# Builds one plugin library libbevt_<name>.so (which may register several plugins) against the SDK. In-tree
# the library lands in build/lib/bevt/plugins, where bevt-run finds it, and <name> must be its folder's name
# (plugins/<kind>/<name>/), so that the library bevt-run --list-plugins shows names the folder; out of tree
# (find_package(bevt)) it lands in the caller's binary folder, and BEVT_PLUGIN_PATH or --plugin-dir points the
# host at it.
#
# The library gets the plugin entry point (bevt::plugin_entry: the ABI check and the manifest that the
# registration macro fills) and the precompiled torch header. DATA links the data toolkit (bevt::data:
# decoding, samplers, transforms, MediaDataset), which a dataset plugin needs and no other kind should.
function(bevt_add_plugin name)
  cmake_parse_arguments(ARG "NO_INSTALL;DATA" "" "SOURCES;LIBRARIES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "bevt_add_plugin(${name}): SOURCES is required")
  endif()
  if(TARGET bevt_pch)
    file(RELATIVE_PATH _rel ${PROJECT_SOURCE_DIR}/plugins ${CMAKE_CURRENT_SOURCE_DIR})
    get_filename_component(_folder ${CMAKE_CURRENT_SOURCE_DIR} NAME)
    if(NOT _rel MATCHES "^\\.\\." AND NOT _folder STREQUAL name)
      message(FATAL_ERROR "bevt_add_plugin(${name}) in plugins/${_rel}: an in-tree plugin library is named "
        "after its folder (bevt_add_plugin(${_folder} ...), or rename the folder)")
    endif()
  endif()
  add_library(${name} MODULE ${ARG_SOURCES})
  # The registration macro references the entry object's registry, which pulls it (and the exported entry
  # points beside it) out of the static library.
  target_link_libraries(${name} PRIVATE bevt::plugin_entry bevt::sdk ${ARG_LIBRARIES})
  if(ARG_DATA)
    target_link_libraries(${name} PRIVATE bevt::data)
  endif()
  set_target_properties(${name} PROPERTIES PREFIX "lib" OUTPUT_NAME "bevt_${name}")
  if(TARGET bevt_warnings)
    target_link_libraries(${name} PRIVATE bevt_warnings)
  endif()
  if(TARGET bevt_pch)
    target_precompile_headers(${name} REUSE_FROM bevt_pch)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${BEVT_PLUGIN_OUTPUT_DIR})
    set_property(GLOBAL APPEND PROPERTY BEVT_PLUGIN_TARGETS ${name})
    if(ARG_DATA)
      # Installed in lib/bevt/plugins; libbevt_data.so, which the host does not load, is in lib.
      set_target_properties(${name} PROPERTIES INSTALL_RPATH "$ORIGIN/../..")
    endif()
    if(NOT ARG_NO_INSTALL)
      install(TARGETS ${name} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/bevt/plugins)
    endif()
  else()
    target_precompile_headers(${name} PRIVATE <bevt/torch.h>)
  endif()
endfunction()
