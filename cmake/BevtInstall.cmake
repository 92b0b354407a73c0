# cmake --install: SDK headers, the host executables, the plugins, and a package config so that an
# out-of-tree plugin does find_package(bevt) and bevt_add_plugin(...).
include(CMakePackageConfigHelpers)

# Exported as bevt::sdk, bevt::data and bevt::plugin_entry, the names bevt_add_plugin links in-tree too.
set_target_properties(bevt_sdk PROPERTIES EXPORT_NAME sdk)
set_target_properties(bevt_data PROPERTIES EXPORT_NAME data)
set_target_properties(bevt_plugin_entry PROPERTIES EXPORT_NAME plugin_entry)
set_target_properties(bevt_torch PROPERTIES EXPORT_NAME torch_deps)
set_target_properties(bevt_warnings PROPERTIES EXPORT_NAME warnings)
set_target_properties(bevt_fmt PROPERTIES EXPORT_NAME fmt)
install(DIRECTORY core/include/bevt core/data/include/bevt DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS bevt_sdk bevt_data bevt_plugin_entry bevt_torch bevt_fmt bevt_warnings EXPORT bevtTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT bevtTargets NAMESPACE bevt:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/bevt)
configure_package_config_file(cmake/bevtConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/bevtConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/bevt)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/bevtConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/bevtConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/bevtConfigVersion.cmake
  cmake/BevtPlugin.cmake DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/bevt)
