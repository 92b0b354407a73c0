// What the host knows when it builds a component, passed to every factory beside the component's Config.
// Heads learn their input channels from the backbone spec, MIM heads the vocabulary from the tokenizer,
// and a plugin that needs a sub-component (a perceptual network, say) asks the host to build it by name.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "bevt/backbone_spec.h"
#include "bevt/config.h"

namespace bevt {

enum class Kind { Backbone, Tokenizer, Masker, Dataset, Head };
const char* kind_name(Kind k);
std::optional<Kind> parse_kind(std::string_view s);

struct BuildContext {
  std::string device = "cpu";   // resolved device ("cpu", "cuda:0")
  uint64_t seed = 0;            // the experiment seed
  std::string work_dir;         // where the run writes
  std::string cache_dir;        // where generated artefacts (synthetic data, tokenizers) are cached
  std::optional<BackboneSpec> backbone;  // for heads
  int64_t vocab_size = 0;       // for MIM heads: the tokenizer's vocabulary
  int64_t num_classes = 0;      // for classification heads: the dataset's classes
  // Builds another component from a table with `plugin = "<name>"`; set by the host.
  std::function<std::shared_ptr<void>(Kind, const Config&)> build;
};

}  // namespace bevt
