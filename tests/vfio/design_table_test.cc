// The designs table (vfio/design_table.h): each row as users see it, and
// every design against what its row says it implies (sim, the report and
// the invariant monitor believe the row without running the design).
#include <gtest/gtest.h>

#include <iterator>

#include "base/byte_units.h"
#include "vfio_fixture.h"

namespace vfiomm::testing {
namespace {

constexpr uint64_t kH = 0x7f0000000000;  // 1 GiB aligned, for BAR2 (Setup H)

TEST(DesignTableTest, EveryRowAsUsersSeeItAndWhatItImplies) {
  struct Row {
    DesignKind kind;
    std::string_view name;
    std::string_view profile;
    bool expectsHoles;
    bool mapsHugeEntries;
    bool pgoffHoldsPfn;
    bool refillsOnEnable;
  };
  constexpr Row kRows[] = {
      {DesignKind::kVmaList, "vma-list", "linux-6.9", true, false, true, false},
      {DesignKind::kAddressSpace, "address-space", "linux-6.10", false, false, false, false},
      {DesignKind::kFillVma, "fill-vma", "linux-6.10", false, false, false, false},
      {DesignKind::kHugeFault, "huge-fault", "linux-6.12", false, true, false, false},
      {DesignKind::kPrefault, "prefault", "linux-6.12", false, true, false, true},
  };
  ASSERT_EQ(allDesigns().size(), std::size(kRows));
  for (size_t i = 0; i < std::size(kRows); ++i) {
    const Row& r = kRows[i];
    SCOPED_TRACE(r.name);
    EXPECT_EQ(allDesigns()[i], r.kind)
        << "the order of `vfiomm designs` and of the compare columns";
    EXPECT_EQ(designName(r.kind), r.name);
    EXPECT_EQ(designByName(r.name), r.kind);
    EXPECT_EQ(defaultProfile(r.kind), r.profile);
    const DesignTraits& t = designTraits(r.kind);
    EXPECT_EQ(t.expectsHoles, r.expectsHoles);
    EXPECT_EQ(t.mapsHugeEntries, r.mapsHugeEntries);
    EXPECT_EQ(t.pgoffHoldsPfn, r.pgoffHoldsPfn);
    EXPECT_EQ(t.refillsOnEnable, r.refillsOnEnable);
  }
}

// Each design against its own row. (expectsHoles: HoleTraitTest in
// vma_list_test.cc, which has the fork steps.)
class DesignTraitsTest : public VfioTest {
 protected:
  // 4 MiB of BAR2 at a 2 MiB-aligned address: room for one PMD leaf.
  void mapBar2() { ASSERT_EQ(map(kBar2Offset, 4 * kMiB, kH), static_cast<long>(kH)); }
  const DesignTraits& traits() const { return designTraits(design()); }
};

TEST_P(DesignTraitsTest, MapsHugeEntriesIsWhatItsFaultsInstall) {
  mapBar2();
  ASSERT_TRUE(touch(kH).sig.none());
  const LeafCounts l = leaves(kH, 4 * kMiB);
  EXPECT_EQ(l.pmd + l.pud != 0, traits().mapsHugeEntries);
  EXPECT_EQ(dev->pci().design().hasHugeFault(), traits().mapsHugeEntries);
}

TEST_P(DesignTraitsTest, PgoffHoldsPfnIsWhatMmapLeavesInVmPgoff) {
  mapBar2();
  const std::vector<VmaSnapshot> vmas = proc->mm().vmaSnapshot();
  ASSERT_EQ(vmas.size(), 1U);
  const Pfn bar2 = Pfn::fromPhys(PhysAddr(dev->pci().pdev().barStart(2)));
  EXPECT_EQ(vmas[0].pgoff == PgOff(bar2.value()), traits().pgoffHoldsPfn);
  EXPECT_EQ(vmas[0].pgoff == PgOff(kBar2Offset >> kPageShift), !traits().pgoffHoldsPfn);
}

TEST_P(DesignTraitsTest, RefillsOnEnableIsWhetherMappingsComeBackBeforeAnAccess) {
  mapBar2();
  ASSERT_TRUE(touch(kH).sig.none());
  setMem(false);
  ASSERT_EQ(leaves(kH, 4 * kMiB).total(), 0U);
  setMem(true);
  EXPECT_EQ(leaves(kH, 4 * kMiB).total() != 0, traits().refillsOnEnable);
}

INSTANTIATE_TEST_SUITE_P(AllDesigns, DesignTraitsTest, ::testing::ValuesIn(allDesigns()),
                         designParamName);

}  // namespace
}  // namespace vfiomm::testing
