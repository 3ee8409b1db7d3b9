// Designs are composed of policies (vfio/mapping_design.h): each policy
// does its part whatever it is combined with.
#include <gtest/gtest.h>

#include "base/byte_units.h"
#include "mm/address_space.h"
#include "vfio/design/prefault_walk.h"
#include "vfio_fixture.h"

namespace vfiomm::testing {
namespace {

constexpr uint64_t kH = 0x7f0000000000;  // 1 GiB aligned, for BAR2 (Setup H)

// Policies combined otherwise than in the table. (VfioTest boots the
// parameter; each test boots what it needs.)
class PolicyTest : public VfioTest {
 protected:
  PrefaultWalk& prefaultWalk() { return static_cast<PrefaultWalk&>(dev->pci().design().refill()); }
};

// The prefault walk is a policy of its own: given a device whose design
// refills nothing and faults one 4 KiB page at a time, it still fills every
// mapping of the device with the largest entries, and the counts are its
// own state.
TEST_P(PolicyTest, PrefaultWalkRefillsAPerPageDesignsMappings) {
  boot(DesignKind::kAddressSpace, "linux-6.12");
  ASSERT_EQ(map(kBar2Offset, 2 * kGiB, kH), static_cast<long>(kH));
  PrefaultWalk walk(dev->pci(), false, false);
  walk.memoryEnabled();
  EXPECT_EQ(leaves(kH, 2 * kGiB).pud, 2U);
  EXPECT_EQ(walk.refills(), 1U);
  EXPECT_EQ(walk.refilledEntries(), 2U);
  const uint64_t before = minFlt();
  ASSERT_TRUE(touch(kH + kGiB).sig.none());
  EXPECT_EQ(minFlt(), before);
}

// prefault's huge fault hands its VMA to the walk only when the walk fills
// on faults; the refill after re-enable does not depend on it.
TEST_P(PolicyTest, PrefaultFillOnFirstFaultIsTheWalksNotTheFaults) {
  for (bool fillOnFault : {true, false}) {
    SCOPED_TRACE(fillOnFault ? "fill on fault" : "no fill on fault");
    DesignOptions options;
    options.prefaultFillOnFirstFault = fillOnFault;
    boot(DesignKind::kPrefault, "", options);
    ASSERT_EQ(map(kBar2Offset, 2 * kGiB, kH), static_cast<long>(kH));
    ASSERT_TRUE(touch(kH).sig.none());
    EXPECT_EQ(leaves(kH, 2 * kGiB).pud, fillOnFault ? 2U : 1U);
    setMem(false);
    setMem(true);
    EXPECT_EQ(leaves(kH, 2 * kGiB).pud, 2U);
    EXPECT_EQ(prefaultWalk().refills(), 1U);
    // Both blocks at each fill, present ones included: the fault's fill
    // and the refill, or the refill alone.
    EXPECT_EQ(prefaultWalk().refilledEntries(), fillOnFault ? 4U : 2U);
  }
}

// The seeded zap-before-memory-lock bug lives in the address-space zap, so
// every design that zaps that way has it: the zap then takes i_mmap_rwsem
// outside memory_lock.
TEST_P(PolicyTest, ZapBeforeMemoryLockIsTheAddressSpaceZaps) {
  for (bool seeded : {false, true}) {
    SCOPED_TRACE(seeded ? "seeded" : "as released");
    DesignOptions options;
    options.zapBeforeMemoryLock = seeded;
    lockdep::resetGraph();
    boot(DesignKind::kHugeFault, "", options);
    ASSERT_EQ(map(kBar2Offset, 4 * kMiB, kH), static_cast<long>(kH));
    ASSERT_TRUE(touch(kH).sig.none());
    setMem(false);
    EXPECT_EQ(lockdep::hasDependency(kVfioMemoryLockClass, kIMmapRwsemClass), !seeded);
    EXPECT_EQ(leaves(kH, 4 * kMiB).total(), 0U);
  }
}

INSTANTIATE_TEST_SUITE_P(Composed, PolicyTest, ::testing::Values(DesignKind::kAddressSpace),
                         designParamName);

}  // namespace
}  // namespace vfiomm::testing
