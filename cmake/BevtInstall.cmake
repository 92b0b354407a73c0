# cmake --install: SDK headers, the host executables, the plugins, and a package config so that an
# out-of-tree plugin does find_package(bevt) and bevt_add_plugin(...).
include(CMakePackageConfigHelpers)

install(DIRECTORY core/include/bevt DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS bevt_sdk bevt_plugin_entry bevt_torch bevt_warnings EXPORT bevtTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT bevtTargets NAMESPACE bevt:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/bevt)
configure_package_config_file(cmake/bevtConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/bevtConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/bevt)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/bevtConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/bevtConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/bevtConfigVersion.cmake
  cmake/BevtPlugin.cmake DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/bevt)
