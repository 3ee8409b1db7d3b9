#include "sim/bar_probe.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include <fmt/format.h>

#include "base/counter.h"
#include "base/errno.h"
#include "mm/mm.h"
#include "mm/vm_flags.h"
#include "pci/pci_bus.h"
#include "pci/pci_regs.h"
#include "sim/scenario.h"
#include "sync/lockdep.h"
#include "uapi/kernel.h"
#include "uapi/process.h"
#include "uapi/vfio_uapi.h"
#include "vfio/vfio_device.h"

namespace vfiomm::sim {

namespace {

using namespace vfiomm::uapi;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kPage = 4096;
constexpr uint64_t kConfigOffset = VFIO_PCI_INDEX_TO_OFFSET(VFIO_PCI_CONFIG_REGION_INDEX);

uint64_t roundUp(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }
uint64_t roundDown(uint64_t v, uint64_t a) { return v & ~(a - 1); }

std::string errnoText(long rc) {
  return std::string(errnoName(static_cast<Errno>(static_cast<int>(-rc))));
}

// The counters of the model a phase moved, named as the runner names them.
Metrics countersSince(const CounterSnapshot& before) {
  const CounterSnapshot d = CounterRegistry::global().snapshot().since(before);
  Metrics m;
  m.faults = d.get("vmstat.pgfault");
  m.pte = d.get("mm.pfn_insert.pte");
  m.pmd = d.get("mm.pfn_insert.pmd");
  m.pud = d.get("mm.pfn_insert.pud");
  m.fallback = d.get("mm.fault.fallback.pud") + d.get("mm.fault.fallback.pmd");
  m.zaps = d.get("mm.zap.calls");
  m.zappedEntries = d.get("mm.zap.pte") + d.get("mm.zap.pmd") + d.get("mm.zap.pud");
  m.tlbMisses = d.get("tlb.miss");
  m.shootdowns = d.get("tlb.shootdown");
  m.memoryLockWrites = d.get("vfio.memory_lock.write");
  return m;
}

// m += copies × w for every count (not the peak, not the times).
void addCopies(Metrics& m, const Metrics& w, uint64_t copies) {
  m.faults += copies * w.faults;
  m.pte += copies * w.pte;
  m.pmd += copies * w.pmd;
  m.pud += copies * w.pud;
  m.fallback += copies * w.fallback;
  m.sigbus += copies * w.sigbus;
  m.sigsegv += copies * w.sigsegv;
  m.accesses += copies * w.accesses;
  m.zaps += copies * w.zaps;
  m.zappedEntries += copies * w.zappedEntries;
  m.tlbMisses += copies * w.tlbMisses;
  m.shootdowns += copies * w.shootdowns;
  m.memoryLockWrites += copies * w.memoryLockWrites;
  m.violations += copies * w.violations;
}

class Probe {
 public:
  explicit Probe(const ProbeSpec& spec) : spec_(spec) {}
  ProbeResult run();

 private:
  void setUp();
  void map();
  // One load per 4 KiB page of every window, in address order.
  Metrics touch();
  Metrics toggle();
  void setMemory(bool on);
  uint64_t pgtables() const { return proc_->mm().pageTable().pgtablesBytes(); }
  // Where the model's counters stood when a phase began.
  struct Mark {
    CounterSnapshot counters = CounterRegistry::global().snapshot();
    size_t lockdepReports = lockdep::reportCount();
    uint64_t violations = 0;
    Clock::time_point start = Clock::now();
  };
  Mark mark() const;
  Metrics finish(Metrics m, const Mark& begin, uint64_t peak) const;

