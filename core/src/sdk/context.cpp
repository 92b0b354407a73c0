#include "bevt/context.h"

#include <fmt/format.h>

#include "bevt/backbone_spec.h"
#include "bevt/error.h"
#include "bevt/strings.h"

namespace bevt {

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Backbone: return "backbone";
    case Kind::Tokenizer: return "tokenizer";
    case Kind::Masker: return "masker";
    case Kind::Dataset: return "dataset";
    case Kind::Head: return "head";
  }
  return "?";
}

std::optional<Kind> parse_kind(std::string_view s) {
  for (Kind k : {Kind::Backbone, Kind::Tokenizer, Kind::Masker, Kind::Dataset, Kind::Head})
    if (s == kind_name(k)) return k;
  return std::nullopt;
}

bool BackboneSpec::has_stage(const std::string& name) const {
  for (const auto& s : stages)
    if (s.name == name) return true;
  return false;
}

const StageSpec& BackboneSpec::stage(const std::string& name) const {
  std::vector<std::string> names;
  for (const auto& s : stages) {
    if (s.name == name) return s;
    names.push_back(s.name);
  }
  throw UserError(fmt::format("the backbone has no feature '{}' (it has: {}){}", name, join(names),
                              did_you_mean(name, names)));
}

std::array<int64_t, 3> BackboneSpec::token_grid(int64_t T, int64_t H, int64_t W) const {
  auto up = [](int64_t x, int64_t p) { return p > 0 ? (x + p - 1) / p : x; };
  return {up(T, patch[0]), up(H, patch[1]), up(W, patch[2])};
}

}  // namespace bevt
