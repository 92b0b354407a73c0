# Which of torch's c10d process groups this LibTorch offers: the CUDA torch wheel has Gloo and NCCL (a CPU-only
# LibTorch has Gloo alone). ProcessGroupGloo.hpp includes gloo's headers (Debian's libgloo-dev: the wheel links
# gloo statically and ships no headers; bevt only passes gloo's device handle through, so their version need
# not match); ProcessGroupNCCL.hpp needs nccl.h, taken from the wheel's own NCCL (nvidia-nccl) so that header
# and library agree; -DBEVT_NCCL_INCLUDE_DIR=... names another. The probes compile and link a use of each
# process group; the results become USE_C10D_GLOO / USE_C10D_NCCL for the one source that includes them.
include(CheckCXXSourceCompiles)
include(CMakePushCheckState)

find_path(BEVT_NCCL_INCLUDE_DIR nccl.h
  PATHS ${BEVT_TORCH_LIB_DIR}/../../nvidia/nccl/include ${CUDAToolkit_INCLUDE_DIRS} NO_DEFAULT_PATH
  DOC "folder holding nccl.h (CUDA LibTorch builds)")
if(NOT BEVT_NCCL_INCLUDE_DIR)
  set(BEVT_NCCL_INCLUDE_DIR "")
endif()
# Plain files for try_compile (the imported targets of torch's config do not travel into its scratch project).
set(BEVT_TORCH_LINK_FILES "")
foreach(_l torch torch_cpu c10 torch_cuda c10_cuda)
  if(EXISTS ${BEVT_TORCH_LIB_DIR}/lib${_l}.so)
    list(APPEND BEVT_TORCH_LINK_FILES ${BEVT_TORCH_LIB_DIR}/lib${_l}.so)
  endif()
endforeach()

function(bevt_probe_c10d out define header use)
  cmake_push_check_state(RESET)
  set(CMAKE_REQUIRED_LIBRARIES ${BEVT_TORCH_LINK_FILES})
  set(CMAKE_REQUIRED_INCLUDES ${TORCH_INCLUDE_DIRS} ${CUDAToolkit_INCLUDE_DIRS} ${BEVT_NCCL_INCLUDE_DIR})
  set(CMAKE_REQUIRED_FLAGS "${TORCH_CXX_FLAGS}")
  set(CMAKE_REQUIRED_DEFINITIONS -D${define})
  set(CMAKE_REQUIRED_QUIET ON)
  check_cxx_source_compiles("
#include <torch/csrc/distributed/c10d/${header}>
int main(int argc, char**) {
  ${use}
  return 0;
}" ${out})
  cmake_pop_check_state()
  set(${out} ${${out}} PARENT_SCOPE)
endfunction()

bevt_probe_c10d(BEVT_HAVE_C10D_GLOO USE_C10D_GLOO ProcessGroupGloo.hpp
  "auto o = c10d::ProcessGroupGloo::Options::create(); if (argc > 99) o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());")
bevt_probe_c10d(BEVT_HAVE_C10D_NCCL USE_C10D_NCCL ProcessGroupNCCL.hpp
  "auto o = c10d::ProcessGroupNCCL::Options::create(); if (argc > 99) { c10::intrusive_ptr<c10d::Store> s; c10::make_intrusive<c10d::ProcessGroupNCCL>(s, 0, 1, o); }")

set(BEVT_C10D_DEFINITIONS "")
if(BEVT_HAVE_C10D_GLOO)
  list(APPEND BEVT_C10D_DEFINITIONS USE_C10D_GLOO)
endif()
if(BEVT_HAVE_C10D_NCCL)
  list(APPEND BEVT_C10D_DEFINITIONS USE_C10D_NCCL)
endif()
set(_gloo no)
set(_nccl no)
if(BEVT_HAVE_C10D_GLOO)
  set(_gloo yes)
endif()
if(BEVT_HAVE_C10D_NCCL)
  set(_nccl yes)
endif()
message(STATUS "bevt distributed (c10d): Gloo ${_gloo}, NCCL ${_nccl}")

# Applies the probe results to the source that includes c10d's process-group headers.
function(bevt_configure_dist source)
  if(BEVT_C10D_DEFINITIONS)
    set_source_files_properties(${source} PROPERTIES COMPILE_DEFINITIONS "${BEVT_C10D_DEFINITIONS}")
  endif()
  if(BEVT_HAVE_C10D_NCCL AND BEVT_NCCL_INCLUDE_DIR)
    set_source_files_properties(${source} PROPERTIES INCLUDE_DIRECTORIES "${BEVT_NCCL_INCLUDE_DIR}")
  endif()
endfunction()