  const ProbeSpec& spec_;
  std::unique_ptr<Kernel> kernel_;
  VfioDevice* dev_ = nullptr;
  std::shared_ptr<Process> proc_;
  int fd_ = -1;
  SampledWindows windows_;
  ProbeResult result_;
  // What the untouched copies of the middle window would hold now: leaf
  // entries (a zap removes them) and page-table bytes.
  uint64_t copiedEntries_ = 0;
  uint64_t copiedPgtables_ = 0;
};

void Probe::setUp() {
  KernelConfig cfg;
  cfg.design = spec_.design;
  cfg.thp = ThpEnabled::kAlways;
  auto k = Kernel::create(cfg);
  if (!k) throw ScenarioError(fmt::format("the kernel refuses design {}", designName(spec_.design)));
  kernel_ = std::move(*k);
  result_.profile = kernel_->profile().name;

  PciDeviceConfig c;
  c.vendorId = 0x1af4;
  c.deviceId = 0x1100;
  c.bus = 1;
  c.bars[kProbeBar] = BarSpec{spec_.barSize, BarKind::kMem64, true};
  c.pm = PmCapSpec{.noSoftReset = true};
  c.pcie = PcieCapSpec{.flr = true};
  auto dev = kernel_->addVfioDevice(kernel_->addBus(1, true, false), c, ResourcePlacement{}, -1);
  if (!dev)
    throw ScenarioError(fmt::format("the kernel refuses a {} BAR: {}", formatSize(spec_.barSize),
                                    errnoName(dev.error())));
  dev_ = *dev;

  proc_ = kernel_->spawn("vmm");
  Process& p = *proc_;
  const long container = p.open("/dev/vfio/vfio", O_RDWR);
  p.ioctl(static_cast<int>(container), VFIO_SET_IOMMU, nullptr);
  const long group = p.open(kernel_->groupPath(*dev_), O_RDWR);
  int containerFd = static_cast<int>(container);
  p.ioctl(static_cast<int>(group), VFIO_GROUP_SET_CONTAINER, &containerFd);
  vfio_group_get_device_fd arg{dev_->name().c_str()};
  const long fd = p.ioctl(static_cast<int>(group), VFIO_GROUP_GET_DEVICE_FD, &arg);
  if (fd < 0) throw ScenarioError(fmt::format("VFIO_GROUP_GET_DEVICE_FD returned {}", errnoText(fd)));
  fd_ = static_cast<int>(fd);
  // The guest's firmware turns memory decode on; a VMM starts from there.
  setMemory(true);
}

void Probe::setMemory(bool on) {
  uint16_t cmd = 0;
  long rc = proc_->pread(fd_, &cmd, 2, kConfigOffset + kPciCommand);
  if (rc == 2) {
    cmd = on ? static_cast<uint16_t>(cmd | kPciCommandMemory) : static_cast<uint16_t>(cmd & ~kPciCommandMemory);
    rc = proc_->pwrite(fd_, &cmd, 2, kConfigOffset + kPciCommand);
  }
  if (rc != 2) result_.notes.push_back(fmt::format("COMMAND write returned {}", errnoText(rc)));
}

void Probe::map() {
  Process& p = *proc_;
  const uint64_t len = spec_.mappedLength();
  const int prot = prot::kRead | prot::kWrite;
  const uint64_t off = VFIO_PCI_INDEX_TO_OFFSET(kProbeBar) + spec_.offset;
  long addr = 0;
  switch (spec_.placement) {
    case Placement::kKernel:
      addr = p.mmap(0, len, prot, map::kShared, fd_, off);
      break;
    case Placement::kFixed:
      addr = p.mmap(spec_.address, len, prot, map::kShared | map::kFixed, fd_, off);
      break;
    case Placement::kAligned: {
      // QEMU 9.2 (vfio_region_mmap): reserve length + align of PROT_NONE,
      // round up, unmap the slack, map the BAR over the aligned start.
      const long res = p.mmap(0, len + spec_.align, prot::kNone,
                              map::kPrivate | map::kAnonymous | map::kNoReserve, -1, 0);
      if (res < 0) throw ScenarioError(fmt::format("mmap(reserve) returned {}", errnoText(res)));
      const uint64_t base = static_cast<uint64_t>(res);
      const uint64_t aligned = roundUp(base, spec_.align);
      if (aligned > base) p.munmap(base, aligned - base);
      if (base + len + spec_.align > aligned + len) p.munmap(aligned + len, base + spec_.align - aligned);
      addr = p.mmap(aligned, len, prot, map::kShared | map::kFixed, fd_, off);
      break;
    }
  }
  if (addr < 0) throw ScenarioError(fmt::format("mmap of the BAR returned {}", errnoText(addr)));
  result_.address = static_cast<uint64_t>(addr);
  result_.length = len;
}

Probe::Mark Probe::mark() const {
  Mark b;
  b.violations = kernel_->pciHost().decodeViolationCount();
  return b;
}

Metrics Probe::finish(Metrics m, const Mark& begin, uint64_t peak) const {
  const Metrics c = countersSince(begin.counters);
  m.faults = c.faults;
  m.pte = c.pte;
  m.pmd = c.pmd;
  m.pud = c.pud;
  m.fallback = c.fallback;
  m.zaps = c.zaps;
  m.zappedEntries = c.zappedEntries;
  m.tlbMisses = c.tlbMisses;
  m.shootdowns = c.shootdowns;
  m.memoryLockWrites = c.memoryLockWrites;
  m.pgtablesPeak = std::max(peak, pgtables());
  m.lockdepReports = lockdep::reportCount() - begin.lockdepReports;
  m.violations = kernel_->pciHost().decodeViolationCount() - begin.violations;
  m.wallNs = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - begin.start).count());
  return m;
}

