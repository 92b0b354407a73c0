#include "experiment_file.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "../../sdk/config_impl.h"
#include "bevt/digest.h"
#include "bevt/error.h"

namespace fs = std::filesystem;

namespace bevt::host {

namespace {

constexpr const char* kDelete = "_delete_";

toml::table parse_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UserError(fmt::format("{}: cannot open the experiment file (check the path)", path));
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return toml::parse(ss.str(), std::string(path));
  } catch (const toml::parse_error& e) {
    throw UserError(fmt::format("{}:{}:{}: invalid TOML: {}", path, e.source().begin.line, e.source().begin.column,
                                e.description()));
  }
}

bool take_delete_marker(toml::table& t, const std::string& where) {
  toml::node* n = t.get(kDelete);
  if (!n) return false;
  if (!n->is_boolean())
    throw UserError(fmt::format("{}: '{}' must be true or false", where, kDelete));
  bool v = n->as_boolean()->get();
  t.erase(kDelete);
  return v;
}

void strip_markers(toml::table& t, const std::string& where) {
  take_delete_marker(t, where);
  for (auto& [k, v] : t)
    if (auto* sub = v.as_table()) strip_markers(*sub, where);
}

// Merges src into dst, moving nodes (moves keep their source locations).
void merge(toml::table& dst, toml::table&& src, const std::string& where) {
  for (auto& [k, v] : src) {
    if (auto* sub = v.as_table()) {
      bool replace = take_delete_marker(*sub, where);
      toml::node* existing = dst.get(k.str());
      if (!replace && existing && existing->is_table()) {
        merge(*existing->as_table(), std::move(*sub), where);
        continue;
      }
      strip_markers(*sub, where);
    }
    dst.insert_or_assign(k.str(), std::move(v));
  }
}

toml::table load_tree(const fs::path& path, std::vector<std::string>& stack) {
  std::string canon = fs::weakly_canonical(path).string();
  for (const auto& s : stack)
    if (s == canon) throw UserError(fmt::format("{}: base files include each other in a cycle", path.string()));
  stack.push_back(canon);
  toml::table self = parse_file(path.string());

  toml::table merged;
  if (toml::node* base = self.get("base")) {
    std::vector<std::string> bases;
    auto where = fmt::format("{}:{}", path.string(), base->source().begin.line);
    if (base->is_string()) {
      bases.push_back(base->as_string()->get());
    } else if (base->is_array()) {
      for (const auto& e : *base->as_array()) {
        if (!e.is_string()) throw UserError(fmt::format("{}: 'base' must list file names (strings)", where));
        bases.push_back(e.as_string()->get());
      }
    } else {
      throw UserError(fmt::format("{}: 'base' must be a file name or a list of file names", where));
    }
    for (const auto& b : bases) {
      fs::path bp = fs::path(b).is_absolute() ? fs::path(b) : path.parent_path() / b;  // relative to this file
      if (!fs::exists(bp))
        throw UserError(fmt::format("{}: base file '{}' not found (looked for {})", where, b, bp.string()));
      merge(merged, load_tree(bp, stack), bp.string());
    }
    self.erase("base");
  }
  merge(merged, std::move(self), path.string());
  stack.pop_back();
  return merged;
}

}  // namespace

Config load_experiment(const std::string& path, const std::vector<std::string>& overrides) {
  if (!fs::exists(path)) throw UserError(fmt::format("{}: experiment file not found", path));
  std::vector<std::string> stack;
  Config cfg = config_detail::make_root(load_tree(path, stack), path);
  for (const auto& o : overrides) {
    auto eq = o.find('=');
    if (eq == std::string::npos || eq == 0)
      throw UserError(fmt::format("--set '{}': expected KEY=VALUE, e.g. --set run.seed=1", o));
    std::string key = o.substr(0, eq);
    cfg.set_toml(key, o.substr(eq + 1), fmt::format("--set {}", o));
  }
  return cfg;
}

std::string hashed_text(const Config& root, bool with_length) {
  Config c = root.deep_copy();
  if (c.has("log") && c.type_of("log") != ValueType::Table) c = root.deep_copy();  // the parser reports it
  auto drop = [&c](const char* table, std::initializer_list<const char*> keys) {
    if (!c.has(table) || c.type_of(table) != ValueType::Table) return;
    Config t = c.get_table(table);
    for (const char* k : keys) t.erase(k);
  };
  drop("run", {"work_dir", "log_every", "ckpt_every", "keep_last", "threads"});
  if (!with_length) drop("run", {"max_steps", "epochs"});
  drop("loader", {"workers", "prefetch"});
  drop("dist", {"timeout", "bucket_mb", "overlap"});
  drop("finetune", {"eval_every"});
  c.erase("log");  // where metrics go
  if (c.has("run") && c.type_of("run") == ValueType::Table) {
    Config run = c.get_table("run");
    if (run.has("device") && run.type_of("device") == ValueType::String &&
        run.get_string("device").rfind("cuda:", 0) == 0)
      run.set_toml("device", "'cuda'", "<hash>");
  }
  return c.to_toml();
}

std::string experiment_hash(const Config& root, bool with_length) { return digest_hex(hashed_text(root, with_length)); }

namespace {
void flatten(const toml::table& t, const std::string& prefix, std::map<std::string, std::string>& out) {
  for (const auto& [k, v] : t) {
    const std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (const auto* sub = v.as_table()) {
      flatten(*sub, key, out);
      continue;
    }
    std::ostringstream os;
    v.visit([&os](const auto& n) { os << n; });
    out[key] = os.str();
  }
}
}  // namespace

std::vector<std::string> changed_keys(const std::string& toml_a, const std::string& toml_b) {
  std::map<std::string, std::string> a, b;
  try {
    flatten(toml::parse(toml_a), "", a);
    flatten(toml::parse(toml_b), "", b);
  } catch (const toml::parse_error&) {
    return {};
  }
  std::set<std::string> keys;
  for (const auto& [k, v] : a) keys.insert(k);
  for (const auto& [k, v] : b) keys.insert(k);
  std::vector<std::string> out;
  for (const auto& k : keys) {
    auto ia = a.find(k), ib = b.find(k);
    if (ia == a.end() || ib == b.end() || ia->second != ib->second) out.push_back(k);
  }
  return out;
}

}  // namespace bevt::host
