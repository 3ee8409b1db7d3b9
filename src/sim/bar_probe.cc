#include "sim/bar_probe.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>

#include "abi/vfio.h"
#include "base/byte_format.h"
#include "base/byte_units.h"
#include "base/counter.h"
#include "base/errno.h"
#include "base/page_geometry.h"
#include "kernel/kernel.h"
#include "mm/mm.h"
#include "mm/vm_flags.h"
#include "pci/pci_bus.h"
#include "pci/pci_regs.h"
#include "sim/scenario.h"
#include "sim/vmm.h"
#include "sync/lockdep.h"
#include "uapi/process.h"
#include "uapi/vfio_arg.h"
#include "vfio/vfio_device.h"

namespace vfiomm::sim {

namespace {

using namespace vfiomm::uapi;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kPage = 4096;

std::string errnoText(long rc) {
  return std::string(errnoName(static_cast<Errno>(static_cast<int>(-rc))));
}

class Probe {
 public:
  explicit Probe(const ProbeSpec& spec) : spec_(spec) {}
  ProbeResult run();
  // Only where the mapping lands (no touch).
  uint64_t place();

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
    CounterSnapshot counters = CounterSet::current().snapshot();
    size_t lockdepReports = lockdep::reportCount();
    uint64_t violations = 0;
    Clock::time_point start = Clock::now();
  };
  Mark mark() const;
  Metrics finish(Metrics m, const Mark& begin, uint64_t peak) const;

  const ProbeSpec& spec_;
  std::unique_ptr<Kernel> kernel_;
  std::optional<KernelContext::Scope> in_;  // from setUp() until the kernel goes
  VfioDevice* dev_ = nullptr;
  std::shared_ptr<Process> proc_;
  int fd_ = -1;
  ProbeResult result_;
};

void Probe::setUp() {
  KernelConfig cfg;
  cfg.design = spec_.design;
  cfg.thp = ThpEnabled::kAlways;
  auto k = Kernel::create(cfg);
  if (!k)
    throw ScenarioError(fmt::format("the kernel refuses design {}", designName(spec_.design)));
  kernel_ = std::move(*k);
  in_.emplace(kernel_->context());
  lockdep::setReportSink([](const lockdep::Report&) {});
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
    throw ScenarioError(fmt::format("the kernel refuses a {} BAR: {}", formatBytes(spec_.barSize),
                                    errnoName(dev.error())));
  dev_ = *dev;

  proc_ = Process::spawn(*kernel_, "vmm");
  const VmmResult<int> fd = Vmm().openViaGroup(*proc_, *kernel_, *dev_);
  if (!fd)
    throw ScenarioError(fmt::format("{} returned {}", fd.error().call, errnoText(fd.error().rc)));
  fd_ = *fd;
  // The guest's firmware turns memory decode on; a VMM starts from there.
  setMemory(true);
}

void Probe::setMemory(bool on) {
  const long rc = setMemoryDecode(*proc_, fd_, on);
  if (rc != 2) result_.notes.push_back(fmt::format("COMMAND write returned {}", errnoText(rc)));
}

void Probe::map() {
  const uint64_t len = spec_.mappedLength();
  BarPlacement where;
  if (spec_.placement == Placement::kFixed) where.address = spec_.address;
  if (spec_.placement == Placement::kAligned) where.align = spec_.align;
  const VmmResult<uint64_t> addr =
      mapBar(*proc_, fd_, kProbeBar, spec_.offset, len, prot::kRead | prot::kWrite, where);
  if (!addr)
    throw ScenarioError(fmt::format("mmap({}) of the BAR returned {}", addr.error().call,
                                    errnoText(addr.error().rc)));
  result_.address = *addr;
  result_.length = len;
}

Probe::Mark Probe::mark() const {
  Mark b;
  b.violations = kernel_->pciHost().decodeViolationCount();
  return b;
}

Metrics Probe::finish(Metrics m, const Mark& begin, uint64_t peak) const {
  const Metrics c = countedSince(begin.counters);
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
  for (uint64_t off = 0; off < result_.length; off += kPage) {
    const AccessResult r = t.load(result_.address + off, 4);
    ++m.accesses;
    if (r.sig.signo == SigInfo::kSigbus) ++m.sigbus;
    if (r.sig.signo == SigInfo::kSigsegv) ++m.sigsegv;
  }
  m = finish(m, begin, 0);
  m.modeledNs = spec_.cost.modeledNs(m.costInputs());
  return m;
}

Metrics Probe::toggle() {
  const Mark begin = mark();
  const uint64_t peak = pgtables();
  setMemory(false);
  setMemory(true);
  Metrics m = finish(Metrics{}, begin, peak);
  m.modeledNs = spec_.cost.modeledNs(m.costInputs());
  return m;
}

uint64_t Probe::place() {
  setUp();
  map();
  proc_->exit();
  proc_.reset();
  in_.reset();
  kernel_.reset();
  return result_.address;
}

ProbeResult Probe::run() {
  setUp();
  map();
  result_.touch = touch();
  result_.toggle = toggle();
  result_.retouch = touch();
  proc_->exit();
  proc_.reset();
  in_.reset();
  kernel_.reset();
  return result_;
}

}  // namespace

uint64_t wholeBlocks(uint64_t address, uint64_t length) {
  const uint64_t first = roundUp(address, kGiB);
  const uint64_t last = roundDown(address + length, kGiB);
  return last > first ? (last - first) / kGiB : 0;
}