Metrics Probe::touch() {
  const Mark begin = mark();
  Thread& t = proc_->thread(0);
  Metrics m;
  Metrics middle;
  uint64_t middlePgtables = 0;
  for (size_t i = 0; i < windows_.windows.size(); ++i) {
    const bool isMiddle = windows_.sampled() && i == windows_.middle;
    const CounterSnapshot wBefore = isMiddle ? CounterRegistry::global().snapshot() : CounterSnapshot{};
    const uint64_t pgBefore = pgtables();
    Metrics w;
    for (uint64_t off = windows_.windows[i].begin; off < windows_.windows[i].end; off += kPage) {
      const AccessResult r = t.load(result_.address + off, 4);
      ++w.accesses;
      if (r.sig.signo == SigInfo::kSigbus) ++w.sigbus;
      if (r.sig.signo == SigInfo::kSigsegv) ++w.sigsegv;
    }
    m.accesses += w.accesses;
    m.sigbus += w.sigbus;
    m.sigsegv += w.sigsegv;
    if (isMiddle) {
      const Metrics c = countersSince(wBefore);
      middle = c;
      middle.accesses = w.accesses;
      middle.sigbus = w.sigbus;
      middle.sigsegv = w.sigsegv;
      middlePgtables = pgtables() - pgBefore;
    }
  }
  m = finish(m, begin, 0);
  if (windows_.sampled()) {
    // A zap that follows removes what the copies would have inserted.
    copiedEntries_ += windows_.copies * (middle.pte + middle.pmd + middle.pud);
    copiedPgtables_ += windows_.copies * middlePgtables;
    addCopies(m, middle, windows_.copies);
    m.pgtablesPeak += copiedPgtables_;
  }
  m.modeledNs = spec_.cost.modeledNs(m.costInputs());
  return m;
}

Metrics Probe::toggle() {
  const Mark begin = mark();
  const uint64_t peak = pgtables();
  setMemory(false);
  setMemory(true);
  Metrics m = finish(Metrics{}, begin, peak);
  m.zappedEntries += copiedEntries_;
  copiedEntries_ = 0;
  m.pgtablesPeak += copiedPgtables_;
  m.modeledNs = spec_.cost.modeledNs(m.costInputs());
  return m;
}

ProbeResult Probe::run() {
  lockdep::clearReports();
  lockdep::resetGraph();
  setUp();
  map();
  windows_ = sampleWindows(result_.address, result_.length, spec_.sampleAbove);
  result_.sampled = windows_.sampled();
  result_.sampledFraction = windows_.fraction(result_.length);
  result_.touch = touch();
  result_.toggle = toggle();
  result_.retouch = touch();
  proc_->exit();
  proc_.reset();
  kernel_.reset();
  return result_;
}

}  // namespace

double SampledWindows::fraction(uint64_t length) const {
  uint64_t touched = 0;
  for (const Window& w : windows) touched += w.end - w.begin;
  return length == 0 ? 1.0 : static_cast<double>(touched) / static_cast<double>(length);
}

