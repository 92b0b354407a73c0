#include "bevt/grad_checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>

#include <mutex>

namespace bevt {

torch::Tensor cpu_rng_state() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void set_cpu_rng_state(const torch::Tensor& state) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Keeps the recompute function alive inside the autograd graph (saved_data holds IValues).
struct FnHolder : torch::CustomClassHolder {
  std::function<torch::Tensor(const torch::Tensor&)> fn;
};

struct Checkpointed : torch::autograd::Function<Checkpointed> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& anchor,
                               c10::intrusive_ptr<FnHolder> holder) {
    (void)anchor;
    ctx->save_for_backward({x});
    ctx->saved_data["rng"] = cpu_rng_state();
    torch::NoGradGuard no_grad;
    torch::Tensor y = holder->fn(x);
    ctx->saved_data["fn"] = c10::IValue::make_capsule(std::move(holder));
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto x = ctx->get_saved_variables()[0];
    auto holder = c10::static_intrusive_pointer_cast<FnHolder>(ctx->saved_data["fn"].toCapsule());
    torch::Tensor now = cpu_rng_state();
    set_cpu_rng_state(ctx->saved_data["rng"].toTensor());
    torch::Tensor xd, y;
    {
      torch::AutoGradMode on(true);
      xd = x.detach().requires_grad_(x.requires_grad());
      y = holder->fn(xd);
    }
    set_cpu_rng_state(now);
    torch::autograd::backward({y}, {grads[0]});  // parameter gradients accumulate directly
    return {xd.requires_grad() ? xd.grad() : torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor checkpoint(std::function<torch::Tensor(const torch::Tensor&)> fn, const torch::Tensor& x,
                         const torch::Tensor& anchor) {
  auto holder = c10::make_intrusive<FnHolder>();
  holder->fn = std::move(fn);
  return Checkpointed::apply(x, anchor, std::move(holder));
}

}  // namespace bevt
