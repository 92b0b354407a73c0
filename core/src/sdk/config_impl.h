// Config's private state, shared by the SDK's config.cpp and the host's experiment loader (both core/src).
// Plugins never see this header.
#pragma once

#include <map>
#include <memory>
#include <string>

#include <toml++/toml.h>

#include "bevt/config.h"

namespace bevt {

struct Config::Impl {
  std::shared_ptr<toml::table> root;  // keeps the whole tree alive for sub-table views
  toml::table* table = nullptr;       // this table inside root
  std::string path;                   // dotted path of `table`
  // "file:line" of every key by full dotted path, recorded where the value was parsed (copies of toml nodes
  // lose their source region, so it is kept here).
  std::shared_ptr<std::map<std::string, std::string>> where;
};

namespace config_detail {
// A Config owning `root` (after the host has merged bases and overrides into it); records source locations.
Config make_root(toml::table root, const std::string& fallback_source);
// Re-reads source locations of every node under the root (call after moving nodes in from other files).
void record_sources(Config::Impl& impl);
std::string join_path(const std::string& a, std::string_view b);
std::optional<ValueType> value_type(const toml::node& node);
std::string describe_node_type(const toml::node& node);
// Parses a TOML literal ("3", "[1, 2]", "'x'"); a bare word that is not TOML becomes a string.
toml::table parse_literal(std::string_view literal, const std::string& source);
}  // namespace config_detail

}  // namespace bevt
