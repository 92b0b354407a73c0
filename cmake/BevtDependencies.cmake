# Every dependency comes from a Debian 12 package or, for LibTorch, from PyPI's `torch` wheel (2.11.0, built
# with CUDA 13.0), both installed by scripts/setup.sh, which points CMAKE_PREFIX_PATH at
# torch.utils.cmake_prefix_path. Nothing is downloaded at build or run time.

find_program(CCACHE_PROGRAM ccache)
if(CCACHE_PROGRAM AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  # ccache only reuses results built with a precompiled header under these sloppiness settings; paths under the
  # source folder are hashed relative to it, so a fresh clone elsewhere (CI) and a second build folder of the
  # same tree (the GPU bundle's) hit the cache of this one.
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CMAKE_COMMAND} -E env
      CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
      CCACHE_BASEDIR=${CMAKE_SOURCE_DIR} CCACHE_NOHASHDIR=1 ${CCACHE_PROGRAM})
endif()

# The wheel's CMake config looks for the CUDA toolkit (nvcc, cudart); bevt compiles no .cu files, so name the
# architectures rather than let it probe for a GPU that the build machine does not have.
if(NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST} AND NOT TORCH_CUDA_ARCH_LIST)
  set(TORCH_CUDA_ARCH_LIST "8.0;9.0")
endif()
find_package(Torch 2.0 REQUIRED)
get_filename_component(BEVT_TORCH_LIB_DIR "${TORCH_LIBRARY}" DIRECTORY)

# One fmt in the build: LibTorch ships fmt's headers (used header-only inside c10, no fmt symbols exported), so
# bevt uses those same headers in header-only mode instead of a second fmt from Debian, whose version differs.
if(NOT TARGET bevt::fmt)
  find_path(BEVT_FMT_INCLUDE_DIR fmt/format.h PATHS ${TORCH_INCLUDE_DIRS} NO_DEFAULT_PATH REQUIRED)
  add_library(bevt_fmt INTERFACE)
  add_library(bevt::fmt ALIAS bevt_fmt)
  target_include_directories(bevt_fmt SYSTEM INTERFACE ${BEVT_FMT_INCLUDE_DIR})
  target_compile_definitions(bevt_fmt INTERFACE FMT_HEADER_ONLY=1)
endif()
find_package(tomlplusplus REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(CLI11 REQUIRED)
find_package(Threads REQUIRED)
find_package(Boost 1.70 REQUIRED)  # header-only use: Boost.DLL with std::filesystem
find_package(PkgConfig REQUIRED)
option(BEVT_WITH_MEDIA "decode and encode video files (FFmpeg) and image files (OpenCV imgcodecs)" ON)
if(BEVT_WITH_MEDIA)
  pkg_check_modules(FFMPEG REQUIRED IMPORTED_TARGET libavformat libavcodec libswscale libavutil)
  find_package(OpenCV REQUIRED COMPONENTS core imgproc imgcodecs)
else()
  find_package(OpenCV REQUIRED COMPONENTS core imgproc)
endif()

# Whether this torch was built with CUDA: part of the plugin build fingerprint. A CUDA torch must link its
# CUDA libraries into every binary (libtorch_cuda registers the CUDA kernels and allocator when loaded).
if(TARGET torch_cuda)
  set(BEVT_TORCH_CUDA 1)
else()
  set(BEVT_TORCH_CUDA 0)
endif()
option(BEVT_REQUIRE_CUDA "fail the configure step when LibTorch lacks CUDA" OFF)
if(BEVT_REQUIRE_CUDA AND NOT BEVT_TORCH_CUDA)
  message(FATAL_ERROR "bevt: BEVT_REQUIRE_CUDA is on but ${TORCH_LIBRARY} has no libtorch_cuda/libc10_cuda")
endif()
message(STATUS "bevt: LibTorch ${Torch_VERSION} in ${BEVT_TORCH_LIB_DIR}, CUDA ${BEVT_TORCH_CUDA}")

# Torch's CMake config exposes flags (the C++11 string-ABI define) through TORCH_CXX_FLAGS; turn them into a
# target so that nothing else needs global flags.
if(NOT TARGET bevt_torch)
  add_library(bevt_torch INTERFACE)
  # TORCH_LIBRARIES also names the toolkit's libnvrtc, which bevt never calls: link torch's own libraries only
  # (the `torch` target pulls libtorch_cuda in with --no-as-needed), so binaries need nothing from the toolkit.
  set(_bevt_torch_libs torch c10)
  if(BEVT_TORCH_CUDA)
    list(APPEND _bevt_torch_libs c10_cuda)
  endif()
  target_link_libraries(bevt_torch INTERFACE torch)
  foreach(_l ${_bevt_torch_libs})
    if(NOT _l STREQUAL "torch")
      find_library(BEVT_LIB_${_l} ${_l} PATHS ${BEVT_TORCH_LIB_DIR} NO_DEFAULT_PATH REQUIRED)
      target_link_libraries(bevt_torch INTERFACE ${BEVT_LIB_${_l}})
    endif()
  endforeach()
  # The wheel is built on an older libstdc++ and carries (and exports) its own copies of the newer libstdc++
  # symbols (std::filesystem, std::chrono time zones: 200+ of them in libtorch and libtorch_cpu). Whichever
  # library comes first in a binary's needed list wins; libtorch's std::filesystem::remove_all crashes when
  # called from code built against Debian's libstdc++. So every bevt binary names libstdc++ before LibTorch.
  # --no-as-needed also keeps libc10_cuda and libtorch_cuda in every binary (they register CUDA when loaded).
  target_link_options(bevt_torch INTERFACE "LINKER:--no-as-needed" "-lstdc++")
  target_include_directories(bevt_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
  separate_arguments(_bevt_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
  # -fPIC everywhere (executables too) so that one precompiled torch header serves every target.
  target_compile_options(bevt_torch INTERFACE ${_bevt_torch_flags} -fPIC)
  target_compile_definitions(bevt_torch INTERFACE BEVT_TORCH_CUDA=${BEVT_TORCH_CUDA})
endif()
