// Test scaffolding for the mm layer: a fixture with a machine, an mm, a task
// and a fake pfnmap driver (fake_bar_file.h).
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <memory>

#include "base/page_geometry.h"
#include "bound_context.h"
#include "fake_bar_file.h"
#include "hw/machine.h"
#include "kernel/kernel_profile.h"
#include "mm/address_space.h"
#include "mm/fault.h"
#include "mm/file.h"
#include "mm/mm.h"
#include "mm/pfn_insert.h"
#include "mm/task.h"
#include "mm/vm_operations.h"
#include "mm/vma.h"
#include "sync/lockdep.h"

namespace vfiomm::testing {

class MmTest : public ::testing::Test {
 protected:
  static constexpr PhysAddr kBarBase{0x40'0000'0000};  // 256 GiB: 1 GiB aligned
  static constexpr uint64_t kBarSize = 4ULL << 30;

  void SetUp() override {
    lockdep::setReportSink({});
    startProfile("linux-6.12");
  }

  void startProfile(std::string_view name, bool huge = true) {
    auto profile = KernelProfile::byName(name);
    ASSERT_TRUE(profile.has_value());
    task.reset();
    mm.reset();
    mm = std::make_unique<Mm>(machine, profile->mm);
    task = std::make_unique<Task>();
    task->comm = "test";
    task->pid = task->tid = 100;
    task->mm = mm.get();
    bar = std::make_shared<FakeBarFile>(kBarBase, kBarSize, huge);
  }

  Result<VirtAddr> mapBar(uint64_t len, uint64_t offset = 0, VirtAddr at = VirtAddr(0),
                          int prot = prot::kRead | prot::kWrite) {
    const int flags = map::kShared | (at.value() != 0 ? map::kFixed : 0);
    return mm->mmap(at, len, prot, flags, bar, offset);
  }

  // A user access: fault until the entry is there or a signal comes.
  SigInfo touch(VirtAddr va, FaultAccess access = FaultAccess::kRead) {
    return touchAs(*task, va, access);
  }
  static SigInfo touchAs(Task& t, VirtAddr va, FaultAccess access) {
    for (int i = 0; i < 8; ++i) {
      const PageTable::Translation tr = t.mm->pageTable().translate(va);
      // As the CPU's walk: a user access needs _PAGE_USER (a PROT_NONE
      // entry lacks it), a write _PAGE_RW.
      const bool user = tr.present && (tr.entry & pte::kUser) != 0;
      if (user && (access == FaultAccess::kRead || pte::isWritable(tr.entry))) return {};
      const SigInfo sig = doUserAddrFault(t, va, access);
      if (!sig.none()) return sig;
    }
    ADD_FAILURE() << "access never completed";
    return {};
  }

  PageTable::Translation translate(VirtAddr va) { return mm->pageTable().translate(va); }
  LeafCounts leaves(VirtAddr start, uint64_t len) {
    LeafCounts c;
    mm->pageTable().forEachLeaf(start, start + len, [&](VirtAddr, PtLevel l, uint64_t) {
      (l == PtLevel::kPte ? c.pte : l == PtLevel::kPmd ? c.pmd : c.pud)++;
    });
    return c;
  }
  uint64_t minFlt() const { return task->minFlt.load(); }

  BoundContext boundContext;  // first: everything below runs on it
  Machine machine;
  std::unique_ptr<Mm> mm;
  std::unique_ptr<Task> task;
  std::shared_ptr<FakeBarFile> bar;
};

}  // namespace vfiomm::testing
