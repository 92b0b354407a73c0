#include "bevt/module_device.h"

namespace bevt {

namespace {
void move_in_place(torch::Tensor& t, const torch::Device& device) {
  if (!t.defined() || t.device() == device) return;
  torch::NoGradGuard no_grad;
  torch::Tensor moved = t.to(device);
  if (t.unsafeGetTensorImpl()->has_compatible_shallow_copy_type(moved.key_set())) {
    t.set_data(moved);
  } else {
    t.unsafeGetTensorImpl()->shallow_copy_from(moved.getIntrusivePtr());
  }
}
}  // namespace

void module_to(torch::nn::Module& module, const torch::Device& device) {
  if (device.type() != torch::kMeta) {
    module.to(device);
    return;
  }
  for (auto& p : module.parameters(true)) move_in_place(p, device);
  for (auto& b : module.buffers(true)) move_in_place(b, device);
}

}  // namespace bevt
