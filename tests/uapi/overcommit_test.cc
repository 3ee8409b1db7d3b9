// The commit charge of private writable mappings (vfio-uapi.md §10): the
// heuristic and strict modes against a BAR mapping (UAPI-33, UAPI-34),
// MAP_FIXED over an old mapping per era (UAPI-35), and the charge coming
// back when mappings go.
#include <gtest/gtest.h>

#include <string>

#include "../vfio/vfio_fixture.h"
#include "base/byte_units.h"

namespace vfiomm::testing {
namespace {

constexpr uint64_t kVa = 0x7f0000000000;
constexpr int kPrivateRw = map::kPrivate;
constexpr int kRw = prot::kRead | prot::kWrite;

struct Era {
  const char* profile;
  DesignKind design;
  bool logsBytes;             // vme_log_bytes
  bool fixedSurvivesRefusal;  // fixed_map_survives_charge_fail
};

std::string eraName(const ::testing::TestParamInfo<Era>& info) {
  std::string n = info.param.profile;
  for (char& c : n)
    if (c == '-' || c == '.') c = '_';
  return n;
}

class Overcommit : public ::testing::TestWithParam<Era> {
 protected:
  // MemTotal + SwapTotal = 1 GiB by default.
  void boot(HostMemory memory = oneGiB()) {
    proc.reset();
    kernel.reset();
    KernelConfig cfg;
    cfg.design = GetParam().design;
    cfg.profile = GetParam().profile;
    cfg.memory = memory;
    kernel = *Kernel::create(cfg);
    dev = &kernel->addStandardDevice();
    proc = Process::spawn(*kernel, "qemu");
    const long container = proc->open("/dev/vfio/vfio", O_RDWR);
    const long group = proc->open(kernel->groupPath(*dev), O_RDWR);
    int c = static_cast<int>(container);
    proc->ioctl(static_cast<int>(group), VFIO_GROUP_SET_CONTAINER, &c);
    proc->ioctl(static_cast<int>(container), VFIO_SET_IOMMU, ioctlArg(VFIO_TYPE1v2_IOMMU));
    fd = static_cast<int>(proc->ioctl(static_cast<int>(group), VFIO_GROUP_GET_DEVICE_FD,
                                      const_cast<char*>(dev->name().c_str())));
    ASSERT_GE(fd, 0);
  }

  static HostMemory oneGiB() {
    HostMemory m;
    m.ramBytes = 768 * kMiB;
    m.swapBytes = 256 * kMiB;
    return m;
  }

  long mapBar(uint64_t offset, uint64_t len, int flags, uint64_t at = 0) {
    return proc->mmap(at, len, kRw, flags | (at != 0 ? map::kFixed : 0), fd, offset);
  }
  long mapAnon(uint64_t len, uint64_t at = 0) {
    return proc->mmap(at, len, kRw, kPrivateRw | map::kAnonymous | (at != 0 ? map::kFixed : 0), -1,
                      0);
  }
  uint64_t committed() { return kernel->vmCommit().committedPages(); }

