// Typed, validated access to one table of an experiment file. Torch-free; toml++ stays behind the pimpl so
// that plugin headers do not pay for it.
//
// A plugin declares the keys it accepts (KeySpec: name, type, default, one-line doc). The host validates the
// table against that list before the plugin's factory runs: unknown keys (with file:line and the nearest known
// key), wrong types (expected and found), missing required keys (naming the table). The factory then reads
// values with get_*(); defaults are already filled in.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bevt {

enum class ValueType { Bool, Int, Float, String, IntList, FloatList, StringList, Table };
const char* type_name(ValueType t);

struct KeySpec {
  std::string name;
  ValueType type = ValueType::String;
  std::optional<std::string> default_toml;  // the default as a TOML literal; nullopt: the key is required
  std::string doc;
  bool required() const { return !default_toml.has_value(); }
};

// Builders for KeySpec lists, so that a plugin's declaration reads like a table:
//   {key("embed_dim", 96, "channels after patch embedding"), required_key("root", ValueType::String, "...")}
KeySpec key(std::string name, bool def, std::string doc);
KeySpec key(std::string name, int def, std::string doc);
KeySpec key(std::string name, int64_t def, std::string doc);
KeySpec key(std::string name, double def, std::string doc);
KeySpec key(std::string name, const char* def, std::string doc);
KeySpec key(std::string name, const std::string& def, std::string doc);
KeySpec key(std::string name, const std::vector<int64_t>& def, std::string doc);
KeySpec key(std::string name, const std::vector<double>& def, std::string doc);
KeySpec key(std::string name, const std::vector<std::string>& def, std::string doc);
KeySpec required_key(std::string name, ValueType type, std::string doc);
// An optional sub-table whose contents its owner validates (e.g. a nested component).
KeySpec table_key(std::string name, std::string doc);

class Config {
 public:
  struct Impl;

  Config();  // an empty table
  static Config from_toml(std::string_view text, const std::string& source_name);  // throws UserError
  static Config from_file(const std::string& path);                                // throws UserError

  // Dotted path of this table inside its experiment ("model.backbone"), "" for the root.
  const std::string& path() const;
  // "file.toml:12" for a key (or this table when key is empty); "<set>" for command-line overrides.
  std::string where(std::string_view key = {}) const;

  bool has(std::string_view key) const;
  std::vector<std::string> keys() const;
  std::optional<ValueType> type_of(std::string_view key) const;

  bool get_bool(std::string_view key) const;
  int64_t get_int(std::string_view key) const;
  double get_float(std::string_view key) const;  // an integer value is accepted
  std::string get_string(std::string_view key) const;
  std::vector<int64_t> get_int_list(std::string_view key) const;
  std::vector<double> get_float_list(std::string_view key) const;
  std::vector<std::string> get_string_list(std::string_view key) const;
  Config get_table(std::string_view key) const;

  bool get_bool(std::string_view key, bool def) const;
  int64_t get_int(std::string_view key, int64_t def) const;
  double get_float(std::string_view key, double def) const;
  std::string get_string(std::string_view key, const std::string& def) const;

  // Sets key to the value a TOML literal spells ("3", "[1, 2]", "'x'"), creating parent tables of a dotted key.
  void set_toml(std::string_view dotted_key, std::string_view literal, const std::string& source = "<set>");
  void erase(std::string_view key);

  // Checks this table against `spec` and fills in defaults. Throws UserError (one line) on the first problem.
  // Keys listed in `ignore` (e.g. "plugin") are accepted without a spec.
  void validate(const std::vector<KeySpec>& spec, const std::vector<std::string>& ignore = {"plugin"});

  std::string to_toml() const;  // this table as TOML text (sorted keys)
  Config deep_copy() const;

  Impl& impl() const { return *impl_; }

 private:
  explicit Config(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace bevt
