// The syscall API driven by fuzzer bytes: opens, closes, ioctls with
// arbitrary requests, argsz values and contents (and null pointers), mmap
// with arbitrary offsets, lengths, protections and flags, accesses, config
// and BAR reads and writes at arbitrary offsets, madvise with any advice,
// mlock, mremap, eventfds, fork and exit — on a kernel with the Standard
// device D, in a design the first byte picks.
// Whatever the bytes, the model must answer with a value or an errno: a
// crash, a sanitizer report or a broken invariant in a correct design
// (InvariantMonitor) is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "kernel/kernel.h"
#include "uapi/invariant_monitor.h"
#include "uapi/process.h"
#include "uapi/vfio_arg.h"
#include "vfio/vfio_device.h"

namespace {

using namespace vfiomm;
using namespace vfiomm::uapi;

class Bytes {
 public:
  Bytes(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = v << 8 | u8();
    return v;
  }
  uint64_t u64() { return uint64_t{u32()} << 32 | u32(); }
  // `n` bytes of input (zero when it runs out).
  void fill(uint8_t* out, size_t n) {
    for (size_t i = 0; i < n; ++i) out[i] = u8();
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

constexpr unsigned long kRequests[] = {
    VFIO_GET_API_VERSION,
    VFIO_CHECK_EXTENSION,
    VFIO_SET_IOMMU,
    VFIO_GROUP_GET_STATUS,
    VFIO_GROUP_SET_CONTAINER,
    VFIO_GROUP_GET_DEVICE_FD,
    VFIO_DEVICE_GET_INFO,
    VFIO_DEVICE_GET_REGION_INFO,
    VFIO_DEVICE_GET_IRQ_INFO,
    VFIO_DEVICE_RESET,
    VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
    VFIO_DEVICE_PCI_HOT_RESET,
    VFIO_DEVICE_FEATURE,
    VFIO_DEVICE_BIND_IOMMUFD,
    0x3b99,
};

class Driver {
 public:
  Driver(Bytes& in, DesignKind design) : in_(in) {
    KernelConfig cfg;
    cfg.design = design;
    kernel_ = *Kernel::create(cfg);
    dev_ = &kernel_->addStandardDevice();
    monitor_ = std::make_unique<InvariantMonitor>(*kernel_);
    procs_.push_back(Process::spawn(*kernel_, "fuzz"));
  }

  ~Driver() {
    for (auto& p : procs_) p->exit();
    monitor_->checkLeaks(procs_);
    procs_.clear();
    if (correct() && monitor_->counts().total() != 0) std::abort();
  }

  void step() {
    Process& p = *procs_[in_.u8() % procs_.size()];
    switch (in_.u8() % 18) {
      case 0: open(p, "/dev/vfio/vfio"); break;
      case 1: open(p, kernel_->groupPath(*dev_)); break;
      case 2: open(p, kernel_->cdevPath(*dev_)); break;
      case 3: open(p, "/dev/iommu"); break;
      case 4: p.close(fd()); break;
      case 5:
      case 6: ioctl(p); break;
      case 7: mmap(p); break;
      case 8: p.munmap(addr(), in_.u64() % (1ULL << 32)); break;
      case 9: access(p); break;
      case 10: rw(p); break;
      case 11: fork(p); break;
      case 12: exitChild(); break;
      case 13: p.mprotect(addr(), in_.u32(), static_cast<int>(in_.u8() & 7)); break;
      case 14: p.madvise(addr(), in_.u64() % (1ULL << 32), static_cast<int>(in_.u8())); break;
      case 15: p.mlock(addr(), in_.u32()); break;
      case 16: p.mremap(addr(), in_.u32(), in_.u32(), in_.u8() & 7, in_.u64()); break;
      case 17: p.eventfd(in_.u8(), 0); break;
    }
    if (correct()) {
      monitor_->checkEntries(procs_);
      if (monitor_->counts().total() != 0) std::abort();
    }
  }

 private:
  bool correct() const { return kernel_->config().design != DesignKind::kVmaList; }
  int fd() { return static_cast<int>(in_.u8() % 12); }
  uint64_t addr() {
    return mapped_.empty() || (in_.u8() & 1) ? in_.u64() : mapped_[in_.u8() % mapped_.size()];
  }

  void open(Process& p, const std::string& path) { p.open(path, static_cast<int>(in_.u8() % 3)); }

  void ioctl(Process& p) {
    const int f = fd();
    const uint8_t pick = in_.u8();
    const unsigned long request = kRequests[pick % std::size(kRequests)];
    const uint8_t shape = in_.u8();
    if (shape % 8 == 0) {
      p.ioctl(f, request, nullptr);
      return;
    }
    if (request == VFIO_SET_IOMMU || request == VFIO_CHECK_EXTENSION) {
      p.ioctl(f, request, ioctlArg(in_.u8()));
      return;
    }
    if (request == VFIO_GROUP_GET_DEVICE_FD) {
      char name[16] = {};
      if (shape & 1)
        std::strncpy(name, dev_->name().c_str(), sizeof(name) - 1);
      else
        in_.fill(reinterpret_cast<uint8_t*>(name), sizeof(name) - 1);
      p.ioctl(f, request, name);
      return;
    }
    // The kernel trusts argsz for what it writes, as for a real user's
    // buffer: make the buffer at least that big.
    const uint32_t argsz = in_.u32() % 512;
    std::vector<uint64_t> buf(64 + argsz / 8 + 1);
    auto* bytes = reinterpret_cast<uint8_t*>(buf.data());
    in_.fill(bytes, std::min<size_t>(buf.size() * 8, 64));
    std::memcpy(bytes, &argsz, sizeof(argsz));
    p.ioctl(f, request, bytes);
  }

  void mmap(Process& p) {
    const uint64_t len = (in_.u8() & 1) ? in_.u64() : (1 + in_.u8()) * 4096ULL;
    const uint64_t off = (in_.u8() & 1)
                             ? in_.u64()
                             : VFIO_PCI_INDEX_TO_OFFSET(in_.u8() % 10) + (in_.u32() & ~0xfffU);
    const long va = p.mmap((in_.u8() & 3) == 0 ? in_.u64() : 0, len, in_.u8() & 7,
                           static_cast<int>(in_.u32() & 0x1f4033), fd(), off);
    if (va > 0) mapped_.push_back(static_cast<uint64_t>(va));
  }

  void access(Process& p) {
    const uint64_t va = addr() + (in_.u32() & 0x1ffff8);
    const unsigned size = 1U << (in_.u8() % 4);
    if (in_.u8() & 1)
      (void)p.thread().store(va, in_.u64(), size);
    else
      (void)p.thread().load(va, size);
  }

  void rw(Process& p) {
    const uint64_t count = in_.u8() % 16;
    const uint64_t off =
        (in_.u8() & 1) ? in_.u64() : VFIO_PCI_INDEX_TO_OFFSET(in_.u8() % 10) + in_.u32() % 8192;
    uint8_t buf[16] = {};
    in_.fill(buf, count);
    if (in_.u8() & 1)
      p.pwrite(fd(), (in_.u8() % 8 == 0) ? nullptr : buf, count, off);
    else
      p.pread(fd(), (in_.u8() % 8 == 0) ? nullptr : buf, count, off);
  }

  void fork(Process& p) {
    if (procs_.size() >= 4) return;
    if (auto child = p.fork()) procs_.push_back(std::move(child));
  }

  void exitChild() {
    if (procs_.size() < 2) return;
    procs_.back()->exit();
    procs_.pop_back();
  }

  Bytes& in_;
  std::unique_ptr<Kernel> kernel_;
  VfioDevice* dev_ = nullptr;
  std::unique_ptr<InvariantMonitor> monitor_;
  std::vector<std::shared_ptr<Process>> procs_;
  std::vector<uint64_t> mapped_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes in(data, size);
  static constexpr DesignKind kDesigns[] = {DesignKind::kVmaList, DesignKind::kAddressSpace,
                                            DesignKind::kFillVma, DesignKind::kHugeFault,
                                            DesignKind::kPrefault};
  Driver driver(in, kDesigns[in.u8() % std::size(kDesigns)]);
  for (int steps = 0; steps < 64 && !in.empty(); ++steps) driver.step();
  return 0;
}
