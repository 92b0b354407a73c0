#define BOOST_DLL_USE_STD_FS
#include "registry.h"

#include <dlfcn.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <cstdlib>
#include <filesystem>

#include "bevt/error.h"
#include "bevt/strings.h"
#include "bevt/version.h"

namespace fs = std::filesystem;

namespace bevt::host {

namespace {
// Loaded libraries are never unloaded: torch registers operators and static objects from them, and a
// dlclose at exit would run their destructors after torch's. Held by a leaked vector on purpose.
std::vector<boost::dll::shared_library>& keep_loaded() {
  static auto* libs = new std::vector<boost::dll::shared_library>();
  return *libs;
}

bool looks_like_path(const std::string& s) {
  return s.find('/') != std::string::npos || s.find('\\') != std::string::npos ||
         (s.size() > 3 && s.compare(s.size() - 3, 3, ".so") == 0) || s.rfind('.', 0) == 0 ||
         s.rfind('~', 0) == 0;
}
}  // namespace

std::string executable_dir() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : p.parent_path().string();
}

std::vector<std::string> Registry::default_dirs() {
  std::vector<std::string> dirs;
  // build/bin/bevt-run → build/lib/bevt/plugins; <prefix>/bin → <prefix>/lib/bevt/plugins (GNUInstallDirs lib).
  fs::path exe = executable_dir();
  for (const char* rel : {"../lib/bevt/plugins", "../lib64/bevt/plugins"}) {
    fs::path d = exe / rel;
    std::error_code ec;
    if (fs::is_directory(d, ec)) {
      dirs.push_back(fs::weakly_canonical(d, ec).string());
      break;
    }
  }
  if (const char* env = std::getenv("BEVT_PLUGIN_PATH")) {
    std::string s = env;
    size_t start = 0;
    while (start <= s.size()) {
      size_t colon = s.find(':', start);
      std::string part = s.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
      if (!part.empty()) dirs.push_back(part);
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
  }
  return dirs;
}

Registry Registry::discover(const std::vector<std::string>& dirs) {
  Registry r;
  std::vector<std::string> seen;
  for (const auto& dir : dirs) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      r.problems_.push_back({dir, "plugin folder does not exist"});
      continue;
    }
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const auto& p = entry.path();
      if (entry.is_regular_file(ec) && p.extension() == ".so") files.push_back(fs::weakly_canonical(p, ec).string());
    }
    std::sort(files.begin(), files.end());  // load order independent of the file system's
    for (const auto& f : files) {
      if (std::find(seen.begin(), seen.end(), f) != seen.end()) continue;  // same folder listed twice
      seen.push_back(f);
      r.load_library(f);
    }
  }
  return r;
}

void Registry::load_library(const std::string& path) {
  boost::dll::shared_library lib;
  boost::dll::fs::error_code ec;
  dlerror();
  lib.load(path, ec, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  if (ec || !lib.is_loaded()) {
    const char* why = dlerror();
    problems_.push_back({path, fmt::format("cannot load: {}", why ? why : ec.message())});
    return;
  }
  if (!lib.has("bevt_plugin_abi") || !lib.has("bevt_plugin_manifest")) {
    problems_.push_back({path, "not a bevt plugin library (no bevt_plugin_abi entry point)"});
    return;
  }
  // The plain-C ABI record first: nothing C++ in the library is touched unless it matches.
  const PluginAbi* abi = lib.get<const PluginAbi*()>("bevt_plugin_abi")();
  if (abi->abi_version != kSdkAbiVersion) {
    problems_.push_back({path, fmt::format("SDK ABI version mismatch: library {} vs host {} (rebuild the plugin "
                                           "against this bevt SDK)",
                                           abi->abi_version, kSdkAbiVersion)});
    return;
  }
  if (std::string(abi->fingerprint) != kBuildFingerprint) {
    problems_.push_back({path, fmt::format("build fingerprint mismatch: library '{}' vs host '{}' (rebuild the "
                                           "plugin with the host's compiler and torch)",
                                           abi->fingerprint, kBuildFingerprint)});
    return;
  }
  const auto& manifest = lib.get_alias<const std::vector<PluginInfo>&()>("bevt_plugin_manifest")();
  for (const auto& info : manifest) {
    for (const auto& existing : plugins_) {
      if (existing.info.name == info.name)
        throw UserError(fmt::format("two plugin libraries offer the name '{}': {} and {} (remove one, or drop its "
                                    "folder from BEVT_PLUGIN_PATH / --plugin-dir)",
                                    info.name, existing.library, path));
    }
    plugins_.push_back({info, path});
  }
  keep_loaded().push_back(std::move(lib));
}

std::vector<std::string> Registry::names(std::optional<Kind> kind) const {
  std::vector<std::string> out;
  for (const auto& p : plugins_)
    if (!kind || p.info.kind == *kind) out.push_back(p.info.name);
  std::sort(out.begin(), out.end());
  return out;
}

const LoadedPlugin& Registry::find(const std::string& name, std::optional<Kind> expected,
                                   const std::string& where) const {
  if (looks_like_path(name))
    throw UserError(fmt::format("{}: plugin = \"{}\" looks like a path; a plugin is named, never loaded from a path "
                                "in an experiment file (put its folder in BEVT_PLUGIN_PATH or --plugin-dir)",
                                where, name));
  for (const auto& p : plugins_) {
    if (p.info.name != name) continue;
    if (expected && p.info.kind != *expected)
      throw UserError(fmt::format("{}: plugin '{}' is a {}, but a {} is expected here (available {}s: {})", where,
                                  name, kind_name(p.info.kind), kind_name(*expected), kind_name(*expected),
                                  join(names(expected))));
    return p;
  }
  auto candidates = names(expected);
  std::string kind = expected ? std::string(kind_name(*expected)) : "plugin";
  std::string hint = nearest_name(name, candidates);
  std::string problems;
  if (!problems_.empty())
    problems = fmt::format("; {} librar{} could not be loaded, see bevt-run --list-plugins", problems_.size(),
                           problems_.size() == 1 ? "y" : "ies");
  throw UserError(fmt::format("{}: unknown {} '{}'{} (available: {}){}", where, kind, name,
                              hint.empty() ? "" : fmt::format(", did you mean '{}'?", hint),
                              candidates.empty() ? "none" : join(candidates), problems));
}

AnyComponent Registry::build(const LoadedPlugin& p, Config& cfg, const BuildContext& ctx) const {
  cfg.validate(p.info.keys);
  AnyComponent built;
  try {
    built = p.info.factory(cfg, ctx);
  } catch (const UserError& e) {
    std::string msg = e.what();
    // Plugin messages usually already name the file (cfg.where(key)); prefix the table only if they do not.
    std::string file = cfg.where().substr(0, cfg.where().rfind(':'));
    if (msg.find(file) == std::string::npos && msg.find(cfg.path()) == std::string::npos)
      msg = fmt::format("{} [{}]: {}", cfg.where(), cfg.path(), msg);
    throw UserError(msg);
  } catch (const std::exception& e) {
    throw UserError(fmt::format("{} [{}]: plugin '{}' failed to build: {}", cfg.where(), cfg.path(), p.info.name,
                                first_line(e.what())));
  }
  const bool empty = std::visit([](const auto& ptr) { return ptr == nullptr; }, built);
  if (empty || kind_of(built) != p.info.kind)
    throw RunError(fmt::format("plugin '{}' ({}) returned {} instead of a {}: the library is broken (rebuild it)",
                               p.info.name, p.library, empty ? "nothing" : kind_name(kind_of(built)),
                               kind_name(p.info.kind)));
  return built;
}

}  // namespace bevt::host
