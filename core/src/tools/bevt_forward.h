// bevt-forward's parts shared between its files: finding the plugin of an official module, and the fixture of
// one pre-training step (bevt_forward_pretrain.cpp).
#pragma once

#include <string>

#include "bevt/tensor_map.h"
#include "host/registry.h"
#include "host/train/amp.h"

namespace bevt::forward {

// The plugin whose PluginInfo::official_names holds `module`; UserError naming `where` otherwise.
const host::LoadedPlugin& plugin_for_module(const host::Registry& reg, const std::string& module,
                                            const std::string& where);

// A fixture of module "BEVTMultiSource.train_step": one official pre-training step, run through the trainer's
// own pretrain_iteration and TrainModel. Returns loss_video, loss_image, acc_video, acc_image, tokens and
// grad.<name> for every parameter given a gradient; `gradients` gets how many there are.
TensorMap run_pretrain_step_fixture(const host::Registry& reg, const std::string& dir, const torch::Device& device,
                                    host::Precision precision, int64_t& gradients);

}  // namespace bevt::forward