  std::unique_ptr<Kernel> kernel;
  VfioDevice* dev = nullptr;
  std::shared_ptr<Process> proc;
  int fd = -1;
};

TEST_P(Overcommit, UAPI_33_HeuristicModeRefusesOnlyARequestBeyondRamAndSwap) {
  boot();
  EXPECT_EQ(mapBar(kBar2Offset, 2 * kGiB, kPrivateRw), -12);
  const std::vector<std::string> log = kernel->machine().log().lines();
  ASSERT_EQ(log.size(), 1U);
  const std::string who =
      "__vm_enough_memory: pid: " + std::to_string(proc->pid()) + ", comm: qemu, ";
  EXPECT_EQ(log[0], who + (GetParam().logsBytes ? "bytes: 2147483648 " : "") +
                        "not enough memory for the allocation");
  // Charged, then vfio's own refusal of a private mapping (charge returned).
  EXPECT_EQ(mapBar(kBar2Offset, 512 * kMiB, kPrivateRw), -22);
  EXPECT_EQ(mapBar(kBar2Offset, kGiB, kPrivateRw), -22);  // exactly MemTotal + SwapTotal
  EXPECT_EQ(mapBar(kBar2Offset, 2 * kGiB, kPrivateRw | map::kNoReserve), -22);
  EXPECT_EQ(kernel->machine().log().lines().size(), 1U);
  EXPECT_EQ(committed(), 0U);
  HostMemory always = oneGiB();
  always.overcommitMemory = OvercommitMode::kAlways;
  boot(always);
  EXPECT_EQ(mapBar(kBar2Offset, 2 * kGiB, kPrivateRw), -22);
  EXPECT_TRUE(kernel->machine().log().lines().empty());
}

TEST_P(Overcommit, UAPI_34_StrictModeAtTheLimitRefusesAPrivateBarMapping) {
  HostMemory strict = oneGiB();
  strict.overcommitMemory = OvercommitMode::kNever;
  strict.swapBytes = 0;
  strict.overcommitKbytes = 8192 + 1024;  // the admin reserve + 1 MiB
  boot(strict);
  constexpr uint64_t kChunk = 64 * kKiB;
  std::vector<uint64_t> chunks;
  for (int i = 0; i < 64; ++i) {
    const long a = mapAnon(kChunk);
    if (a < 0) {
      ASSERT_EQ(a, -12);
      break;
    }
    chunks.push_back(static_cast<uint64_t>(a));
  }
  ASSERT_FALSE(chunks.empty());
  ASSERT_LT(chunks.size(), 64U);  // the limit was reached
  const uint64_t atLimit = committed();
  EXPECT_EQ(mapBar(kBar0Offset, kChunk, kPrivateRw), -12);
  // Mode 2 ignores MAP_NORESERVE: the mapping is charged all the same.
  const size_t logLines = kernel->machine().log().lines().size();
  EXPECT_EQ(mapBar(kBar0Offset, kChunk, kPrivateRw | map::kNoReserve), -12);
  EXPECT_EQ(kernel->machine().log().lines().size(), logLines + 1);
  EXPECT_GT(mapBar(kBar0Offset, kChunk, map::kShared), 0);  // shared: never charged
  EXPECT_EQ(committed(), atLimit);
  ASSERT_EQ(proc->munmap(chunks.back(), kChunk), 0);
  EXPECT_EQ(committed(), atLimit - kChunk / kPageSize);
  EXPECT_EQ(mapBar(kBar0Offset, kChunk, kPrivateRw), -22);  // charge passed, vfio refused
  EXPECT_EQ(committed(), atLimit - kChunk / kPageSize);
}

TEST_P(Overcommit, UAPI_35_MapFixedOverAMappingWhenTheChargeIsRefused) {
  boot();
  ASSERT_EQ(mapAnon(64 * kKiB, kVa), static_cast<long>(kVa));
  EXPECT_EQ(mapBar(kBar2Offset, 2 * kGiB, kPrivateRw, kVa), -12);
  const auto vmas = proc->mm().vmaSnapshot();
  if (GetParam().fixedSurvivesRefusal) {
    ASSERT_EQ(vmas.size(), 1U);
    EXPECT_EQ(vmas[0].start, VirtAddr(kVa));
    EXPECT_EQ(committed(), 16U);
  } else {
    EXPECT_TRUE(vmas.empty());  // the hole: a touch is SIGSEGV
    EXPECT_EQ(proc->thread().load(kVa).sig.code, SigInfo::kSegvMaperr);
    EXPECT_EQ(committed(), 0U);
  }
  // A charge that passes: the driver refuses after the old range went.
  HostMemory always = oneGiB();
  always.overcommitMemory = OvercommitMode::kAlways;
  boot(always);
  ASSERT_EQ(mapAnon(64 * kKiB, kVa), static_cast<long>(kVa));
  EXPECT_EQ(mapBar(kBar2Offset, 2 * kGiB, kPrivateRw, kVa), -22);
  EXPECT_TRUE(proc->mm().vmaSnapshot().empty());
  EXPECT_EQ(committed(), 0U);
}

// The charge follows the mappings: munmap, mprotect, mremap, fork and exit.
TEST_P(Overcommit, ChargeComesBackWhenMappingsGo) {
  boot(HostMemory{});
  constexpr uint64_t kPages = 256;  // 1 MiB
  const long a = mapAnon(kMiB);
  ASSERT_GT(a, 0);
  const auto va = static_cast<uint64_t>(a);
  EXPECT_EQ(committed(), kPages);
  ASSERT_EQ(proc->munmap(va, kMiB / 2), 0);
  EXPECT_EQ(committed(), kPages / 2);
  std::shared_ptr<Process> child = proc->fork();
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(committed(), kPages);
  child->exit();
  EXPECT_EQ(committed(), kPages / 2);
  const long ro = proc->mmap(0, kMiB, prot::kRead, kPrivateRw | map::kAnonymous, -1, 0);
  ASSERT_GT(ro, 0);
  EXPECT_EQ(committed(), kPages / 2);  // not writable: not charged
  ASSERT_EQ(proc->mprotect(static_cast<uint64_t>(ro), kMiB, kRw), 0);
  EXPECT_EQ(committed(), kPages / 2 + kPages);
  EXPECT_GT(proc->mmap(0, kMiB, kRw, map::kShared | map::kAnonymous, -1, 0), 0);
  EXPECT_EQ(committed(), kPages / 2 + kPages);  // shared: not charged
  proc->exit();
  EXPECT_EQ(committed(), 0U);
}

INSTANTIATE_TEST_SUITE_P(Eras, Overcommit,
                         ::testing::Values(Era{"linux-6.1", DesignKind::kVmaList, false, false},
                                           Era{"linux-6.12", DesignKind::kHugeFault, true, true}),
                         eraName);

}  // namespace
}  // namespace vfiomm::testing
