// The meta device as a stand-in for a GPU in the device-placement tests (one test binary includes this).
//
// Two pieces, both test-only:
//  - MetaDeviceCheck: while alive, every operator call passes through a dispatcher mode (the testing-only
//    mode key) that fails when a tensor that is neither on `meta` nor a 0-dim scalar meets meta tensors, as CUDA
//    kernels fail on a CPU tensor beside CUDA ones ("Expected all tensors to be on the same device"). It sees
//    every op, including the ones whose meta kernels never compare devices, and autograd's backward too (the
//    engine's threads inherit the dispatch TLS).
//  - LibTorch's C++ meta kernels miss some operators that Python supplies from its own registrations
//    (convolution, relu, batch norm, ...). For those, a kernel registered at the Meta key runs the CPU kernel on
//    zero-filled stand-ins and returns meta tensors of the CPU result's shapes: meta stays shape-only, autograd
//    records as usual.
#pragma once

#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>

#include <string>

namespace meta_device {

inline void for_each_tensor(const c10::IValue& v, const std::function<void(const at::Tensor&)>& f) {
  if (v.isTensor()) {
    f(v.toTensor());
  } else if (v.isTensorList()) {
    for (const at::Tensor& t : v.toTensorVector()) f(t);
  } else if (v.isList()) {  // lists of optional tensors included
    for (const c10::IValue& e : v.toListRef()) for_each_tensor(e, f);
  }
}

// Ops that move data between devices take a CPU tensor beside a meta one by design.
inline bool moves_data(const std::string& name) {
  return name == "aten::copy_" || name == "aten::_to_copy" || name == "aten::to" || name == "aten::_copy_from" ||
         name == "aten::_copy_from_and_resize" || name == "aten::lift_fresh" || name == "aten::set_" ||
         name == "aten::detach" || name == "aten::alias";
}

inline void check_devices(const c10::OperatorHandle& op, c10::DispatchKeySet ks, torch::jit::Stack* stack) {
  const size_t n = op.schema().arguments().size();
  bool meta = false;
  std::string other;
  for (size_t i = stack->size() - n; i < stack->size(); ++i)
    for_each_tensor((*stack)[i], [&](const at::Tensor& t) {
      if (!t.defined()) return;
      if (t.is_meta())
        meta = true;
      else if (t.dim() > 0 && other.empty())
        other = t.device().str() + " tensor of shape " + c10::str(t.sizes());
    });
  if (meta && !other.empty() && !moves_data(op.schema().name()))
    TORCH_CHECK(false, "Expected all tensors to be on the same device: ", op.schema().name(), " got a ", other,
                " beside meta tensors (a tensor created without its inputs' device)");
  op.redispatchBoxed(ks & c10::DispatchKeySet(c10::DispatchKeySet::FULL_AFTER, c10::DispatchKey::TESTING_ONLY_GenericMode),
                     stack);
}

// Runs the op's CPU kernel on zero stand-ins of its meta arguments; returns meta tensors shaped like the results
// (an output that aliases an argument, as in-place ops return, is that argument).
inline void emulate_on_cpu(const c10::OperatorHandle& op, c10::DispatchKeySet, torch::jit::Stack* stack) {
  const auto& schema = op.schema();
  const size_t n = schema.arguments().size();
  std::vector<c10::IValue> originals(stack->end() - static_cast<std::ptrdiff_t>(n), stack->end());
  auto to_cpu = [](const at::Tensor& t) {
    return t.defined() && t.is_meta() ? at::empty_strided(t.sizes(), t.strides(), t.options().device(at::kCPU)).zero_()
                                      : t;
  };
  for (size_t i = stack->size() - n; i < stack->size(); ++i) {
    c10::IValue& v = (*stack)[i];
    if (v.isTensor()) {
      v = to_cpu(v.toTensor());
    } else if (v.isTensorList()) {
      std::vector<at::Tensor> ts;
      for (const auto& t : v.toTensorVector()) ts.push_back(to_cpu(t));
      v = ts;
    }
  }
  op.redispatchBoxed(c10::DispatchKeySet(c10::DispatchKey::CPU), stack);
  const auto& returns = schema.returns();
  for (size_t r = 0; r < returns.size(); ++r) {
    c10::IValue& out = (*stack)[stack->size() - returns.size() + r];
    if (!out.isTensor() || !out.toTensor().defined()) continue;
    const at::Tensor t = out.toTensor();
    const auto* alias = returns[r].alias_info();
    bool replaced = false;
    if (alias)
      for (size_t a = 0; a < n && !replaced; ++a) {
        const auto* ai = schema.arguments()[a].alias_info();
        if (ai && ai->beforeSets() == alias->beforeSets() && originals[a].isTensor()) {
          out = originals[a];
          replaced = true;
        }
      }
    if (!replaced) out = at::empty_strided(t.sizes(), t.strides(), t.options().device(at::kMeta));
  }
}

// While alive: every op checks the devices of its tensors (see above).
class MetaDeviceCheck {
 public:
  MetaDeviceCheck() : guard_(c10::DispatchKey::TESTING_ONLY_GenericMode) {}

 private:
  c10::impl::IncludeDispatchKeyGuard guard_;
};

}  // namespace meta_device

// The mode's fallback, and CPU emulation for the ops whose C++ meta kernels LibTorch lacks (those the tests
// reach: found by running them; any other op without one fails loudly, naming it).
TORCH_LIBRARY_IMPL(_, TESTING_ONLY_GenericMode, m) {
  m.fallback(torch::CppFunction::makeFromBoxedFunction<&meta_device::check_devices>());
}

TORCH_LIBRARY_IMPL(aten, Meta, m) {
  for (const char* op : {"relu", "relu_", "threshold_backward", "native_batch_norm", "native_batch_norm_backward",
                         "index_select", "native_layer_norm_backward", "where.self", "min", "max", "where.self_out"})
    m.impl(op, torch::CppFunction::makeFromBoxedFunction<&meta_device::emulate_on_cpu>());
}