SampledWindows sampleWindows(uint64_t address, uint64_t length, uint64_t sampleAbove) {
  SampledWindows s;
  const uint64_t firstBlock = roundUp(address, kGiB);
  const uint64_t lastBlockEnd = roundDown(address + length, kGiB);
  const uint64_t blocks = lastBlockEnd > firstBlock ? (lastBlockEnd - firstBlock) / kGiB : 0;
  // Head, middle and tail need three whole blocks; a fourth makes a copy.
  if (length <= sampleAbove || blocks < 4) {
    s.windows.push_back(Window{0, length});
    return s;
  }
  const uint64_t headEnd = firstBlock + kGiB - address;
  const uint64_t middleBegin = firstBlock + (blocks / 2) * kGiB - address;
  const uint64_t tailBegin = lastBlockEnd - kGiB - address;
  s.windows = {Window{0, headEnd}, Window{middleBegin, middleBegin + kGiB}, Window{tailBegin, length}};
  s.middle = 1;
  s.copies = blocks - 3;
  return s;
}

// The fields of a phase, in output order, with their Metrics members.
struct PhaseField {
  const char* key;
  uint64_t Metrics::*member;
};
constexpr PhaseField kPhaseFields[] = {
    {"faults", &Metrics::faults},
    {"pte", &Metrics::pte},
    {"pmd", &Metrics::pmd},
    {"pud", &Metrics::pud},
    {"fallback", &Metrics::fallback},
    {"sigbus", &Metrics::sigbus},
    {"sigsegv", &Metrics::sigsegv},
    {"accesses", &Metrics::accesses},
    {"zaps", &Metrics::zaps},
    {"zapped_entries", &Metrics::zappedEntries},
    {"tlb_misses", &Metrics::tlbMisses},
    {"shootdowns", &Metrics::shootdowns},
    {"memory_lock_writes", &Metrics::memoryLockWrites},
    {"pgtables_peak_bytes", &Metrics::pgtablesPeak},
    {"lockdep_reports", &Metrics::lockdepReports},
    {"violations", &Metrics::violations},
};

nlohmann::ordered_json phaseToJson(const Metrics& m) {
  nlohmann::ordered_json j;
  for (const PhaseField& f : kPhaseFields) j[f.key] = m.*f.member;
  j["modeled_ns"] = m.modeledNs;
  j["wall_ns"] = m.wallNs;
  return j;
}

Metrics phaseFromJson(const nlohmann::ordered_json& j) {
  Metrics m;
  for (const PhaseField& f : kPhaseFields) m.*f.member = j.at(f.key).get<uint64_t>();
  m.modeledNs = j.at("modeled_ns").get<double>();
  m.wallNs = j.at("wall_ns").get<uint64_t>();
  return m;
}

nlohmann::ordered_json probeResultToJson(const ProbeResult& r) {
  nlohmann::ordered_json j;
  j["profile"] = r.profile;
  j["address"] = r.address;
  j["length"] = r.length;
  j["sampled"] = r.sampled;
  j["sampled_fraction"] = r.sampledFraction;
  j["phases"] = nlohmann::ordered_json{
      {"touch", phaseToJson(r.touch)}, {"toggle", phaseToJson(r.toggle)}, {"retouch", phaseToJson(r.retouch)}};
  j["notes"] = r.notes;
  return j;
}

ProbeResult probeResultFromJson(const nlohmann::ordered_json& j) {
  ProbeResult r;
  r.profile = j.at("profile").get<std::string>();
  r.address = j.at("address").get<uint64_t>();
  r.length = j.at("length").get<uint64_t>();
  r.sampled = j.at("sampled").get<bool>();
  r.sampledFraction = j.at("sampled_fraction").get<double>();
  r.touch = phaseFromJson(j.at("phases").at("touch"));
  r.toggle = phaseFromJson(j.at("phases").at("toggle"));
  r.retouch = phaseFromJson(j.at("phases").at("retouch"));
  r.notes = j.at("notes").get<std::vector<std::string>>();
  return r;
}

ProbeResult runProbe(const ProbeSpec& spec) {
  lockdep::setReportSink([](const lockdep::Report&) {});
  return Probe(spec).run();
}

}  // namespace vfiomm::sim
