// Linked into every plugin library by bevt_add_plugin: the library's registry and the two exported entry
// points the host reads. bevt_plugin_abi is plain C and is checked before bevt_plugin_manifest (C++ objects)
// is touched, so a library built against another SDK or torch is refused rather than crashing.
#include <boost/dll/alias.hpp>

#include "bevt/plugin.h"

namespace bevt::detail {
std::vector<PluginInfo>& library_registry() {
  static std::vector<PluginInfo> registry;
  return registry;
}
}  // namespace bevt::detail

extern "C" BOOST_SYMBOL_EXPORT const bevt::PluginAbi* bevt_plugin_abi() {
  static const bevt::PluginAbi abi{bevt::kSdkAbiVersion, bevt::kBuildFingerprint};
  return &abi;
}

namespace {
const std::vector<bevt::PluginInfo>& manifest() { return bevt::detail::library_registry(); }
}  // namespace

BOOST_DLL_ALIAS(manifest, bevt_plugin_manifest)
