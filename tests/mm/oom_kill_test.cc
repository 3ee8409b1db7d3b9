// pagefault_out_of_memory() (mm/oom_kill.c, 5.16+): a VM_FAULT_OOM that
// reaches the #PF handler is a rate-limited warning, never a kill.
#include "mm/oom_kill.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/kernel_log.h"

namespace vfiomm {
namespace {

constexpr const char* kWarning = "Huh VM_FAULT_OOM leaked out to the #PF handler. Retrying PF";

TEST(OomKillTest, WarnsForTheFirstBurstOnly) {
  KernelLog log;
  OomKill oom(log);
  for (unsigned i = 0; i < OomKill::kRatelimitBurst + 5; ++i) oom.pagefaultOutOfMemory();
  EXPECT_EQ(log.lines(), std::vector<std::string>(OomKill::kRatelimitBurst, kWarning));
  EXPECT_EQ(OomKill::kRatelimitBurst, 10U) << "DEFAULT_RATELIMIT_BURST";
}

}  // namespace
}  // namespace vfiomm
