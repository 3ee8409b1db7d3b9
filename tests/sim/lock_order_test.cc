// docs/architecture.md's lock order against what lockdep records when the
// shipped scenarios run (issue 13): every nesting the model does is written
// down, in the order the tree gives.
#include "lock_order.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernel/kernel.h"
#include "sim/runner.h"
#include "sim/scenario.h"
#include "source_dir.h"
#include "vfio/vfio_fixture.h"  // tests/

namespace vfiomm::sim {
namespace {

TEST(LockOrder, TheTreeIsReadFromTheDocument) {
  const testing::DocumentedLockOrder order;
  EXPECT_TRUE(order.knows("&mm->mmap_lock"));
  EXPECT_TRUE(order.knows("tasklist_lock"));
  EXPECT_TRUE(order.allows("&mm->mmap_lock", "&vdev->memory_lock"));
  EXPECT_TRUE(order.allows("&mm->mmap_lock", "ptlock_ptr(ptdesc)/1"));  // through several levels
  EXPECT_FALSE(order.allows("&vdev->memory_lock", "&mm->mmap_lock"));
  EXPECT_FALSE(order.allows("ptlock_ptr(ptdesc)", "ptlock_ptr(ptdesc)"));
}

class LockOrderScenario : public ::testing::TestWithParam<DesignKind> {};

TEST_P(LockOrderScenario, EveryDependencyOfTheShippedScenariosIsInTheTree) {
  const testing::DocumentedLockOrder order;
  for (const char* file :
       {"fork-live-bar.yaml", "shared-bar-reset.yaml", "sriov-nic-hot-reset.yaml",
        "runtime-pm-and-mm.yaml", "vm-boot-bar-sizing.yaml", "check/toggle-under-load.yaml",
        "check/fault-vs-disable.yaml"}) {
    const Scenario sc = loadScenario(test::sourceDir() + "/scenarios/" + file);
    RunOptions options;
    std::vector<std::string> undocumented;
    size_t dependencies = 0;
    options.beforeTeardown = [&](Kernel&) {
      undocumented = order.undocumented();
      dependencies = lockdep::dependencies().size();
    };
    runScenario(sc, GetParam(), options);
    EXPECT_GT(dependencies, 0U) << file;
    EXPECT_EQ(undocumented, std::vector<std::string>{}) << file;
  }
}

INSTANTIATE_TEST_SUITE_P(AllButVmaList, LockOrderScenario,
                         ::testing::Values(DesignKind::kAddressSpace, DesignKind::kFillVma,
                                           DesignKind::kHugeFault, DesignKind::kPrefault),
                         testing::designParamName);

}  // namespace
}  // namespace vfiomm::sim