namespace {

// r1 + k × (r2 − r1), per count: exact when the count is affine in the
// number of whole blocks (docs/sweep.md says why the model's are).
Metrics extrapolate(const Metrics& r1, const Metrics& r2, uint64_t k, const CostModel& cost) {
  auto line = [k](uint64_t a, uint64_t b) {
    const auto v = static_cast<int64_t>(a) +
                   static_cast<int64_t>(k) * (static_cast<int64_t>(b) - static_cast<int64_t>(a));
    return static_cast<uint64_t>(std::max<int64_t>(0, v));
  };
  Metrics m;
  m.faults = line(r1.faults, r2.faults);
  m.pte = line(r1.pte, r2.pte);
  m.pmd = line(r1.pmd, r2.pmd);
  m.pud = line(r1.pud, r2.pud);
  m.fallback = line(r1.fallback, r2.fallback);
  m.sigbus = line(r1.sigbus, r2.sigbus);
  m.sigsegv = line(r1.sigsegv, r2.sigsegv);
  m.accesses = line(r1.accesses, r2.accesses);
  m.zaps = line(r1.zaps, r2.zaps);
  m.zappedEntries = line(r1.zappedEntries, r2.zappedEntries);
  m.tlbMisses = line(r1.tlbMisses, r2.tlbMisses);
  m.shootdowns = line(r1.shootdowns, r2.shootdowns);
  m.memoryLockWrites = line(r1.memoryLockWrites, r2.memoryLockWrites);
  m.pgtablesPeak = line(r1.pgtablesPeak, r2.pgtablesPeak);
  m.lockdepReports = line(r1.lockdepReports, r2.lockdepReports);
  m.violations = line(r1.violations, r2.violations);
  m.modeledNs = cost.modeledNs(m.costInputs());
  m.wallNs = r1.wallNs + r2.wallNs;  // what the two runs took, not an estimate
  return m;
}

}  // namespace

nlohmann::ordered_json phaseToJson(const Metrics& m) {
  nlohmann::ordered_json j;
  for (const MetricField& f : metricFields()) {
    if (f.flat == nullptr) continue;
    if (f.ns != nullptr)
      j[f.flat] = m.*f.ns;
    else
      j[f.flat] = m.*f.count;
  }
  return j;
}

nlohmann::ordered_json probeResultToJson(const ProbeResult& r) {
  nlohmann::ordered_json j;
  j["profile"] = r.profile;
  j["address"] = r.address;
  j["length"] = r.length;
  j["sampled"] = r.sampled;
  j["sampled_fraction"] = r.sampledFraction;
  j["phases"] = nlohmann::ordered_json{{"touch", phaseToJson(r.touch)},
                                       {"toggle", phaseToJson(r.toggle)},
                                       {"retouch", phaseToJson(r.retouch)}};
  j["notes"] = r.notes;
  return j;
}

ProbeSample sampleProbe(const ProbeSpec& spec) {
  ProbeSample sample;
  sample.address = spec.placement == Placement::kFixed ? spec.address : Probe(spec).place();
  const uint64_t length = spec.mappedLength();
  const uint64_t n = wholeBlocks(sample.address, length);
  // The same mapping with whole blocks cut off its end: the same address,
  // offset, head and tail. Head and tail alone when they exist, else one
  // block, then one block more.
  const uint64_t edges = length - n * kGiB;
  sample.blocks = edges != 0 ? 0 : 1;
  ProbeSpec s1 = spec;
  s1.placement = Placement::kFixed;
  s1.address = sample.address;
  s1.length = edges + sample.blocks * kGiB;
  ProbeSpec s2 = s1;
  s2.length += kGiB;
  sample.shorter = Probe(s1).run();
  sample.longer = Probe(s2).run();
  return sample;
}

ProbeResult extrapolateProbe(const ProbeSample& sample, const ProbeSpec& spec) {
  const uint64_t length = spec.mappedLength();
  const uint64_t k = wholeBlocks(sample.address, length) - sample.blocks;
  ProbeResult r = sample.longer;
  r.length = length;
  r.sampled = true;
  r.sampledFraction = static_cast<double>(sample.longer.length) / static_cast<double>(length);
  r.touch = extrapolate(sample.shorter.touch, sample.longer.touch, k, spec.cost);
  r.toggle = extrapolate(sample.shorter.toggle, sample.longer.toggle, k, spec.cost);
  r.retouch = extrapolate(sample.shorter.retouch, sample.longer.retouch, k, spec.cost);
  return r;
}

bool isSampled(const ProbeSpec& spec, uint64_t address) {
  return spec.mappedLength() > spec.sampleAbove &&
         wholeBlocks(address, spec.mappedLength()) >= kMinSampledBlocks;
}

ProbeResult runProbe(const ProbeSpec& spec) {
  if (spec.mappedLength() <= spec.sampleAbove) return Probe(spec).run();
  const uint64_t address = spec.placement == Placement::kFixed ? spec.address : Probe(spec).place();
  if (!isSampled(spec, address)) return Probe(spec).run();
  ProbeSpec fixed = spec;
  fixed.placement = Placement::kFixed;
  fixed.address = address;
  return extrapolateProbe(sampleProbe(fixed), fixed);
}

}  // namespace vfiomm::sim
