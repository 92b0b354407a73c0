#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "bevt/error.h"
#include "bevt/strings.h"
#include "config_impl.h"

namespace bevt {

const char* type_name(ValueType t) {
  switch (t) {
    case ValueType::Bool: return "bool";
    case ValueType::Int: return "integer";
    case ValueType::Float: return "float";
    case ValueType::String: return "string";
    case ValueType::IntList: return "list of integers";
    case ValueType::FloatList: return "list of floats";
    case ValueType::StringList: return "list of strings";
    case ValueType::Table: return "table";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------- KeySpec builders

namespace {
template <class T>
std::string toml_literal(const T& v) {
  toml::value<T> node(v);
  std::ostringstream os;
  os << node;
  return os.str();
}
template <class T>
std::string toml_list_literal(const std::vector<T>& v) {
  toml::array a;
  for (const auto& x : v) a.push_back(x);
  std::ostringstream os;
  os << a;
  return os.str();
}
KeySpec make_key(std::string name, ValueType type, std::string def, std::string doc) {
  KeySpec k;
  k.name = std::move(name);
  k.type = type;
  k.default_toml = std::move(def);
  k.doc = std::move(doc);
  return k;
}
}  // namespace

KeySpec key(std::string name, bool def, std::string doc) {
  return make_key(std::move(name), ValueType::Bool, def ? "true" : "false", std::move(doc));
}
KeySpec key(std::string name, int def, std::string doc) {
  return make_key(std::move(name), ValueType::Int, std::to_string(def), std::move(doc));
}
KeySpec key(std::string name, int64_t def, std::string doc) {
  return make_key(std::move(name), ValueType::Int, std::to_string(def), std::move(doc));
}
KeySpec key(std::string name, double def, std::string doc) {
  // Shortest text that reads back as the same double (0.95, not 0.94999999999999996), always a TOML float.
  std::string lit = fmt::format("{}", def);
  if (lit.find_first_of(".eEn") == std::string::npos) lit += ".0";
  return make_key(std::move(name), ValueType::Float, lit, std::move(doc));
}
KeySpec key(std::string name, const char* def, std::string doc) {
  return make_key(std::move(name), ValueType::String, toml_literal(std::string(def)), std::move(doc));
}
KeySpec key(std::string name, const std::string& def, std::string doc) {
  return make_key(std::move(name), ValueType::String, toml_literal(def), std::move(doc));
}
KeySpec key(std::string name, const std::vector<int64_t>& def, std::string doc) {
  return make_key(std::move(name), ValueType::IntList, toml_list_literal(def), std::move(doc));
}
KeySpec key(std::string name, const std::vector<double>& def, std::string doc) {
  return make_key(std::move(name), ValueType::FloatList, toml_list_literal(def), std::move(doc));
}
KeySpec key(std::string name, const std::vector<std::string>& def, std::string doc) {
  return make_key(std::move(name), ValueType::StringList, toml_list_literal(def), std::move(doc));
}
KeySpec required_key(std::string name, ValueType type, std::string doc) {
  KeySpec k;
  k.name = std::move(name);
  k.type = type;
  k.doc = std::move(doc);
  return k;
}
KeySpec table_key(std::string name, std::string doc) {
  return make_key(std::move(name), ValueType::Table, "{}", std::move(doc));
}

// ---------------------------------------------------------------------------------------------- helpers

namespace config_detail {

std::string join_path(const std::string& a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return a;
  return a + "." + std::string(b);
}

std::optional<ValueType> value_type(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::boolean: return ValueType::Bool;
    case toml::node_type::integer: return ValueType::Int;
    case toml::node_type::floating_point: return ValueType::Float;
    case toml::node_type::string: return ValueType::String;
    case toml::node_type::table: return ValueType::Table;
    case toml::node_type::array: {
      const auto& arr = *node.as_array();
      bool all_int = true, all_num = true, all_str = true;
      for (const auto& e : arr) {
        all_int = all_int && e.is_integer();
        all_num = all_num && (e.is_integer() || e.is_floating_point());
        all_str = all_str && e.is_string();
      }
      if (all_int) return ValueType::IntList;  // also the empty list
      if (all_num) return ValueType::FloatList;
      if (all_str) return ValueType::StringList;
      return std::nullopt;
    }
    default: return std::nullopt;
  }
}

std::string describe_node_type(const toml::node& node) {
  auto t = value_type(node);
  if (t) return type_name(*t);
  if (node.is_array()) return "mixed list";
  return "date/time";
}

namespace {
void record(const toml::table& table, const std::string& prefix, std::map<std::string, std::string>& out) {
  for (const auto& [k, v] : table) {
    std::string path = join_path(prefix, k.str());
    const auto& src = v.source();
    if (src.path) {
      std::string where = *src.path;
      if (src.begin.line > 0 && (where.empty() || where[0] != '<')) where += fmt::format(":{}", src.begin.line);
      out[path] = where;
    }
    if (const auto* sub = v.as_table()) record(*sub, path, out);
  }
}
}  // namespace

void record_sources(Config::Impl& impl) { record(*impl.root, "", *impl.where); }

Config make_root(toml::table root, const std::string& fallback_source) {
  Config c;
  auto& impl = c.impl();
  impl.root = std::make_shared<toml::table>(std::move(root));
  impl.table = impl.root.get();
  impl.path.clear();
  impl.where = std::make_shared<std::map<std::string, std::string>>();
  (*impl.where)[""] = fallback_source;
  record_sources(impl);
  return c;
}

toml::table parse_literal(std::string_view literal, const std::string& source) {
  std::string doc = "v = " + std::string(literal);
  try {
    return toml::parse(doc, std::string(source));
  } catch (const toml::parse_error&) {
    // A bare word (cpu, auto, a path) is taken as a string, as users type it on a command line.
    toml::table t;
    t.insert("v", std::string(literal));
    return t;
  }
}

}  // namespace config_detail

using namespace config_detail;

// ---------------------------------------------------------------------------------------------- Config

Config::Config() : impl_(std::make_shared<Impl>()) {
  impl_->root = std::make_shared<toml::table>();
  impl_->table = impl_->root.get();
  impl_->where = std::make_shared<std::map<std::string, std::string>>();
}

Config::Config(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Config Config::from_toml(std::string_view text, const std::string& source_name) {
  try {
    return make_root(toml::parse(text, std::string(source_name)), source_name);
  } catch (const toml::parse_error& e) {
    throw UserError(fmt::format("{}:{}:{}: invalid TOML: {}", source_name, e.source().begin.line,
                                e.source().begin.column, e.description()));
  }
}

Config Config::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UserError(fmt::format("{}: cannot open the file (check the path)", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return from_toml(ss.str(), path);
}

const std::string& Config::path() const { return impl_->path; }

std::string Config::where(std::string_view key) const {
  std::string full = join_path(impl_->path, key);
  // The nearest recorded location: the key itself, else its table, else the root's file.
  while (true) {
    auto it = impl_->where->find(full);
    if (it != impl_->where->end()) return it->second;
    if (full.empty()) return "<config>";
    auto dot = full.rfind('.');
    full = dot == std::string::npos ? "" : full.substr(0, dot);
  }
}

bool Config::has(std::string_view key) const { return impl_->table->get(key) != nullptr; }

std::vector<std::string> Config::keys() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : *impl_->table) out.emplace_back(k.str());
  return out;
}

std::optional<ValueType> Config::type_of(std::string_view key) const {
  const toml::node* n = impl_->table->get(key);
  if (!n) return std::nullopt;
  return value_type(*n);
}

namespace {
const toml::node& require(const Config& c, const toml::table& t, std::string_view key) {
  const toml::node* n = t.get(key);
  if (!n)
    throw UserError(fmt::format("{}: missing key '{}' in table [{}]", c.where(), key,
                                c.path().empty() ? "<root>" : c.path()));
  return *n;
}
[[noreturn]] void wrong_type(const Config& c, std::string_view key, const char* expected, const toml::node& n) {
  throw UserError(fmt::format("{}: key '{}' should be of type {}, found {}", c.where(key),
                              join_path(c.path(), key), expected, describe_node_type(n)));
}
}  // namespace

bool Config::get_bool(std::string_view key) const {
  const auto& n = require(*this, *impl_->table, key);
  if (!n.is_boolean()) wrong_type(*this, key, "bool", n);
  return n.as_boolean()->get();
}
int64_t Config::get_int(std::string_view key) const {
  const auto& n = require(*this, *impl_->table, key);
  if (!n.is_integer()) wrong_type(*this, key, "integer", n);
  return n.as_integer()->get();
}
double Config::get_float(std::string_view key) const {
  const auto& n = require(*this, *impl_->table, key);
  if (n.is_integer()) return static_cast<double>(n.as_integer()->get());
  if (!n.is_floating_point()) wrong_type(*this, key, "float", n);
  return n.as_floating_point()->get();
}
std::string Config::get_string(std::string_view key) const {
  const auto& n = require(*this, *impl_->table, key);
  if (!n.is_string()) wrong_type(*this, key, "string", n);
  return n.as_string()->get();
}
std::vector<int64_t> Config::get_int_list(std::string_view key) const {
  const auto& n = require(*this, *impl_->table, key);
  if (value_type(n) != ValueType::IntList) wrong_type(*this, key, "list of integers", n);
  std::vector<int64_t> out;
  for (const auto& e : *n.as_array()) out.push_back(e.as_integer()->get());
  return out;
}
std::vector<double> Config::get_float_list(std::string_view key) const {
  const auto& n = require(*this, *impl_->table, key);
  auto t = value_type(n);
  if (t != ValueType::IntList && t != ValueType::FloatList) wrong_type(*this, key, "list of floats", n);
  std::vector<double> out;
  for (const auto& e : *n.as_array())
    out.push_back(e.is_integer() ? static_cast<double>(e.as_integer()->get()) : e.as_floating_point()->get());
  return out;
}
std::vector<std::string> Config::get_string_list(std::string_view key) const {
  const auto& n = require(*this, *impl_->table, key);
  auto t = value_type(n);
  if (t != ValueType::StringList && !(n.is_array() && n.as_array()->empty()))
    wrong_type(*this, key, "list of strings", n);
  std::vector<std::string> out;
  for (const auto& e : *n.as_array()) out.push_back(e.as_string()->get());
  return out;
}
Config Config::get_table(std::string_view key) const {
  auto& n = const_cast<toml::node&>(require(*this, *impl_->table, key));
  if (!n.is_table()) wrong_type(*this, key, "table", n);
  auto impl = std::make_shared<Impl>(*impl_);
  impl->table = n.as_table();
  impl->path = join_path(impl_->path, key);
  return Config(impl);
}

bool Config::get_bool(std::string_view key, bool def) const { return has(key) ? get_bool(key) : def; }
int64_t Config::get_int(std::string_view key, int64_t def) const { return has(key) ? get_int(key) : def; }
double Config::get_float(std::string_view key, double def) const { return has(key) ? get_float(key) : def; }
std::string Config::get_string(std::string_view key, const std::string& def) const {
  return has(key) ? get_string(key) : def;
}

void Config::set_toml(std::string_view dotted_key, std::string_view literal, const std::string& source) {
  toml::table parsed = parse_literal(literal, source);
  toml::table* t = impl_->table;
  std::string_view rest = dotted_key;
  std::string full = impl_->path;
  while (true) {
    auto dot = rest.find('.');
    std::string_view part = rest.substr(0, dot);
    if (part.empty()) throw UserError(fmt::format("{}: empty key segment in '{}'", source, dotted_key));
    full = join_path(full, part);
    if (dot == std::string_view::npos) {
      t->insert_or_assign(part, std::move(*parsed.get("v")));
      (*impl_->where)[full] = source;
      return;
    }
    toml::node* next = t->get(part);
    if (!next) {
      t->insert(part, toml::table{});
      next = t->get(part);
      (*impl_->where)[full] = source;
    }
    if (!next->is_table())
      throw UserError(fmt::format("{}: '{}' is a {}, not a table, so '{}' cannot be set", source, full,
                                  describe_node_type(*next), dotted_key));
    t = next->as_table();
    rest = rest.substr(dot + 1);
  }
}

void Config::erase(std::string_view key) { impl_->table->erase(key); }

namespace {
bool type_accepts(ValueType expected, const toml::node& n) {
  auto found = value_type(n);
  if (!found) return false;
  if (*found == expected) return true;
  if (expected == ValueType::Float && *found == ValueType::Int) return true;
  if (expected == ValueType::FloatList && *found == ValueType::IntList) return true;
  bool empty_list = n.is_array() && n.as_array()->empty();
  if (empty_list && (expected == ValueType::StringList || expected == ValueType::FloatList)) return true;
  return false;
}
}  // namespace

void Config::validate(const std::vector<KeySpec>& spec, const std::vector<std::string>& ignore) {
  std::vector<std::string> known;
  for (const auto& k : spec) known.push_back(k.name);
  for (const auto& k : keys()) {
    if (std::find(known.begin(), known.end(), k) != known.end()) continue;
    if (std::find(ignore.begin(), ignore.end(), k) != ignore.end()) continue;
    std::string hint = nearest_name(k, known);
    // In a component table the key may come from a base that set another plugin: say how to start afresh.
    const std::string swap = has("plugin") ? "; if a base file set another plugin's keys here, start the table "
                                             "afresh with _delete_ = true (docs/plugins.md)"
                                           : "";
    throw UserError(fmt::format("{}: unknown key '{}' in [{}]{}{}", where(k), k, path().empty() ? "<root>" : path(),
                                hint.empty() ? fmt::format(" (known keys: {})", join(known))
                                             : fmt::format(", did you mean '{}'?", hint),
                                swap));
  }
  for (const auto& k : spec) {
    const toml::node* n = impl_->table->get(k.name);
    if (!n) {
      if (k.required())
        throw UserError(fmt::format("{}: missing required key '{}' in [{}] ({}: {})", where(), k.name,
                                    path().empty() ? "<root>" : path(), type_name(k.type), k.doc));
      set_toml(k.name, *k.default_toml, "<default>");
      continue;
    }
    if (!type_accepts(k.type, *n))
      throw UserError(fmt::format("{}: key '{}' should be of type {}, found {}", where(k.name),
                                  join_path(path(), k.name), type_name(k.type), describe_node_type(*n)));
  }
}

std::string Config::to_toml() const {
  std::ostringstream os;
  os << *impl_->table;
  return os.str();
}

Config Config::deep_copy() const {
  auto impl = std::make_shared<Impl>();
  impl->root = std::make_shared<toml::table>(*impl_->table);
  impl->table = impl->root.get();
  impl->path = impl_->path;
  impl->where = std::make_shared<std::map<std::string, std::string>>();
  // Keep the locations of this subtree, still keyed by full path (the copy keeps its path).
  for (const auto& [k, v] : *impl_->where)
    if (impl_->path.empty() || k == impl_->path || k.rfind(impl_->path + ".", 0) == 0) (*impl->where)[k] = v;
  // A copy's root is this table: re-root paths so lookups by join_path(path, key) still match.
  return Config(impl);
}

}  // namespace bevt
