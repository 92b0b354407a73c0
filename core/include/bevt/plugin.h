// The plugin boundary. A plugin library registers one or more plugins with BEVT_REGISTER; the entry object
// that bevt_add_plugin links in exports, through Boost.DLL, the SDK ABI version + build fingerprint (checked
// by the host before anything else) and the manifest (kind, name, summary, keys, factory per plugin).
//
//   class MyBackbone : public bevt::Backbone {
//    public:
//     static std::vector<bevt::KeySpec> keys() { return {bevt::key("dim", 64, "channels")}; }
//     MyBackbone(const bevt::Config& cfg, const bevt::BuildContext& ctx);
//     ...
//   };
//   BEVT_REGISTER(bevt::plugin<bevt::Backbone, MyBackbone>("my_backbone", "one-line summary"));
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "bevt/config.h"
#include "bevt/context.h"
#include "bevt/version.h"

namespace bevt {

// Interface → kind; each interface header specialises it.
template <class Interface>
struct KindOf;

using Factory = std::function<AnyComponent(const Config&, const BuildContext&)>;

struct PluginInfo {
  Kind kind = Kind::Backbone;
  std::string name;
  std::string summary;
  std::vector<KeySpec> keys;
  std::vector<std::string> official_names;  // official PyTorch classes it reproduces (bevt-forward --fixture)
  Factory factory;  // returns the std::shared_ptr<Interface> of this kind

  PluginInfo& with_keys(std::vector<KeySpec> k) { keys = std::move(k); return *this; }
  PluginInfo& with_official_names(std::vector<std::string> n) { official_names = std::move(n); return *this; }
};

// Read by the host before it touches any C++ object of the library; C layout on purpose.
struct PluginAbi {
  int abi_version;
  const char* fingerprint;
};

namespace detail {
template <class T, class = void>
struct HasKeys : std::false_type {};
template <class T>
struct HasKeys<T, std::void_t<decltype(T::keys())>> : std::true_type {};
}  // namespace detail

// Describes plugin `name`, implemented by Impl (constructible from (const Config&, const BuildContext&) or
// from (const Config&)), offered as Interface. Keys default to Impl::keys() when Impl declares them.
template <class Interface, class Impl>
PluginInfo plugin(std::string name, std::string summary) {
  static_assert(std::is_base_of_v<Interface, Impl>, "Impl must derive from the plugin interface");
  PluginInfo info;
  info.kind = KindOf<Interface>::value;
  info.name = std::move(name);
  info.summary = std::move(summary);
  if constexpr (detail::HasKeys<Impl>::value) info.keys = Impl::keys();
  info.factory = [](const Config& cfg, const BuildContext& ctx) -> AnyComponent {
    std::shared_ptr<Interface> obj;
    if constexpr (std::is_constructible_v<Impl, const Config&, const BuildContext&>)
      obj = std::make_shared<Impl>(cfg, ctx);
    else
      obj = std::make_shared<Impl>(cfg);
    return AnyComponent(std::move(obj));
  };
  return info;
}

namespace detail {
// One registry per plugin library: hidden, so that libraries never share (or interpose) each other's.
__attribute__((visibility("hidden"))) std::vector<PluginInfo>& library_registry();
struct Registrar {
  explicit Registrar(PluginInfo info) { library_registry().push_back(std::move(info)); }
};
}  // namespace detail

}  // namespace bevt

#define BEVT_CONCAT_IMPL(a, b) a##b
#define BEVT_CONCAT(a, b) BEVT_CONCAT_IMPL(a, b)
// Registers a plugin described by a PluginInfo expression (see bevt::plugin). Variadic so that the template
// argument list inside the expression needs no extra parentheses.
#define BEVT_REGISTER(...) \
  static const ::bevt::detail::Registrar BEVT_CONCAT(bevt_registrar_, __COUNTER__)(__VA_ARGS__)
