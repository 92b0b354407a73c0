// Test plugins for the registry tests: a tiny backbone and a masker, built into their own folder.
#include "bevt/backbone.h"
#include "bevt/error.h"
#include "bevt/masker.h"

namespace {

class ToyBackbone : public bevt::Backbone {
 public:
  static std::vector<bevt::KeySpec> keys() {
    return {bevt::key("dim", 4, "output channels"), bevt::key("fail", false, "throw from the factory (tests)")};
  }
  explicit ToyBackbone(const bevt::Config& cfg) : dim_(cfg.get_int("dim")) {
    if (cfg.get_bool("fail")) throw bevt::UserError("toy_backbone was asked to fail (fail = true)");
    if (dim_ <= 0) throw std::runtime_error("dim must be positive");
    proj_ = register_module("proj", torch::nn::Conv3d(torch::nn::Conv3dOptions(3, dim_, 1)));
  }
  bevt::BackboneSpec spec() const override {
    bevt::BackboneSpec s;
    s.stages = {{"out", dim_, {1, 1, 1}}};
    s.patch = {1, 1, 1};
    s.embed_dim = dim_;
    s.output = "out";
    return s;
  }
  bevt::Features forward_video(const torch::Tensor& clip, const torch::Tensor&) override {
    bevt::Features f;
    f.add("out", proj_->forward(clip));
    return f;
  }

 private:
  int64_t dim_;
  torch::nn::Conv3d proj_{nullptr};
};

class AllMasker : public bevt::Masker {
 public:
  explicit AllMasker(const bevt::Config&) {}
  torch::Tensor sample(const std::array<int64_t, 3>& g, bevt::Rng&) const override {
    return torch::ones({g[0], g[1], g[2]}, torch::kBool);
  }
};

}  // namespace

#ifndef TOY_PREFIX
#define TOY_PREFIX "toy"
#endif

BEVT_REGISTER(bevt::plugin<bevt::Backbone, ToyBackbone>(TOY_PREFIX "_backbone", "a 1x1x1 conv (registry tests)")
                  .with_official_names({"ToyModule"}));
BEVT_REGISTER(bevt::plugin<bevt::Masker, AllMasker>(TOY_PREFIX "_masker", "masks every cell (registry tests)"));
