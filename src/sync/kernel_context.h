// KernelContext: what a Linux kernel keeps in global variables — the vmstat
// counters, the trace buffer, lockdep's graph and reports, the scheduler's
// hook — kept per simulated kernel instead, so that one host process can
// run many kernels at once (compare runs its designs side by side; `vfiomm
// check` builds thousands). Each Kernel owns one. It gathers the state of
// the layers every other layer uses (base's counters, trace, sync), so it
// lives at the top of those: any layer above may bind one.
//
// The model reaches these through the calling thread, as kernel code
// reaches its per-CPU and global state without passing it around: a
// Scope binds a context to the calling host thread for its lifetime.
// Every entry into a kernel (its setup calls, each syscall and memory
// access of a Process) binds that kernel's context, and the thread that
// creates a kernel while running none runs it until it is destroyed
// (Kernel::create), so a program that builds one kernel and calls into its
// objects needs no Scope; model code running on a thread bound to none
// aborts, as a bug.
#pragma once

#include <memory>

#include "base/counter.h"
#include "sync/sync_context.h"
#include "trace/tracer.h"

namespace vfiomm {

class KernelContext {
 public:
  KernelContext() = default;
  KernelContext(const KernelContext&) = delete;
  KernelContext& operator=(const KernelContext&) = delete;

  CounterSet& counters() { return counters_; }
  trace::Tracer& tracer() { return tracer_; }
  SyncContext& sync() { return sync_; }

  // Binds `context` to the calling thread if that thread runs none, and
  // keeps it alive while bound there: its kernel may be destroyed by
  // another thread, which cannot unbind it here. Says whether it did.
  static bool adopt(const std::shared_ptr<KernelContext>& context);
  // Undoes adopt() if the calling thread still runs `context`.
  static void release(const KernelContext& context);

  // Binds a context to the calling thread until destroyed, then restores
  // what was bound before (scopes nest; a thread can enter a second kernel
  // from inside a first).
  class Scope {
   public:
    explicit Scope(KernelContext& context)
        : counters_(CounterSet::bind(&context.counters_)),
          tracer_(trace::Tracer::bind(&context.tracer_)),
          sync_(SyncContext::bind(&context.sync_)) {}
    ~Scope() { bindLayers(counters_, tracer_, sync_); }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    CounterSet* const counters_;
    trace::Tracer* const tracer_;
    SyncContext* const sync_;
  };

 private:
  // Each layer's part, bound to the calling thread together (null: none).
  static void bindLayers(CounterSet* counters, trace::Tracer* tracer, SyncContext* sync) {
    CounterSet::bind(counters);
    trace::Tracer::bind(tracer);
    SyncContext::bind(sync);
  }

  CounterSet counters_;
  trace::Tracer tracer_;
  SyncContext sync_;
};

}  // namespace vfiomm
