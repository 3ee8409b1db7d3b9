// Two kernels in one process (issue 13): each keeps its own counters,
// lockdep graph and reports, tracer and vfio filesystem, also while both run
// at once on threads of their own.
#include <gtest/gtest.h>

#include <barrier>
#include <memory>
#include <string>
#include <thread>

#include "base/counter.h"
#include "bound_context.h"
#include "kernel/kernel.h"
#include "sync/lockdep.h"
#include "sync/mutex.h"
#include "trace/tracer.h"
#include "uapi/process.h"
#include "uapi/vfio_arg.h"
#include "vfio/vfio_device.h"

namespace vfiomm {
namespace {

using namespace vfiomm::uapi;

const LockClass kOrderA{"&test->order_a"};
const LockClass kOrderB{"&test->order_b"};

// 64 MiB of Standard device D's BAR2 (2 GiB, 64-bit prefetchable).
constexpr uint64_t kBar2Offset = 2ULL << 40;
constexpr uint64_t kLen = 64ULL << 20;
constexpr uint64_t kPage = 4096;

// One kernel with device D opened and 64 MiB of BAR2 mapped by a process.
struct System {
  explicit System(DesignKind design) {
    KernelConfig cfg;
    cfg.design = design;
    kernel = *Kernel::create(cfg);
    dev = &kernel->addStandardDevice();
    proc = Process::spawn(*kernel, "vmm");
    Process& p = *proc;
    const int container = static_cast<int>(p.open("/dev/vfio/vfio", O_RDWR));
    const int group = static_cast<int>(p.open(kernel->groupPath(*dev), O_RDWR));
    int c = container;
    EXPECT_EQ(p.ioctl(group, VFIO_GROUP_SET_CONTAINER, &c), 0);
    EXPECT_EQ(p.ioctl(container, VFIO_SET_IOMMU, ioctlArg(VFIO_TYPE1v2_IOMMU)), 0);
    const int fd = static_cast<int>(
        p.ioctl(group, VFIO_GROUP_GET_DEVICE_FD, const_cast<char*>(dev->name().c_str())));
    EXPECT_GE(fd, 0);
    uint16_t cmd = 0x2;  // PCI_COMMAND_MEMORY
    EXPECT_EQ(p.pwrite(fd, &cmd, 2, (7ULL << 40) + 4), 2);
    va = static_cast<uint64_t>(p.mmap(0, kLen, 0x3, 0x1, fd, kBar2Offset));
  }

  // Every 4 KiB page of the mapping, once.
  void touchAll() {
    for (uint64_t off = 0; off < kLen; off += kPage)
      EXPECT_EQ(proc->thread().load(va + off).sig.signo, 0);
  }

  // A → B, then B → A: lockdep's circular dependency, in this kernel.
  void lockInBothOrders() {
    const KernelContext::Scope in(kernel->context());
    lockdep::setReportSink({});
    Mutex a(kOrderA);
    Mutex b(kOrderB);
    a.lock();
    b.lock();
    b.unlock();
    a.unlock();
    b.lock();
    a.lock();
    a.unlock();
    b.unlock();
  }

  uint64_t count(std::string_view name) { return kernel->counters().snapshot().get(name); }
  size_t lockdepReports() {
    const KernelContext::Scope in(kernel->context());
    return lockdep::reportCount();
  }

  std::unique_ptr<Kernel> kernel;
  VfioDevice* dev = nullptr;
  std::shared_ptr<Process> proc;
  uint64_t va = 0;
};

TEST(KernelContext, TwoKernelsWithDifferentDesignsRunConcurrentlyAndCountApart) {
  std::unique_ptr<System> perPage;
  std::unique_ptr<System> huge;
  std::barrier start(2);
  // Each system is built, run and measured by a thread of its own, both at
  // once: the creating thread runs its kernel.
  std::thread a([&] {
    perPage = std::make_unique<System>(DesignKind::kAddressSpace);
    start.arrive_and_wait();
    perPage->touchAll();
    perPage->lockInBothOrders();
  });
  std::thread b([&] {
    huge = std::make_unique<System>(DesignKind::kHugeFault);
    start.arrive_and_wait();
    huge->touchAll();
  });
  a.join();
  b.join();

  // address-space inserts page by page; huge-fault 2 MiB leaves only (the
  // mapping is 2 MiB aligned, not 1 GiB), one fault each.
  EXPECT_EQ(perPage->count("mm.pfn_insert.pte"), kLen / kPage);
  EXPECT_EQ(perPage->count("mm.pfn_insert.pmd"), 0U);
  EXPECT_EQ(perPage->count("vmstat.pgfault"), kLen / kPage);
  EXPECT_EQ(huge->count("mm.pfn_insert.pte"), 0U);
  EXPECT_EQ(huge->count("mm.pfn_insert.pmd"), kLen / (2ULL << 20));
  EXPECT_EQ(huge->count("vmstat.pgfault"), kLen / (2ULL << 20));
  // The bad lock order was taken in one kernel: only its lockdep saw it.
  EXPECT_EQ(perPage->lockdepReports(), 1U);
  EXPECT_EQ(huge->lockdepReports(), 0U);
  // Each kernel has its own vfio filesystem, pinned by its one device.
  EXPECT_EQ(perPage->kernel->vfioFs().pinCount(), 1);
  EXPECT_EQ(huge->kernel->vfioFs().pinCount(), 1);
  // Torn down by the threads that run them.
  std::thread([&] { perPage.reset(); }).join();
  std::thread([&] { huge.reset(); }).join();
}

TEST(KernelContext, ATracerTracesOnlyItsOwnKernel) {
  System traced(DesignKind::kAddressSpace);  // runs on this thread
  System quiet(DesignKind::kAddressSpace);
  traced.kernel->context().tracer().start(1000, "traced", 4);
  {
    const KernelContext::Scope in(quiet.kernel->context());
    EXPECT_FALSE(trace::enabled());
    quiet.touchAll();
  }
  EXPECT_TRUE(trace::enabled());
  EXPECT_EQ(traced.kernel->context().tracer().recorded(), 0U);
  EXPECT_EQ(traced.proc->thread().load(traced.va).sig.signo, 0);
  const trace::TraceLog log = traced.kernel->context().tracer().stop();
  EXPECT_GT(log.recorded, 0U);
  EXPECT_EQ(quiet.kernel->context().tracer().recorded(), 0U);
}

TEST(KernelContextDeathTest, ModelCodeOnAThreadThatRunsNoKernelIsABug) {
  System system(DesignKind::kAddressSpace);
  EXPECT_DEATH(std::thread([&] { static_cast<void>(system.dev->openCount()); }).join(),
               "bound to no kernel");
}

}  // namespace
}  // namespace vfiomm
