#include "hw/machine.h"

#include <gtest/gtest.h>

#include "base/counter.h"
#include "bound_context.h"

namespace vfiomm {
namespace {

constexpr uint64_t kMm = 9;

uint64_t counter(const char* name) { return CounterSet::current().snapshot().get(name); }

MachineConfig withCpus(unsigned cpus) {
  MachineConfig config;
  config.cpus = cpus;
  return config;
}

uint64_t mask(std::initializer_list<unsigned> cpus) {
  uint64_t m = 0;
  for (unsigned c : cpus) m |= uint64_t{1} << c;
  return m;
}

TEST(Machine, HasTheConfiguredCpusEachWithItsTlb) {
  testing::BoundContext bound;
  Machine m(MachineConfig{.cpus = 3, .tlb = TlbGeometry{{64, 4}, {32, 4}, {16, 2}}});
  ASSERT_EQ(m.cpuCount(), 3U);
  for (unsigned id = 0; id < 3; ++id) EXPECT_EQ(m.cpu(id).id(), id);
  EXPECT_EQ(Machine().cpuCount(), 4U);
}

TEST(Machine, FlushOf33PagesIsPerPageAnd34IsFull) {
  testing::BoundContext bound;
  Machine m;
  const VirtAddr start(0x7000'0000'0000);
  m.flushTlbMmRange(kMm, mask({0}), start, start + 33 * kPageSize, kPageShift, false, 0);
  EXPECT_EQ(m.cpu(0).tlbStats().pagesFlushed.load(), 33U);
  EXPECT_EQ(m.cpu(0).tlbStats().fullFlushes.load(), 0U);

  m.flushTlbMmRange(kMm, mask({0}), start, start + 34 * kPageSize, kPageShift, false, 0);
  EXPECT_EQ(m.cpu(0).tlbStats().pagesFlushed.load(), 33U);
  EXPECT_EQ(m.cpu(0).tlbStats().fullFlushes.load(), 1U);

  // The ceiling counts strides, not 4 KiB pages: 34 PMDs are a full flush,
  // 33 PMDs (66 MiB) are 33 invalidations.
  m.flushTlbMmRange(kMm, mask({0}), start, start + 33 * kPmdSize, kPmdShift, false, 0);
  EXPECT_EQ(m.cpu(0).tlbStats().pagesFlushed.load(), 66U);
  m.flushTlbMmRange(kMm, mask({0}), start, start + 34 * kPmdSize, kPmdShift, false, 0);
  EXPECT_EQ(m.cpu(0).tlbStats().fullFlushes.load(), 2U);
  EXPECT_EQ(m.flushTotals().fullFlushes.load(), 2U);
  EXPECT_EQ(m.flushTotals().pagesFlushed.load(), 66U);
}

TEST(Machine, FreeingOnlyTablesFlushesTheWholeMm) {
  testing::BoundContext bound;
  Machine m;
  m.flushTlbMmRange(kMm, mask({1}), VirtAddr(0), VirtAddr(0), kPageShift, true, -1);
  EXPECT_EQ(m.cpu(1).tlbStats().fullFlushes.load(), 1U);
  // An empty range without freed tables invalidates nothing.
  m.flushTlbMmRange(kMm, mask({1}), VirtAddr(0), VirtAddr(0), kPageShift, false, -1);
  EXPECT_EQ(m.cpu(1).tlbStats().fullFlushes.load(), 1U);
  EXPECT_EQ(m.cpu(1).tlbStats().pagesFlushed.load(), 0U);
}

TEST(Machine, InitiatorFlushesLocallyOthersInTheMaskGetAnIpi) {
  testing::BoundContext bound;
  Machine m;
  const uint64_t shootdowns = counter("tlb.shootdown");
  const uint64_t locals = counter("tlb.flush.local");
  const VirtAddr start(0x1000'0000);
  m.flushTlbMmRange(kMm, mask({0, 1, 2}), start, start + 2 * kPageSize, kPageShift, false, 1);
  EXPECT_EQ(counter("tlb.shootdown") - shootdowns, 2U);
  EXPECT_EQ(counter("tlb.flush.local") - locals, 1U);
  EXPECT_EQ(m.flushTotals().flushes.load(), 1U);
  EXPECT_EQ(m.flushTotals().localFlushes.load(), 1U);
  EXPECT_EQ(m.flushTotals().shootdowns.load(), 2U);
  for (unsigned id : {0U, 1U, 2U}) EXPECT_EQ(m.cpu(id).tlbStats().pagesFlushed.load(), 2U);
  EXPECT_EQ(m.cpu(3).tlbStats().pagesFlushed.load(), 0U) << "CPU 3 is not in the mm's cpumask";
  EXPECT_EQ(m.cpu(3).tlbStats().fullFlushes.load(), 0U);
}

TEST(Machine, InitiatorOutsideTheMaskOrNoCpuSendsOnlyIpis) {
  testing::BoundContext bound;
  Machine m;
  m.flushTlbMmRange(kMm, mask({2, 3}), VirtAddr(0), VirtAddr(kPageSize), kPageShift, false, 0);
  m.flushTlbMmRange(kMm, mask({2, 3}), VirtAddr(0), VirtAddr(kPageSize), kPageShift, false, -1);
  EXPECT_EQ(m.flushTotals().localFlushes.load(), 0U);
  EXPECT_EQ(m.flushTotals().shootdowns.load(), 4U);
  EXPECT_EQ(m.cpu(0).tlbStats().pagesFlushed.load(), 0U);
}

TEST(Machine, CurrentCpuIsTheOneTheThreadRunsOn) {
  testing::BoundContext bound;
  Machine m;
  Machine other;
  EXPECT_EQ(m.currentCpuId(), -1);
  {
    Cpu::Running running(m.cpu(2));
    EXPECT_EQ(m.currentCpuId(), 2);
    EXPECT_EQ(other.currentCpuId(), -1) << "a CPU of another machine is not ours";
    {
      Cpu::Running nested(m.cpu(3));
      EXPECT_EQ(m.currentCpuId(), 3);
    }
    EXPECT_EQ(m.currentCpuId(), 2);
  }
  EXPECT_EQ(m.currentCpuId(), -1);
}

TEST(Machine, RegionsAreRoutedThroughItsPhysicalMap) {
  testing::BoundContext bound;
  Machine m;
  RamRegion ram("ram", PhysAddr(0x4000'0000), kPmdSize);
  m.registerRegion(ram);
  EXPECT_EQ(m.physMemMap().lookup(Pfn(0x40000)), &ram);
  m.unregisterRegion(ram);
  EXPECT_EQ(m.physMemMap().lookup(Pfn(0x40000)), nullptr);
}

TEST(MachineDeathTest, ImpossibleConfigurationsAreModelBugs) {
  EXPECT_DEATH(Machine(withCpus(65)), "1 to 64");
  Machine m(withCpus(2));
  EXPECT_DEATH(
      m.flushTlbMmRange(kMm, mask({2}), VirtAddr(0), VirtAddr(kPageSize), kPageShift, false, -1),
      "cpumask");
}

}  // namespace
}  // namespace vfiomm
