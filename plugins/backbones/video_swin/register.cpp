// Registers the generic `video_swin` plugin and the size presets video_swin_t/s/b/l.
#include "bevt/plugin.h"
#include "bevt/safetensors.h"
#include "video_swin.h"

namespace bevt::swin {

namespace {

AnyComponent build(const Config& cfg, const SwinOptions& base) {
  SwinOptions o = options_from_config(cfg, base);
  auto model = std::make_shared<VideoSwin>(o);
  if (!o.weights.empty()) {
    LoadOptions lo;
    lo.source = o.weights;
    model->load_weights(load_safetensors(o.weights).tensors, lo);
  }
  return AnyComponent(std::static_pointer_cast<Backbone>(model));
}

PluginInfo make_info(std::string name, std::string summary, SwinOptions base, std::vector<std::string> official) {
  PluginInfo info;
  info.kind = Kind::Backbone;
  info.name = std::move(name);
  info.summary = std::move(summary);
  info.keys = option_keys(base);
  info.official_names = std::move(official);
  info.factory = [base](const Config& cfg, const BuildContext&) { return build(cfg, base); };
  return info;
}

struct Registration {
  Registration() {
    detail::Registrar generic(make_info("video_swin",
                                        "Video Swin Transformer (SwinTransformer3D / SwinTransformerBEVT) with "
                                        "BEVT's image path and mask token",
                                        SwinOptions{}, {"SwinTransformerBEVT", "SwinTransformer3D"}));
    for (const auto& p : presets()) detail::Registrar r(make_info(p.name, p.summary, options_for_preset(p), {}));
  }
};

const Registration registration;

}  // namespace

}  // namespace bevt::swin
