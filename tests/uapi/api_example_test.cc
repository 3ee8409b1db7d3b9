// The example of docs/api.md, as a test. The lines between the two marker
// comments are the example; ExampleIsTheOneInTheDocs keeps docs/api.md's
// copy identical to them.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "kernel/kernel.h"
#include "mm/vm_flags.h"
#include "pci/pci_regs.h"
#include "source_dir.h"
#include "uapi/process.h"
#include "uapi/vfio_arg.h"
#include "vfio/vfio_device.h"

namespace vfiomm {
namespace {

using namespace vfiomm::uapi;

// --- api.md example: begin ---
TEST(ApiExample, MapABarDisableMemoryResetForkMremap) {
  // A machine with 4 CPUs running the huge-fault design (G3) under the
  // linux-6.12 profile, with conformance.md's Standard device D.
  std::unique_ptr<Kernel> kernel = *Kernel::create(KernelConfig{});
  VfioDevice& d = kernel->addStandardDevice();
  std::shared_ptr<Process> qemu = Process::spawn(*kernel, "qemu");

  // Container, group, device: the legacy group path.
  const int container = static_cast<int>(qemu->open("/dev/vfio/vfio", O_RDWR));
  ASSERT_GE(container, 0);
  const int group = static_cast<int>(qemu->open(kernel->groupPath(d), O_RDWR));
  ASSERT_GE(group, 0);
  int c = container;
  ASSERT_EQ(qemu->ioctl(group, VFIO_GROUP_SET_CONTAINER, &c), 0);
  ASSERT_EQ(qemu->ioctl(container, VFIO_SET_IOMMU, ioctlArg(VFIO_TYPE1v2_IOMMU)), 0);
  char name[] = "0000:01:00.0";  // d.name()
  const int device = static_cast<int>(qemu->ioctl(group, VFIO_GROUP_GET_DEVICE_FD, name));
  ASSERT_GE(device, 0);

  // BAR2: 2 GiB, mappable, at file offset 2 << 40.
  vfio_region_info bar2{.argsz = sizeof(bar2), .index = 2};
  ASSERT_EQ(qemu->ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &bar2), 0);
  ASSERT_EQ(bar2.size, uint64_t{2} << 30);
  ASSERT_EQ(bar2.offset, VFIO_PCI_INDEX_TO_OFFSET(2));
  ASSERT_NE(bar2.flags & VFIO_REGION_INFO_FLAG_MMAP, 0U);
  const long mapped =
      qemu->mmap(0, bar2.size, prot::kRead | prot::kWrite, map::kShared, device, bar2.offset);
  ASSERT_GT(mapped, 0);
  const auto va = static_cast<uint64_t>(mapped);

  // Loads and stores run on the thread's CPU; the first one faults the
  // page in. A signal comes back in the result instead of killing anyone.
  Thread& t = qemu->thread();
  AccessResult r = t.store(va + 0x1000, 0x1234, 4);
  ASSERT_EQ(r.sig.signo, 0);
  r = t.load(va + 0x1000, 4);
  ASSERT_EQ(r.sig.signo, 0);
  EXPECT_EQ(r.value, 0x1234U);

  // Config space is region 7. Clearing COMMAND.MEMORY zaps every mapping
  // of the device; the next access gets SIGBUS.
  const uint64_t config = VFIO_PCI_INDEX_TO_OFFSET(VFIO_PCI_CONFIG_REGION_INDEX);
  uint16_t cmd = 0;
  ASSERT_EQ(qemu->pread(device, &cmd, 2, config + kPciCommand), 2);
  const uint16_t off = static_cast<uint16_t>(cmd & ~kPciCommandMemory);
  ASSERT_EQ(qemu->pwrite(device, &off, 2, config + kPciCommand), 2);
  r = t.load(va + 0x1000, 4);
  EXPECT_EQ(r.sig.signo, SigInfo::kSigbus);
  EXPECT_EQ(r.sig.code, SigInfo::kBusAdrerr);
  EXPECT_EQ(r.sig.addr, VirtAddr(va + 0x1000));
  uint32_t word = 0;
  EXPECT_EQ(qemu->pread(device, &word, 4, bar2.offset), -5);  // -EIO

  // Memory back on: the next access refaults and works.
  ASSERT_EQ(qemu->pwrite(device, &cmd, 2, config + kPciCommand), 2);
  r = t.load(va + 0x1000, 4);
  EXPECT_EQ(r.sig.signo, 0);
  EXPECT_EQ(r.value, 0x1234U);

  // A function reset zaps too; the mapping refaults after it.
  ASSERT_EQ(qemu->ioctl(device, VFIO_DEVICE_RESET, nullptr), 0);
  ASSERT_EQ(t.store(va + 0x2000, 0xcafe, 4).sig.signo, 0);

  // A forked child shares the fds and inherits the mapping.
  std::shared_ptr<Process> child = qemu->fork();
  ASSERT_NE(child, nullptr);
  r = child->thread().load(va + 0x2000, 4);
  EXPECT_EQ(r.sig.signo, 0);
  EXPECT_EQ(r.value, 0xcafeU);
  child->exit();

  // A vfio mapping cannot grow (VM_DONTEXPAND) but can shrink.
  EXPECT_EQ(qemu->mremap(va, bar2.size, 2 * bar2.size, 0), -14);  // -EFAULT
  EXPECT_EQ(qemu->mremap(va, bar2.size, bar2.size / 2, 0), mapped);
  r = t.load(va + bar2.size / 2, 4);
  EXPECT_EQ(r.sig.signo, SigInfo::kSigsegv);
  EXPECT_EQ(r.sig.code, SigInfo::kSegvMaperr);

  // Minor faults of the whole process: the first store, the refault after
  // MEM came back and the one after the reset. (The SIGBUS fault is not
  // counted; neither are the child's.)
  EXPECT_EQ(qemu->getrusage().ru_minflt, 3U);
  EXPECT_EQ(qemu->getrusage().ru_majflt, 0U);
}
// --- api.md example: end ---

// The lines between `begin` and `end` in `text`, each ending in '\n'.
std::string between(const std::string& text, const std::string& begin, const std::string& end) {
  const size_t from = text.find(begin);
  if (from == std::string::npos) return {};
  const size_t start = text.find('\n', from + begin.size()) + 1;
  const size_t stop = text.find(end, start);
  if (stop == std::string::npos) return {};
  return text.substr(start, text.rfind('\n', stop) + 1 - start);
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(ApiExample, ExampleIsTheOneInTheDocs) {
  const std::string root = test::sourceDir() + "/";
  const std::string self = root + "tests/uapi/api_example_test.cc";
  const std::string test = readFile(self);
  const std::string docs = readFile(root + "docs/api.md");
  ASSERT_FALSE(test.empty()) << self;
  ASSERT_FALSE(docs.empty()) << root << "docs/api.md";
  const std::string example =
      between(test, "// --- api.md example: begin ---", "// --- api.md example: end ---");
  ASSERT_FALSE(example.empty());
  EXPECT_EQ(between(docs, "<!-- example: begin -->\n```cpp", "```\n<!-- example: end -->"), example)
      << "docs/api.md's example and this test differ";
}

}  // namespace
}  // namespace vfiomm
