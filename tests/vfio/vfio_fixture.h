// Test scaffolding for the vfio layer: a Kernel with Standard device D
// (conformance.md) opened through the group path by a process, and helpers
// that read like the user-space code a real test would have.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "base/byte_units.h"
#include "base/counter.h"
#include "kernel/kernel.h"
#include "mm/mm.h"
#include "pci/pci_regs.h"
#include "pci/standard_device.h"
#include "sim/vmm.h"
#include "sync/lockdep.h"
#include "uapi/process.h"
#include "uapi/vfio_arg.h"
#include "vfio/vfio_device.h"
#include "vfio/vfio_device_file.h"

namespace vfiomm::testing {

using namespace vfiomm::uapi;

inline constexpr uint64_t kBar0Offset = 0;
inline constexpr uint64_t kBar1Offset = 1ULL << 40;
inline constexpr uint64_t kBar2Offset = 2ULL << 40;
inline constexpr uint64_t kConfigOffset = 7ULL << 40;

// Every test runs against a design; the default profile is the design's own.
class VfioTest : public ::testing::TestWithParam<DesignKind> {
 protected:
  void SetUp() override { boot(GetParam()); }

  void boot(DesignKind design, std::string profile = "", DesignOptions options = {}) {
    KernelConfig cfg;
    cfg.design = design;
    cfg.profile = std::move(profile);
    cfg.designOptions = options;
    bootConfig(std::move(cfg));
  }

  // boot() with a whole profile (KernelConfig::profileOverride), e.g. one
  // switch overridden.
  void bootProfile(DesignKind design, KernelProfile profile, DesignOptions options = {}) {
    KernelConfig cfg;
    cfg.design = design;
    cfg.profileOverride = std::move(profile);
    cfg.designOptions = options;
    bootConfig(std::move(cfg));
  }

  // A fresh kernel with the standard device, opened by "qemu" on the group path.
  void bootConfig(KernelConfig cfg) {
    proc.reset();
    kernel.reset();
    auto k = Kernel::create(cfg);
    ASSERT_TRUE(k);
    kernel = std::move(*k);  // runs on this thread (KernelContext)
    lockdep::setReportSink({});
    dev = &kernel->addStandardDevice();
    proc = Process::spawn(*kernel, "qemu");
    fd = openGroupPath(*proc);
  }

  // open container + group, set the container, get the device fd, as a
  // VMM does (sim/vmm.h).
  int openGroupPath(Process& p) {
    sim::Vmm vmm;
    const sim::VmmResult<int> d = vmm.openViaGroup(p, *kernel, *dev);
    EXPECT_TRUE(d) << d.error().call << " returned " << d.error().rc;
    EXPECT_EQ(vmm.groupFds().size(), 1U);
    groupFd = vmm.groupFds().begin()->second;
    return d ? *d : -1;
  }

  long map(uint64_t offset, uint64_t len, uint64_t at = 0, int prot = prot::kRead | prot::kWrite,
           int flags = map::kShared) {
    return proc->mmap(at, len, prot, flags | (at != 0 ? map::kFixed : 0), fd, offset);
  }

  // Config space access through the file (little endian).
  long configWrite(uint32_t offset, uint32_t value, unsigned size) {
    return proc->pwrite(fd, &value, size, kConfigOffset + offset);
  }
  uint32_t configRead(uint32_t offset, unsigned size) {
    uint32_t v = 0;
    EXPECT_EQ(proc->pread(fd, &v, size, kConfigOffset + offset), static_cast<long>(size));
    return v;
  }
  void setMem(bool on) { ASSERT_EQ(sim::setMemoryDecode(*proc, fd, on), 2); }

  AccessResult touch(uint64_t va, Process* p = nullptr) {
    return (p ? *p : *proc).thread().load(va, 4);
  }
  uint64_t minFlt(Process* p = nullptr) { return (p ? *p : *proc).getrusage().ru_minflt; }
  // Leaves mapped in [va, va+len) of `p`'s page table.
  LeafCounts leaves(uint64_t va, uint64_t len, Process* p = nullptr) {
    LeafCounts c;
    (p ? *p : *proc)
        .mm()
        .pageTable()
        .forEachLeaf(VirtAddr(va), VirtAddr(va + len), [&](VirtAddr, PtLevel l, uint64_t) {
          (l == PtLevel::kPte ? c.pte : l == PtLevel::kPmd ? c.pmd : c.pud)++;
        });
    return c;
  }
  PageTable::Translation translate(uint64_t va, Process* p = nullptr) {
    return (p ? *p : *proc).mm().pageTable().translate(VirtAddr(va));
  }
  DesignKind design() const { return kernel->config().design; }
  bool isG1() const { return design() == DesignKind::kVmaList; }

  std::unique_ptr<Kernel> kernel;
  VfioDevice* dev = nullptr;
  std::shared_ptr<Process> proc;
  int fd = -1;
  int groupFd = -1;
};

inline std::string designParamName(const ::testing::TestParamInfo<DesignKind>& info) {
  std::string n(designName(info.param));
  for (char& c : n)
    if (c == '-') c = '_';
  return n;
}

}  // namespace vfiomm::testing
