// The SDK's ABI version and the build fingerprint a plugin library is checked against before the host calls
// anything else in it. Torch-free apart from torch/version.h (a few macros).
#pragma once

#include <torch/version.h>

// Bump when an interface in core/include/bevt changes in a way that breaks already-built plugins.
// 4: Dataset::problems() and Dataset::check() (issue 20).
// 5: Tokenizer::target_dim() and targets() (issue 18), Head::forward_at() (issue 17): new virtuals.
#ifndef BEVT_SDK_ABI_VERSION
#define BEVT_SDK_ABI_VERSION 5
#endif

#ifndef BEVT_TORCH_CUDA
#define BEVT_TORCH_CUDA 0
#endif

#define BEVT_STR2(x) #x
#define BEVT_STR(x) BEVT_STR2(x)

#if defined(__clang__)
#define BEVT_COMPILER_ID "clang-" BEVT_STR(__clang_major__)
#elif defined(__GNUC__)
#define BEVT_COMPILER_ID "gcc-" BEVT_STR(__GNUC__)
#else
#define BEVT_COMPILER_ID "unknown"
#endif

#if defined(_GLIBCXX_USE_CXX11_ABI)
#define BEVT_CXX11_ABI BEVT_STR(_GLIBCXX_USE_CXX11_ABI)
#else
#define BEVT_CXX11_ABI "n/a"
#endif

// Everything that must agree between the host and a plugin for C++ objects (std::string, torch::Tensor,
// nn::Module) to cross the library boundary safely. The compiler counts by family and major version: the
// libstdc++ ABI is stable within one, torch's C++ API is not across minor versions.
#if defined(BEVT_FINGERPRINT_OVERRIDE)  // lets the tests build a deliberately mismatched library
#define BEVT_BUILD_FINGERPRINT BEVT_FINGERPRINT_OVERRIDE
#else
#define BEVT_BUILD_FINGERPRINT                                                                   \
  "compiler=" BEVT_COMPILER_ID ";torch=" BEVT_STR(TORCH_VERSION_MAJOR) "." BEVT_STR(           \
      TORCH_VERSION_MINOR) ";cxx11abi=" BEVT_CXX11_ABI ";cuda=" BEVT_STR(BEVT_TORCH_CUDA)
#endif

namespace bevt {
inline constexpr int kSdkAbiVersion = BEVT_SDK_ABI_VERSION;
inline constexpr const char* kBuildFingerprint = BEVT_BUILD_FINGERPRINT;
}  // namespace bevt
