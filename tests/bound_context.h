// A kernel context for tests of the layers below Kernel (locks, mm, pci),
// which build their objects without a Kernel: declared as a fixture's
// first member, it binds a fresh context to the test's thread before the
// objects under test exist and unbinds it after they are gone.
#pragma once

#include <functional>
#include <thread>
#include <utility>

#include "sync/kernel_context.h"

namespace vfiomm::testing {

class BoundContext {
 public:
  BoundContext() = default;
  BoundContext(const BoundContext&) = delete;
  BoundContext& operator=(const BoundContext&) = delete;

  KernelContext& context() { return context_; }

 private:
  KernelContext context_;
  KernelContext::Scope in_{context_};
};

// A std::thread that runs `f(args...)` on `context`, as a kernel thread
// runs in the kernel it belongs to.
class BoundThread : public std::thread {
 public:
  template <typename F, typename... Args>
  BoundThread(KernelContext& context, F&& f, Args&&... args)
      : std::thread(
            [&context, fn = std::forward<F>(f), ... as = std::forward<Args>(args)]() mutable {
              const KernelContext::Scope in(context);
              std::invoke(fn, as...);
            }) {}
};

}  // namespace vfiomm::testing
