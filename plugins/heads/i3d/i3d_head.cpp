// mmaction's I3DHead, the classification head of BEVT's fine-tunes: global average pool over the feature's
// time and space → dropout → fc_cls. Parameters are named as the official checkpoint (cls_head.fc_cls.*).
// A 2D feature [B, C] (TimeSformer's cls token) skips the pooling.
#include <fmt/format.h>

#include "bevt/sdk.h"

namespace {

class I3DHead : public bevt::Head {
 public:
  static std::vector<bevt::KeySpec> keys() {
    return {
        bevt::key("num_classes", int64_t{0}, "classes; 0 = the dataset's"),
        bevt::key("feature", "", "backbone feature to classify; '' = the backbone's output (spec().output)"),
        bevt::key("dropout", 0.5, "dropout before fc_cls (training only)"),
        bevt::key("init_std", 0.01, "std of fc_cls's normal initialisation"),
    };
  }

  I3DHead(const bevt::Config& cfg, const bevt::BuildContext& ctx) : dropout_(cfg.get_float("dropout")) {
    if (!ctx.backbone) throw bevt::UserError("i3d: needs a backbone (its output channels)");
    feature_ = cfg.get_string("feature");
    if (feature_.empty()) feature_ = ctx.backbone->output;
    int64_t in = ctx.backbone->stage(feature_).channels;
    int64_t classes = cfg.get_int("num_classes");
    if (classes <= 0) classes = ctx.num_classes;
    if (classes <= 0)
      throw bevt::UserError(fmt::format("{}: i3d needs num_classes (no dataset in the experiment tells it)",
                                        cfg.where()));
    if (dropout_ < 0 || dropout_ >= 1)
      throw bevt::UserError(fmt::format("{}: dropout must be in [0, 1)", cfg.where("dropout")));
    auto holder = std::make_shared<torch::nn::Module>();
    fc_ = holder->register_module("fc_cls", torch::nn::Linear(in, classes));
    register_module("cls_head", holder);
    torch::NoGradGuard ng;
    fc_->weight.normal_(0, cfg.get_float("init_std"));
    fc_->bias.zero_();
  }

  torch::Tensor forward(const bevt::Features& f, bevt::Backbone&) override {
    torch::Tensor x = f.at(feature_);
    if (x.dim() > 2) x = x.flatten(2).mean(2);  // AdaptiveAvgPool3d((1,1,1)) + view
    if (dropout_ > 0) x = torch::dropout(x, dropout_, is_training());
    return fc_->forward(x);
  }

 private:
  double dropout_;
  std::string feature_;
  torch::nn::Linear fc_{nullptr};
};

}  // namespace

BEVT_REGISTER(bevt::plugin<bevt::Head, I3DHead>("i3d", "I3D classification head: average pool, dropout, fc_cls"));
