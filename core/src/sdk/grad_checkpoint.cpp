#include "bevt/grad_checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>

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

// The random state a block consumes: the CPU generator always, and the default generator of the input's
// accelerator (dropout and drop path on CUDA draw from the device's own generator, not the CPU's).
struct RngState {
  torch::Tensor cpu, device;
  c10::optional<at::Device> device_of;

  static RngState capture(const torch::Tensor& x) {
    RngState s;
    s.cpu = cpu_rng_state();
    if (x.is_cuda()) {
      s.device_of = x.device();
      auto gen = at::globalContext().defaultGenerator(x.device());
      std::lock_guard<std::mutex> lock(gen.mutex());
      s.device = gen.get_state();
    }
    return s;
  }
  void restore() const {
    set_cpu_rng_state(cpu);
    if (device_of) {
      auto gen = at::globalContext().defaultGenerator(*device_of);
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(device);
    }
  }
};

// Autocast is thread-local and backward may run on another thread (CUDA's device threads): the rerun must see
// the forward's autocast settings, or it recomputes in another precision than the activations it replaces.
struct AutocastState {
  struct One {
    at::DeviceType type;
    bool enabled;
    at::ScalarType dtype;
  };
  std::vector<One> per_device;
  bool cache = true;

  static AutocastState capture() {
    AutocastState s;
    for (auto t : {at::kCPU, at::kCUDA})
      s.per_device.push_back({t, at::autocast::is_autocast_enabled(t), at::autocast::get_autocast_dtype(t)});
    s.cache = at::autocast::is_autocast_cache_enabled();
    return s;
  }
  void apply() const {
    for (const auto& o : per_device) {
      at::autocast::set_autocast_enabled(o.type, o.enabled);
      at::autocast::set_autocast_dtype(o.type, o.dtype);
    }
    at::autocast::set_autocast_cache_enabled(cache);
  }
};

class AutocastScope {
 public:
  explicit AutocastScope(const AutocastState& want) : saved_(AutocastState::capture()) { want.apply(); }
  ~AutocastScope() { saved_.apply(); }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  AutocastState saved_;
};

// Keeps the recompute function and the forward's state alive inside the autograd graph (saved_data holds
// IValues).
struct FnHolder : torch::CustomClassHolder {
  std::function<torch::Tensor(const torch::Tensor&)> fn;
  RngState rng;
  AutocastState autocast;
};

struct Checkpointed : torch::autograd::Function<Checkpointed> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& anchor,
                               c10::intrusive_ptr<FnHolder> holder) {
    (void)anchor;
    ctx->save_for_backward({x});
    holder->rng = RngState::capture(x);
    holder->autocast = AutocastState::capture();
    torch::NoGradGuard no_grad;
    torch::Tensor y = holder->fn(x);
    ctx->saved_data["fn"] = c10::IValue::make_capsule(std::move(holder));
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto x = ctx->get_saved_variables()[0];
    auto holder = c10::static_intrusive_pointer_cast<FnHolder>(ctx->saved_data["fn"].toCapsule());
    RngState now = RngState::capture(x);
    holder->rng.restore();
    torch::Tensor xd, y;
    {
      AutocastScope autocast(holder->autocast);
      torch::AutoGradMode on(true);
      xd = x.detach().requires_grad_(x.requires_grad());
      y = holder->fn(xd);
    }
    now.restore();
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
