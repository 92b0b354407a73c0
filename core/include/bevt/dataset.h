// Dataset interface: indexable samples, decoded and transformed, with per-sample randomness supplied by the
// loader (derived from seed, epoch and index) so that a run does not depend on thread count or timing.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "bevt/plugin.h"
#include "bevt/rng.h"
#include "bevt/torch.h"

namespace bevt {

struct Sample {
  torch::Tensor input;           // video [3, T, H, W] or image [3, H, W], float, normalised
  torch::Tensor tokenizer_view;  // [T, 3, h, w] or [3, h, w] in [0, 1] for the tokenizer; undefined if none
  int64_t label = -1;
  std::string id;                // file or sample id, for logs and bad-file lists
  std::map<std::string, torch::Tensor> extra;
};

// One bad item of a dataset, named: what bevt-data's bad_files.{txt,json}, a run's results.json and the loader's
// messages list. A dataset finds some while reading its annotation (missing files, labels outside the class list,
// duplicated ids) and the rest when an item is checked (truncated, corrupt, unreadable).
struct DataProblem {
  std::string path;          // the file or folder
  std::string where;         // the annotation line or id ("annotations/train.csv:12", "id 99"); "" when none
  std::string kind;          // missing | truncated | range_past_end | corrupt | empty | unreadable | wrong_container |
                             // label_out_of_range | duplicate_id | timeout
  std::string reason;        // one line, what is wrong and by how much
  int64_t declared = -1;     // frames the header or annotation declares (-1: unknown)
  int64_t decodable = -1;    // frames that decode (-1: unknown)
  bool kept = false;         // still used (on_truncated = "use", a container mismatch); false: dropped or failing
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual size_t size() const = 0;
  virtual Sample get(size_t index, Rng& rng) const = 0;  // throws on a sample that cannot be decoded
  virtual std::vector<std::string> class_names() const = 0;
  virtual bool is_video() const = 0;
  // Problems found while reading the annotation, every one named (the missing files skip_missing dropped too).
  virtual std::vector<DataProblem> problems() const { return {}; }
  // A thorough check of item `index` for bevt-data --check -1: every frame the sampler could ask for. Empty when
  // the item is fine. Thread-safe, like get(). The default decodes it once as get() does.
  virtual std::vector<DataProblem> check(size_t index) const {
    try {
      Rng rng(0);
      get(index, rng);
      return {};
    } catch (const std::exception& e) {
      DataProblem p;
      p.path = "#" + std::to_string(index);
      p.kind = "corrupt";
      p.reason = e.what();
      return {p};
    }
  }
};

template <>
struct KindOf<Dataset> {
  static constexpr Kind value = Kind::Dataset;
};

}  // namespace bevt
