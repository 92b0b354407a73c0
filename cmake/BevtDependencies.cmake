# Every dependency comes from a Debian 12 package (scripts/setup.sh installs them) or, for CUDA builds, from an
# official LibTorch distribution given with -DCMAKE_PREFIX_PATH. Nothing is downloaded.

find_program(CCACHE_PROGRAM ccache)
if(CCACHE_PROGRAM AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  # ccache only reuses results built with a precompiled header under these sloppiness settings.
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CMAKE_COMMAND} -E env
      CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime ${CCACHE_PROGRAM})
endif()

find_package(Torch REQUIRED)
find_package(fmt REQUIRED)
find_package(tomlplusplus REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(CLI11 REQUIRED)
find_package(Threads REQUIRED)
find_package(Boost 1.70 REQUIRED)  # header-only use: Boost.DLL with std::filesystem
find_package(PkgConfig REQUIRED)
pkg_check_modules(FFMPEG REQUIRED IMPORTED_TARGET libavformat libavcodec libswscale libavutil)
find_package(OpenCV REQUIRED COMPONENTS core imgproc imgcodecs)

# Whether this torch was built with CUDA: part of the plugin build fingerprint.
if(TORCH_CUDA_LIBRARIES OR CAFFE2_USE_CUDA)
  set(BEVT_TORCH_CUDA 1)
else()
  set(BEVT_TORCH_CUDA 0)
endif()

# Torch's CMake config exposes flags (the C++11 string-ABI define) through TORCH_CXX_FLAGS; turn them into a
# target so that nothing else needs global flags.
if(NOT TARGET bevt_torch)
  add_library(bevt_torch INTERFACE)
  target_link_libraries(bevt_torch INTERFACE ${TORCH_LIBRARIES})
  target_include_directories(bevt_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
  separate_arguments(_bevt_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
  # -fPIC everywhere (executables too) so that one precompiled torch header serves every target.
  target_compile_options(bevt_torch INTERFACE ${_bevt_torch_flags} -fPIC)
  target_compile_definitions(bevt_torch INTERFACE BEVT_TORCH_CUDA=${BEVT_TORCH_CUDA})
endif()
