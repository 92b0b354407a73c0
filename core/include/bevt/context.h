// What the host knows when it builds a component, passed to every factory beside the component's Config.
// Heads learn their input channels from the backbone spec, MIM heads the vocabulary from the tokenizer,
// and a plugin that needs a sub-component (a perceptual network, say) asks the host to build it by name.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "bevt/backbone_spec.h"
#include "bevt/config.h"

namespace bevt {

enum class Kind { Backbone, Tokenizer, Masker, Dataset, Head };
const char* kind_name(Kind k);
std::optional<Kind> parse_kind(std::string_view s);

class Backbone;
class Tokenizer;
class Masker;
class Dataset;
class Head;

// One built component: the interface its plugin's kind names, in the order of Kind (so index() is the kind).
// Typed end to end: a factory returns one, the host stores one, and nothing is recovered by an unchecked cast.
using AnyComponent = std::variant<std::shared_ptr<Backbone>, std::shared_ptr<Tokenizer>, std::shared_ptr<Masker>,
                                  std::shared_ptr<Dataset>, std::shared_ptr<Head>>;

inline Kind kind_of(const AnyComponent& c) { return static_cast<Kind>(c.index()); }

// The component as Interface; nullptr when it is of another kind (or empty).
template <class Interface>
std::shared_ptr<Interface> component_cast(const AnyComponent& c) {
  const auto* p = std::get_if<std::shared_ptr<Interface>>(&c);
  return p ? *p : nullptr;
}

struct BuildContext {
  std::string device = "cpu";   // resolved device ("cpu", "cuda:0")
  uint64_t seed = 0;            // the experiment seed
  std::string work_dir;         // where the run writes
  std::string cache_dir;        // where generated artefacts (synthetic data, tokenizers) are cached
  std::optional<BackboneSpec> backbone;  // for heads
  int64_t vocab_size = 0;       // for MIM heads: the tokenizer's vocabulary
  int64_t num_classes = 0;      // for classification heads: the dataset's classes
  // Builds another component from a table with `plugin = "<name>"`; set by the host.
  std::function<AnyComponent(Kind, const Config&)> build;
};

}  // namespace bevt
