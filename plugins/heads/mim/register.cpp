// Registers BEVT's two decoders. bevt-forward builds them beside a SwinTransformerBEVT fixture
// ("<module>.image" / "<module>.video") to produce the official forward()'s output.
#include "bevt/plugin.h"
#include "mim_image.h"
#include "mim_video.h"

using bevt::Head;
using bevt::plugin;

BEVT_REGISTER(plugin<Head, bevt::mim::MimImageHead>(
                  "mim_image",
                  "BEVT image decoder: ConvTranspose2d(stage4) ++ stage3 -> Linear -> final norm (-> vocab); on a "
                  "one-scale backbone its output tokens -> final norm (-> vocab)")
                  .with_official_names({"SwinTransformerBEVT.image"}));
BEVT_REGISTER(plugin<Head, bevt::mim::MimVideoHead>(
                  "mim_video",
                  "BEVT video decoder: ConvTranspose3d(1,2,2)(stage4) ++ stage3 -> Linear -> ConvTranspose3d(2,1,1) -> "
                  "final norm (-> vocab); on a one-scale backbone its output tokens, one per frame -> final norm (-> vocab)")
                  .with_official_names({"SwinTransformerBEVT.video"}));
