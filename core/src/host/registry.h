// The plugin registry: finds plugin libraries (the host's own plugin folder, BEVT_PLUGIN_PATH, --plugin-dir),
// checks each library's ABI version and build fingerprint before touching anything else in it, reads its
// manifest, and builds components by name. Libraries stay loaded for the life of the process.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bevt/config.h"
#include "bevt/context.h"
#include "bevt/plugin.h"

namespace bevt::host {

struct LoadedPlugin {
  PluginInfo info;
  std::string library;  // path of the library that offers it
};

struct LibraryProblem {
  std::string library;
  std::string reason;
};

class Registry {
 public:
  // Scans `dirs` in order (later duplicates of a name are an error naming both libraries).
  static Registry discover(const std::vector<std::string>& dirs);
  // Folders searched by default: the host's own plugin folder, then BEVT_PLUGIN_PATH entries.
  static std::vector<std::string> default_dirs();

  const std::vector<LoadedPlugin>& plugins() const { return plugins_; }
  const std::vector<LibraryProblem>& problems() const { return problems_; }

  // Throws UserError: unknown name (listing that kind's names and the nearest), a value that looks like a
  // path, or a plugin of another kind than expected.
  const LoadedPlugin& find(const std::string& name, std::optional<Kind> expected, const std::string& where) const;
  std::vector<std::string> names(std::optional<Kind> kind = std::nullopt) const;

  // Validates `cfg` against the plugin's keys (filling defaults) and calls its factory; a throwing factory
  // becomes one UserError with its message and the config path, and a factory that returns nothing or another
  // kind than its manifest says is an error naming the library.
  AnyComponent build(const LoadedPlugin& p, Config& cfg, const BuildContext& ctx) const;

  template <class Interface>
  std::shared_ptr<Interface> build_as(const std::string& where, Config cfg, const BuildContext& ctx) const {
    const auto& p = find(cfg.get_string("plugin"), KindOf<Interface>::value, where);
    return component_cast<Interface>(build(p, cfg, ctx));
  }

 private:
  void load_library(const std::string& path);
  std::vector<LoadedPlugin> plugins_;
  std::vector<LibraryProblem> problems_;
};

// Directory of the running executable (/proc/self/exe).
std::string executable_dir();

}  // namespace bevt::host
