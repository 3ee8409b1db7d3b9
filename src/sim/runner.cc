#include "sim/runner.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <thread>

#include "abi/iommufd.h"
#include "base/assert.h"
#include "base/counter.h"
#include "iommu/iommu.h"
#include "kernel/kernel.h"
#include "mm/mm.h"
#include "mm/vm_flags.h"
#include "pci/bar_region.h"
#include "pci/pci_bus.h"
#include "pci/pci_host.h"
#include "pci/pci_regs.h"
#include "sim/batch_scheduling.h"
#include "sim/vmm.h"
#include "sync/lockdep.h"
#include "sync/sched_hook.h"
#include "trace/tracer.h"
#include "uapi/process.h"
#include "uapi/vfio_arg.h"
#include "vfio/vfio_device.h"
#include "vfio/vfio_group.h"

namespace vfiomm::sim {

namespace {

using namespace vfiomm::uapi;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kConfigOffset = VFIO_PCI_INDEX_TO_OFFSET(VFIO_PCI_CONFIG_REGION_INDEX);

struct MapState {
  bool anonymous = false;  // host RAM (MappingDef::anonymous), not a BAR
  std::string device;
  unsigned bar = 0;
  uint64_t barOffset = 0;  // of the mapping's first byte into the BAR
  uint64_t addr = 0;
  uint64_t len = 0;
  bool mapped = false;
};

struct ProcState {
  std::string name;
  std::shared_ptr<Process> proc;
  std::map<std::string, int> deviceFd;  // scenario device name -> fd
  std::map<std::string, MapState> maps;
  std::vector<std::string> mapOrder;
  std::map<std::string, Thread*> threads;  // scenario thread name -> Thread
  Vmm vmm;                                 // container, iommufd, group and cdev fds
  uint32_t ioas = 0;                       // the IOAS its cdev devices attach to (0: none yet)
  // DmaPath::kDmaBuf: the dma-buf fd behind each IOAS area, by IOVA, with
  // the area's length; closed when the area is unmapped.
  std::map<uint64_t, std::pair<int, uint64_t>> dmaBufs;
  size_t attached = 0;  // vmm.cdevFds()[0, attached) are attached to the IOAS
  bool thread0Used = false;
  bool alive = true;
};

// Trace names: the process, and its first thread, after the scenario's
// process.
// VFIO_DEVICE_PCI_HOT_RESET as QEMU issues it: ask which devices the reset
// reaches (the ENOSPC protocol), then pass the fds of their groups; a cdev
// caller passes none.
long hotReset(ProcState& ps, int devFd) {
  Process& p = *ps.proc;
  HotResetInfoArg probe(0);
  long rc = p.ioctl(devFd, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, probe.get());
  if (rc != 0 && rc != -static_cast<long>(toInt(Errno::kENOSPC))) return rc;
  HotResetInfoArg info(probe->count);
  rc = p.ioctl(devFd, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, info.get());
  if (rc != 0) return rc;
  std::vector<int32_t> fds;
  if (!(info->flags & VFIO_PCI_HOT_RESET_FLAG_DEV_ID)) {
    for (uint32_t i = 0; i < info->count; ++i) {
      auto it = ps.vmm.groupFds().find(info->devices[i].group_id);
      if (it != ps.vmm.groupFds().end() &&
          std::find(fds.begin(), fds.end(), it->second) == fds.end())
        fds.push_back(it->second);
    }
  }
  HotResetArg arg = hotResetArg(fds);
  return p.ioctl(devFd, VFIO_DEVICE_PCI_HOT_RESET, arg.get());
}

void traceNames(const ProcState& ps) {
  if (!trace::enabled()) return;
  trace::Tracer::current().nameProcess(ps.proc->pid(), ps.name);
  trace::Tracer::current().nameThread(ps.proc->pid(), ps.proc->pid(), ps.name);
}

// The runner's own track holds the phases.
constexpr int kRunnerTid = 0;

void tracePhase(uint64_t begin, const std::string& name) {
  if (begin == UINT64_MAX) return;
  trace::Tracer& t = trace::Tracer::current();
  trace::setCurrentTask(kRunnerTid, kRunnerTid);
  trace::TraceEvent e;
  e.kind = trace::EventKind::kPhase;
  e.ts = begin;
  e.dur = t.now() - begin;
  e.detail = t.intern(name);
  e.cpu = trace::kNoCpu;
  t.record(e);
}

struct Target {
  uint64_t addr;
  uint64_t len;
};

struct ThreadStats {
  uint64_t sigbus = 0;
  uint64_t sigsegv = 0;
  uint64_t accesses = 0;
};

// What every thread of a phase shares.
struct PhaseSync {
  std::atomic<uint64_t> accesses{0};
  std::atomic<bool> eventsDone{false};
  std::atomic<unsigned> running{0};
};

// One thread of a phase: a program over its targets, or a list of
// device events.
struct PhaseWork {
  Thread* thread;
  std::vector<Target> targets;
  const AccessProgram* prog;
  ThreadStats stats;
  ProcState* process;                   // whose device events it issues
  const std::vector<EventDef>* events;  // none: it runs prog
  std::vector<std::string> notes;       // of its events, merged at the end
};

constexpr uint64_t kSliceAccesses = 64;

void runProgram(Thread& t, const std::vector<Target>& targets, const AccessProgram& prog,
                PhaseSync* sync, ThreadStats& st) {
  std::mt19937_64 rng(prog.seed);
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  uint64_t value = prog.seed;
  auto access = [&](Thread::Timeslice& slice, uint64_t va) {
    const bool write = prog.writes >= 1.0 || (prog.writes > 0.0 && coin(rng) < prog.writes);
    const AccessResult r = write ? slice.store(va, ++value, 4) : slice.load(va, 4);
    ++st.accesses;
    if (r.sig.signo == SigInfo::kSigbus) ++st.sigbus;
    if (r.sig.signo == SigInfo::kSigsegv) ++st.sigsegv;
    // Published in batches: one shared cache line per access would be
    // most of the cost of a TLB hit.
    if (sync != nullptr && (st.accesses & 63) == 0)
      sync->accesses.fetch_add(64, std::memory_order_relaxed);
  };
  WaitLoopScope waiting;
  for (unsigned pass = 0;; ++pass) {
    const bool more = pass < prog.passes || (prog.untilEventsDone && sync != nullptr &&
                                             !sync->eventsDone.load(std::memory_order_acquire));
    if (!more) break;
    // Past its passes the thread only waits for the events' thread, even
    // when its accesses fault (decode off): under a deterministic scheduler
    // every thread that is not waiting runs first, else the faults' lock
    // points would count as progress and keep the events' thread out.
    if (pass >= prog.passes) waiting.enter();
    // The events' thread must get to run even when this pass only hits the
    // TLB. The first pass waits for nobody: giving way before it would cost
    // a scheduler one more preemption to get this thread going at all.
    if (prog.untilEventsDone && pass != 0) spinPoint("runner.until_events_done");
    for (const Target& tg : targets) {
      // Accesses run in timeslices of kSliceAccesses: threads sharing a
      // simulated CPU still interleave, at a realistic grain.
      if (prog.pattern == Pattern::kRandom) {
        const uint64_t slots = tg.len / 8;
        for (uint64_t i = 0; i < prog.count;) {
          Thread::Timeslice slice(t);
          for (uint64_t k = 0; k < kSliceAccesses && i < prog.count; ++k, ++i)
            access(slice, tg.addr + (rng() % slots) * 8);
        }
      } else {
        for (uint64_t off = 0; off < tg.len;) {
          Thread::Timeslice slice(t);
          for (uint64_t k = 0; k < kSliceAccesses && off < tg.len; ++k, off += prog.stride)
            access(slice, tg.addr + off);
        }
      }
    }
  }
}

// The accesses one pass of `prog` over `targets` makes, times its passes.
uint64_t accessesOf(const std::vector<Target>& targets, const AccessProgram& prog) {
  uint64_t perPass = 0;
  for (const Target& tg : targets)
    perPass +=
        prog.pattern == Pattern::kRandom ? prog.count : (tg.len + prog.stride - 1) / prog.stride;
  return perPass * prog.passes;
}

// What the progress bar counts to; 0: unknown (a thread runs until the
// events are done).
uint64_t expectedAccessesOf(const std::vector<PhaseWork>& work) {
  uint64_t expected = 0;
  for (const PhaseWork& w : work) {
    if (w.prog->untilEventsDone) return 0;
    if (w.events->empty()) expected += accessesOf(w.targets, *w.prog);
  }
  return expected;
}

class Run {
 public:
  Run(const Scenario& sc, DesignKind design, const RunOptions& options)
      : sc_(sc), design_(design), options_(options) {}

  DesignResult run();

 private:
  void boot();
  void setUp();
  void openDevices(ProcState& ps, const ProcessDef& def);
  void mapAll(ProcState& ps, const ProcessDef& def);
  PhaseResult runPhase(const PhaseDef& phase);
  std::vector<PhaseWork> phaseWork(const PhaseDef& phase);
  std::vector<std::thread> startPhaseThreads(std::vector<PhaseWork>& work, PhaseSync& sync,
                                             std::barrier<>& startLine);
  void collectPhase(PhaseResult& pr, const std::vector<PhaseWork>& work,
                    const CounterSnapshot& before);
  void runEvent(const EventDef& e, PhaseResult& pr);
  void runDeviceEvent(ProcState& ps, const EventDef& e, std::vector<std::string>& notes);
  long dmaMap(ProcState& ps, const EventDef& e);
  long dmaUnmap(ProcState& ps, const EventDef& e);
  long ioasUnmap(ProcState& ps, uint64_t iova, uint64_t length);
  long dmaBufMap(ProcState& ps, const EventDef& e);
  long attachIoas(ProcState& ps);
  void deviceDma(const EventDef& e, PhaseResult& pr);
  std::vector<Target> targetsOf(ProcState& ps, const AccessProgram& prog);
  Thread& threadFor(ProcState& ps, const std::string& name, unsigned cpu);
  uint64_t pgtablesNow() const;
  std::string firstDecodeViolation() const;
  void reportProgress(const PhaseDef& phase, uint64_t accesses, uint64_t expected) const;
  TimelineSample sampleOf(const Metrics& phaseSoFar) const;
  void note(std::vector<std::string>& notes, const Mark& m, const std::string& what, long rc);
  long configRw16(ProcState& ps, const std::string& dev, uint32_t offset, uint16_t* v, bool write);

  const Scenario& sc_;
  const DesignKind design_;
  const RunOptions& options_;
  std::unique_ptr<Kernel> kernel_;
  // The runner's thread runs the kernel from boot() to the end of run().
  std::optional<KernelContext::Scope> in_;
  std::map<std::string, VfioDevice*> devices_;
  std::map<std::string, std::unique_ptr<ProcState>> procs_;
  // RunOptions::monitorInvariants: made once the devices exist, gone before
  // the kernel.
  std::optional<InvariantMonitor> monitor_;
  DesignResult result_;
};

void Run::note(std::vector<std::string>& notes, const Mark& m, const std::string& what, long rc) {
  notes.push_back(
      fmt::format("line {}: {} returned {}", m.line, what,
                  rc < 0 ? std::string(errnoName(static_cast<Errno>(static_cast<int>(-rc))))
                         : std::to_string(rc)));
}

// A fresh kernel, bound to this thread, with lockdep's sink, the scheduler
// and the tracer set up before anything runs on it.
void Run::boot() {
  KernelConfig cfg;
  cfg.cpus = sc_.cpus;
  cfg.design = design_;
  cfg.designOptions = options_.designOptions;
  for (Proposal p : sc_.proposals) {
    if (p == Proposal::kDmabufMmapRevoke) cfg.designOptions.proposalDmabufMmapRevoke = true;
    if (p == Proposal::kBarMmapDmabuf) cfg.designOptions.proposalBarMmapDmabuf = true;
  }
  cfg.pageTables = options_.pageTables;
  cfg.profile =
      sc_.profile.empty() && sc_.dmaPath == DmaPath::kDmaBuf ? kDmaBufProfile : sc_.profile;
  cfg.thp = sc_.thp ? ThpEnabled::kAlways : ThpEnabled::kNever;
  cfg.memory = sc_.memory;
  cfg.tlb = sc_.tlb;
  auto k = Kernel::create(cfg);
  if (!k)
    throw ScenarioError(fmt::format("{}: the kernel refuses profile '{}' or {} cpus", sc_.file,
                                    sc_.profile, sc_.cpus));
  kernel_ = std::move(*k);
  in_.emplace(kernel_->context());
  result_.profile = kernel_->profile().name;
  if (options_.quietLockdep)
    lockdep::setReportSink([](const lockdep::Report&) {});
  else
    lockdep::setReportSink([](const lockdep::Report& r) { fmt::print(stderr, "{}\n", r.text); });
  if (options_.schedHook != nullptr) setSchedHook(options_.schedHook);
  if (options_.traceLimit != 0) {
    trace::Tracer& tracer = trace::Tracer::current();
    tracer.start(options_.traceLimit, std::string(designName(design_)), sc_.cpus,
                 options_.traceClock);
    tracer.nameProcess(kRunnerTid, "vfiomm");
    tracer.nameThread(kRunnerTid, kRunnerTid, "runner");
  }
}

void Run::setUp() {
  std::map<uint8_t, PciBus*> buses;
  for (const DeviceDef& d : sc_.devices) {
    if (buses.count(d.bus) == 0) buses[d.bus] = &kernel_->addBus(d.bus, true, d.slotReset);
    PciDeviceConfig c;
    if (d.hardware) {
      c = *d.hardware;
    } else {
      c.vendorId = 0x1af4;
      c.deviceId = static_cast<uint16_t>(0x1100 + devices_.size());
      for (const BarDef& b : d.bars) c.bars[b.index] = BarSpec{b.size, b.kind, b.prefetchable};
      c.pm = PmCapSpec{.noSoftReset = true};
      c.pcie = PcieCapSpec{.flr = d.flr};
      c.noCommandMemory = d.vf;
    }
    c.bus = d.bus;
    c.slot = d.slot;
    c.function = d.function;
    auto dev = kernel_->addVfioDevice(*buses[d.bus], c, ResourcePlacement{}, d.group);
    if (!dev)
      throw ScenarioError(fmt::format("{}:{}:{}: the kernel refuses device '{}': {}", d.mark.file,
                                      d.mark.line, d.mark.column, d.name, errnoName(dev.error())));
    (*dev)->pci().setRuntimePmAllowed(d.runtimePm);
    devices_[d.name] = *dev;
  }
  for (const ProcessDef& p : sc_.processes) {
    bool forked = false;
    for (const PhaseDef& ph : sc_.phases)
      for (const EventDef& e : ph.events)
        forked = forked || (e.kind == EventKind::kFork && e.child == p.name);
    if (forked) continue;
    auto ps = std::make_unique<ProcState>();
    ps->name = p.name;
    ps->proc = Process::spawn(*kernel_, p.name);
    ps->proc->setRlimitMemlock(p.memlock);
    ps->proc->setCapIpcLock(p.capIpcLock);
    traceNames(*ps);
    trace::setCurrentTask(ps->proc->pid(), ps->proc->pid());  // its setup syscalls
    openDevices(*ps, p);
    mapAll(*ps, p);
    procs_[p.name] = std::move(ps);
  }
}

void Run::openDevices(ProcState& ps, const ProcessDef& def) {
  Process& p = *ps.proc;
  for (const OpenDef& o : def.opens) {
    VfioDevice& dev = *devices_.at(o.device);
    // The dma-buf path needs iommufd, which QEMU reaches through the cdevs.
    if (o.via == OpenVia::kGroup && sc_.dmaPath == DmaPath::kVaddr) {
      const VmmResult<int> fd = ps.vmm.openViaGroup(p, *kernel_, dev);
      if (!fd) {
        note(result_.setupNotes, def.mark,
             fd.error().call.rfind("open(", 0) == 0
                 ? fd.error().call
                 : fmt::format("{}({})", fd.error().call, o.device),
             fd.error().rc);
        continue;
      }
      ps.deviceFd[o.device] = *fd;
    } else {
      const VmmResult<int> fd = ps.vmm.openCdev(p, *kernel_, dev);
      if (!fd) {
        note(result_.setupNotes, def.mark, fd.error().call, fd.error().rc);
        continue;
      }
      if (const long rc = ps.vmm.bindIommufd(p, *fd); rc < 0)
        note(result_.setupNotes, def.mark, "VFIO_DEVICE_BIND_IOMMUFD", rc);
      ps.deviceFd[o.device] = *fd;
      // On the dma-buf path every device translates through the IOAS from
      // the start, as a peer's DMA needs.
      if (sc_.dmaPath == DmaPath::kDmaBuf)
        if (const long a = attachIoas(ps); a < 0)
          note(result_.setupNotes, def.mark, "VFIO_DEVICE_ATTACH_IOMMUFD_PT", a);
    }
    // The guest's firmware turns memory decode on; a VMM starts from there.
    setMemoryDecode(p, ps.deviceFd[o.device], true);
  }
}

void Run::mapAll(ProcState& ps, const ProcessDef& def) {
  Process& p = *ps.proc;
  for (const MappingDef& m : def.mappings) {
    ps.mapOrder.push_back(m.name);
    MapState st;
    st.anonymous = m.anonymous;
    st.device = m.device;
    st.bar = m.bar;
    st.barOffset = m.offset;
    st.len = m.length;
    auto fdIt = ps.deviceFd.find(m.device);
    if (!m.anonymous && fdIt == ps.deviceFd.end()) {
      ps.maps[m.name] = st;
      continue;
    }
    const int prot = prot::kRead | (m.write ? prot::kWrite : 0);
    const BarPlacement where{m.address, m.align};
    const VmmResult<uint64_t> addr =
        m.anonymous ? mapAnonymous(p, m.length, prot, where)
                    : mapBar(p, fdIt->second, m.bar, m.offset, m.length, prot, where);
    if (!addr) {
      const bool reserve = addr.error().call == "reserve";
      note(result_.setupNotes, m.mark,
           reserve ? fmt::format("mmap(reserve {})", m.name) : fmt::format("mmap({})", m.name),
           addr.error().rc);
      ps.maps[m.name] = st;
      continue;
    }
    st.addr = *addr;
    st.mapped = true;
    for (const std::string& a : m.madvise) {
      static const std::map<std::string, int> kAdvice = {
          {"hugepage", madv::kHugepage}, {"nohugepage", madv::kNoHugepage},
          {"dontfork", madv::kDontFork}, {"dofork", madv::kDoFork},
          {"random", madv::kRandom},     {"sequential", madv::kSequential},
          {"willneed", madv::kWillNeed}, {"dontneed", madv::kDontNeed}};
      const long rc = p.madvise(st.addr, st.len, kAdvice.at(a));
      if (rc < 0) note(result_.setupNotes, m.mark, fmt::format("madvise({}, {})", m.name, a), rc);
    }
    ps.maps[m.name] = st;
  }
}

long Run::configRw16(ProcState& ps, const std::string& dev, uint32_t offset, uint16_t* v,
                     bool write) {
  auto it = ps.deviceFd.find(dev);
  if (it == ps.deviceFd.end()) return -static_cast<long>(toInt(Errno::kEBADF));
  return write ? ps.proc->pwrite(it->second, v, 2, kConfigOffset + offset)
               : ps.proc->pread(it->second, v, 2, kConfigOffset + offset);
}

std::vector<Target> Run::targetsOf(ProcState& ps, const AccessProgram& prog) {
  std::vector<Target> out;
  const std::vector<std::string>& names = prog.targets.empty() ? ps.mapOrder : prog.targets;
  for (const std::string& n : names) {
    const MapState& m = ps.maps.at(n);
    if (m.mapped) out.push_back(Target{m.addr, m.len});
  }
  return out;
}

Thread& Run::threadFor(ProcState& ps, const std::string& name, unsigned cpu) {
  auto it = ps.threads.find(name);
  if (it != ps.threads.end() && it->second->cpu() == cpu) return *it->second;
  Thread* t = nullptr;
  if (!ps.thread0Used && cpu == ps.proc->thread(0).cpu()) {
    ps.thread0Used = true;
    t = &ps.proc->thread(0);
  } else {
    t = ps.proc->addThread(cpu);
  }
  ps.threads[name] = t;
  if (trace::enabled()) trace::Tracer::current().nameThread(t->task().pid, t->task().tid, name);
  return *t;
}

uint64_t Run::pgtablesNow() const {
  uint64_t sum = 0;
  for (const auto& [n, ps] : procs_)
    if (ps->alive) sum += ps->proc->mm().pageTable().pgtablesBytes();
  return sum;
}

// The events that act on a device through the process's fd: they change no
// process and no mapping, so a phase's thread may issue them too, at the
// same time as the phase's own events (ThreadDef::events).
void Run::runDeviceEvent(ProcState& ps, const EventDef& e, std::vector<std::string>& notes) {
  Process& p = *ps.proc;
  const std::string what = eventKindName(e.kind);
  auto devFd = [&]() {
    auto it = ps.deviceFd.find(e.device);
    return it == ps.deviceFd.end() ? -1 : it->second;
  };
  long rc = 0;
  switch (e.kind) {
    case EventKind::kMemoryDisable:
    case EventKind::kMemoryEnable: {
      const int fd = devFd();
      rc = fd < 0 ? -static_cast<long>(toInt(Errno::kEBADF))
                  : setMemoryDecode(*ps.proc, fd, e.kind == EventKind::kMemoryEnable);
      if (rc != 2) note(notes, e.mark, what, rc);
      return;
    }
    case EventKind::kD3hot:
    case EventKind::kD0: {
      // Where a VMM finds PMCSR by walking the capability list; a device
      // without a PM capability has no D-states to ask for.
      const std::optional<uint16_t> pm = devices_.at(e.device)->pdev().pmCapOffset();
      if (!pm) {
        note(notes, e.mark, what, -static_cast<long>(toInt(Errno::kEINVAL)));
        return;
      }
      const uint32_t pmcsr = *pm + kPciPmCtrl;
      uint16_t v = 0;
      rc = configRw16(ps, e.device, pmcsr, &v, false);
      if (rc == 2) {
        v = static_cast<uint16_t>((v & ~kPciPmCtrlStateMask) |
                                  (e.kind == EventKind::kD3hot ? 3 : 0));
        rc = configRw16(ps, e.device, pmcsr, &v, true);
      }
      if (rc != 2) note(notes, e.mark, what, rc);
      return;
    }
    case EventKind::kReset: rc = p.ioctl(devFd(), VFIO_DEVICE_RESET, nullptr); break;
    case EventKind::kHotReset: rc = hotReset(ps, devFd()); break;
    case EventKind::kLowPowerEntry:
    case EventKind::kLowPowerExit: {
      vfio_device_feature f;
      f.argsz = sizeof(f);
      f.flags = VFIO_DEVICE_FEATURE_SET |
                (e.kind == EventKind::kLowPowerEntry ? VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY
                                                     : VFIO_DEVICE_FEATURE_LOW_POWER_EXIT);
      rc = p.ioctl(devFd(), VFIO_DEVICE_FEATURE, &f);
      break;
    }
    case EventKind::kMunmap:
    case EventKind::kMprotect:
    case EventKind::kMremap:
    case EventKind::kFork:
    case EventKind::kExit:
    case EventKind::kDmaMap:
    case EventKind::kDmaUnmap:
    case EventKind::kDeviceDma: VFIOMM_ASSERT_MSG(false, "not a device event");
  }
  if (rc < 0) note(notes, e.mark, what, rc);
}

// The first access the BARs recorded with decode off, in the order of the
// devices' names (one CPU ran at a time under a scheduler, so a region's
// list is in the order of the run).
std::string Run::firstDecodeViolation() const {
  for (const auto& [name, dev] : devices_) {
    for (unsigned r = 0; r <= kPciRomResource; ++r) {
      const BarRegion* region = kernel_->pciHost().barRegion(dev->pdev(), r);
      if (region == nullptr) continue;
      const std::vector<BarRegion::DecodeViolation> v = region->decodeViolations();
      if (v.empty()) continue;
      return fmt::format("first: a {} at {:#x} ({} resource {}) from CPU {}",
                         v.front().isWrite ? "store" : "load", v.front().addr.value(), name, r,
                         v.front().cpu);
    }
  }
  return {};
}

// The IOAS of a process's iommufd, made and attached to by every device it
// opened via cdev at its first dma event (as QEMU's iommufd backend does
// when it realizes the devices); until then they translate nothing.
long Run::attachIoas(ProcState& ps) {
  Process& p = *ps.proc;
  if (ps.ioas == 0) {
    iommu_ioas_alloc a{};
    a.size = sizeof(a);
    if (const long rc = p.ioctl(ps.vmm.iommufd(), IOMMU_IOAS_ALLOC, &a); rc < 0) return rc;
    ps.ioas = a.out_ioas_id;
  }
  for (; ps.attached < ps.vmm.cdevFds().size(); ++ps.attached) {
    vfio_device_attach_iommufd_pt at{};
    at.argsz = sizeof(at);
    at.pt_id = ps.ioas;
    if (const long rc = p.ioctl(ps.vmm.cdevFds()[ps.attached], VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at);
        rc < 0)
      return rc;
  }
  return 0;
}

// QEMU's vfio_container_dma_map() of a BAR's RAM-device region: the vaddr
// of the BAR mapping, at a fixed IOVA.
long Run::dmaMap(ProcState& ps, const EventDef& e) {
  Process& p = *ps.proc;
  const MapState& mapping = ps.maps.at(e.mapping);
  // Host RAM has no BAR to export: on the dma-buf path QEMU maps its vaddr
  // into the same IOAS.
  if (sc_.dmaPath == DmaPath::kDmaBuf && !mapping.anonymous) return dmaBufMap(ps, e);
  const uint64_t vaddr = mapping.addr + e.offset;
  if (e.via == DmaVia::kContainer && sc_.dmaPath == DmaPath::kVaddr) {
    vfio_iommu_type1_dma_map m{};
    m.argsz = sizeof(m);
    m.flags = VFIO_DMA_MAP_FLAG_READ | (e.dmaWrite ? VFIO_DMA_MAP_FLAG_WRITE : 0);
    m.vaddr = vaddr;
    m.iova = e.iova;
    m.size = e.length;
    return p.ioctl(ps.vmm.container(), VFIO_IOMMU_MAP_DMA, &m);
  }
  if (const long rc = attachIoas(ps); rc < 0) return rc;
  iommu_ioas_map m{};
  m.size = sizeof(m);
  m.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
            (e.dmaWrite ? IOMMU_IOAS_MAP_WRITEABLE : 0);
  m.ioas_id = ps.ioas;
  m.user_va = vaddr;
  m.length = e.length;
  m.iova = e.iova;
  return p.ioctl(ps.vmm.iommufd(), IOMMU_IOAS_MAP, &m);
}

// QEMU with iommufd on 6.19+ (its dma-buf support for p2p): the BAR range
// behind the mapping exported as a dma-buf and imported at the IOVA. The
// buffer fd stays open while the area exists (the import holds an
// attachment; closing it early would change nothing the model observes).
long Run::dmaBufMap(ProcState& ps, const EventDef& e) {
  Process& p = *ps.proc;
  const MapState& m = ps.maps.at(e.mapping);
  const auto devFd = ps.deviceFd.find(m.device);
  if (devFd == ps.deviceFd.end()) return -static_cast<long>(toInt(Errno::kEBADF));
  constexpr uint32_t kOCloexec = 02000000;
  DmaBufArg req(m.bar, m.barOffset + e.offset, e.length, O_RDWR | kOCloexec);
  const long buf = p.ioctl(devFd->second, VFIO_DEVICE_FEATURE, req.get());
  if (buf < 0) return buf;
  iommu_ioas_map_file mf{};
  mf.size = sizeof(mf);
  mf.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
             (e.dmaWrite ? IOMMU_IOAS_MAP_WRITEABLE : 0);
  mf.ioas_id = ps.ioas;
  mf.fd = static_cast<int32_t>(buf);
  mf.length = e.length;
  mf.iova = e.iova;
  const long rc = p.ioctl(ps.vmm.iommufd(), IOMMU_IOAS_MAP_FILE, &mf);
  if (rc < 0) {
    p.close(static_cast<int>(buf));
    return rc;
  }
  ps.dmaBufs[e.iova] = {static_cast<int>(buf), e.length};
  return 0;
}

long Run::ioasUnmap(ProcState& ps, uint64_t iova, uint64_t length) {
  iommu_ioas_unmap u{};
  u.size = sizeof(u);
  u.ioas_id = ps.ioas;
  u.iova = iova;
  u.length = length;
  return ps.proc->ioctl(ps.vmm.iommufd(), IOMMU_IOAS_UNMAP, &u);
}

long Run::dmaUnmap(ProcState& ps, const EventDef& e) {
  Process& p = *ps.proc;
  if (sc_.dmaPath == DmaPath::kDmaBuf) {
    const long rc = ioasUnmap(ps, e.iova, e.length);
    if (rc == 0) {
      for (auto it = ps.dmaBufs.lower_bound(e.iova);
           it != ps.dmaBufs.end() && it->first - e.iova < e.length;) {
        p.close(it->second.first);
        it = ps.dmaBufs.erase(it);
      }
    }
    return rc;
  }
  if (e.via == DmaVia::kContainer) {
    vfio_iommu_type1_dma_unmap u{};
    u.argsz = sizeof(u);
    u.iova = e.iova;
    u.size = e.length;
    return p.ioctl(ps.vmm.container(), VFIO_IOMMU_UNMAP_DMA, &u);
  }
  if (const long rc = attachIoas(ps); rc < 0) return rc;
  return ioasUnmap(ps, e.iova, e.length);
}

// A device's DMA is no syscall: the IOMMU translates it through the domain
// the device is attached to. A blocked one (a DMAR fault) is noted as the
// -EIO the device sees; one that reaches a BAR with decode off is counted
// by the IOMMU (invariant 7).
void Run::deviceDma(const EventDef& e, PhaseResult& pr) {
  const PciDevice& dev = devices_.at(e.device)->pdev();
  const Status st =
      e.dmaWrite ? kernel_->iommu().dmaWrite(dev, e.iova, e.dmaSize, 0)
                 : Status(kernel_->iommu().dmaRead(dev, e.iova, e.dmaSize).map([](uint64_t) {}));
  if (!st)
    note(pr.notes, e.mark,
         fmt::format("DMA {} by {} at IOVA {:#x}", e.dmaWrite ? "write" : "read", e.device, e.iova),
         -static_cast<long>(toInt(st.error())));
}

void Run::runEvent(const EventDef& e, PhaseResult& pr) {
  if (e.kind == EventKind::kDeviceDma) {
    deviceDma(e, pr);
    return;
  }
  ProcState& ps = *procs_.at(e.process);
  Process& p = *ps.proc;
  trace::setCurrentTask(p.pid(), p.pid());  // events are syscalls of the first thread
  const std::string what = eventKindName(e.kind);
  long rc = 0;
  switch (e.kind) {
    case EventKind::kMemoryDisable:
    case EventKind::kMemoryEnable:
    case EventKind::kD3hot:
    case EventKind::kD0:
    case EventKind::kReset:
    case EventKind::kHotReset:
    case EventKind::kLowPowerEntry:
    case EventKind::kLowPowerExit: runDeviceEvent(ps, e, pr.notes); return;
    case EventKind::kMunmap: {
      MapState& m = ps.maps.at(e.mapping);
      rc = p.munmap(m.addr + e.offset, e.length);
      if (rc == 0 && e.offset == 0 && e.length == m.len) m.mapped = false;
      break;
    }
    case EventKind::kMprotect: {
      MapState& m = ps.maps.at(e.mapping);
      rc = p.mprotect(m.addr + e.offset, e.length, prot::kRead | (e.protWrite ? prot::kWrite : 0));
      break;
    }
    case EventKind::kMremap: {
      MapState& m = ps.maps.at(e.mapping);
      const int flags = mremap::kMayMove | (e.newAddress ? mremap::kFixed : 0);
      rc = p.mremap(m.addr, m.len, e.newLength, flags, e.newAddress.value_or(0));
      if (rc >= 0) {
        m.addr = static_cast<uint64_t>(rc);
        m.len = e.newLength;
        rc = 0;
      }
      break;
    }
    case EventKind::kFork: {
      long err = 0;
      auto child = p.fork(&err);
      if (!child) {
        rc = err;
        break;
      }
      auto cs = std::make_unique<ProcState>();
      cs->name = e.child;
      cs->proc = child;
      cs->deviceFd = ps.deviceFd;
      // The child inherits the container, iommufd and dma-buf fds: its
      // dma events act on the parent's IOVA space (as the parser assumes).
      cs->vmm = ps.vmm;
      cs->ioas = ps.ioas;
      cs->attached = ps.attached;
      cs->dmaBufs = ps.dmaBufs;
      cs->maps = ps.maps;
      cs->mapOrder = ps.mapOrder;
      if (e.childProgram) {
        ThreadStats st;
        runProgram(child->thread(0), targetsOf(*cs, *e.childProgram), *e.childProgram, nullptr, st);
        cs->thread0Used = true;
        pr.m.sigbus += st.sigbus;
        pr.m.sigsegv += st.sigsegv;
        pr.m.accesses += st.accesses;
      }
      traceNames(*cs);
      procs_[e.child] = std::move(cs);
      return;
    }
    case EventKind::kExit:
      p.exit();
      ps.alive = false;
      return;
    case EventKind::kDmaMap: rc = dmaMap(ps, e); break;
    case EventKind::kDmaUnmap: rc = dmaUnmap(ps, e); break;
    case EventKind::kDeviceDma: VFIOMM_ASSERT_MSG(false, "handled above");
  }
  if (rc < 0) note(pr.notes, e.mark, what, rc);
}

// A timeline sample of the running phase: the phases before it are in
// result_.total already.
TimelineSample Run::sampleOf(const Metrics& phaseSoFar) const {
  const Metrics& done = result_.total;
  TimelineSample s;
  s.phase = result_.phases.size();
  s.faults = done.faults + phaseSoFar.faults;
  s.zaps = done.zaps + phaseSoFar.zaps;
  s.zappedEntries = done.zappedEntries + phaseSoFar.zappedEntries;
  s.shootdowns = done.shootdowns + phaseSoFar.shootdowns;
  s.modeledNs = done.modeledNs + sc_.cost.modeledNs(phaseSoFar.costInputs());
  return s;
}

void Run::reportProgress(const PhaseDef& phase, uint64_t accesses, uint64_t expected) const {
  if (!options_.onProgress) return;
  // An open-ended phase counts as half done while it runs.
  const double inPhase =
      expected == 0 ? 0.5
                    : std::min(1.0, static_cast<double>(accesses) / static_cast<double>(expected));
  const double phases = static_cast<double>(std::max<size_t>(sc_.phases.size(), 1));
  options_.onProgress((static_cast<double>(result_.phases.size()) + inPhase) / phases, phase.name);
}

// Threads and their targets are set up before anyone starts, so the
// events of the phase (which may move mappings) never race with this.
std::vector<PhaseWork> Run::phaseWork(const PhaseDef& phase) {
  std::vector<PhaseWork> work;
  for (const ThreadDef& td : phase.threads) {
    ProcState& ps = *procs_.at(td.process);
    Thread& t = threadFor(ps, td.name, td.cpu);
    std::vector<Target> targets =
        td.events.empty() ? targetsOf(ps, td.program) : std::vector<Target>{};
    work.push_back(PhaseWork{&t, std::move(targets), &td.program, {}, &ps, &td.events, {}});
  }
  return work;
}

// Each thread waits at `startLine`, then runs its program or its events.
std::vector<std::thread> Run::startPhaseThreads(std::vector<PhaseWork>& work, PhaseSync& sync,
                                                std::barrier<>& startLine) {
  std::vector<std::thread> threads;
  threads.reserve(work.size());
  SchedThreads* const sched = options_.scheduler;
  KernelContext& context = kernel_->context();
  for (PhaseWork& w : work) {
    const unsigned id = sched != nullptr ? sched->spawn() : 0;
    threads.emplace_back([this, &w, &sync, &startLine, &context, sched, id] {
      const KernelContext::Scope in(context);
      // A deterministic scheduler runs one thread at a time: no race to
      // tilt, and its hand-overs want the woken thread to run at once.
      std::optional<BatchScheduling> batch;
      if (sched == nullptr) batch.emplace();
      trace::setCurrentTask(w.thread->task().pid, w.thread->task().tid);
      startLine.arrive_and_wait();
      if (sched != nullptr) sched->attach(id);
      if (w.events->empty()) {
        runProgram(*w.thread, w.targets, *w.prog, &sync, w.stats);
      } else {
        for (const EventDef& e : *w.events) runDeviceEvent(*w.process, e, w.notes);
      }
      sync.running.fetch_sub(1, std::memory_order_acq_rel);
      if (sched != nullptr) sched->detach();
    });
  }
  return threads;
}

// The model's counters since `before`; a fork event's child program
// counted its accesses and signals into pr.m already, the threads into
// their stats.
void Run::collectPhase(PhaseResult& pr, const std::vector<PhaseWork>& work,
                       const CounterSnapshot& before) {
  const Metrics byEvents = pr.m;
  pr.m = countedSince(before);
  Metrics& m = pr.m;
  m.sigbus = byEvents.sigbus;
  m.sigsegv = byEvents.sigsegv;
  m.accesses = byEvents.accesses;
  for (const PhaseWork& w : work) {
    m.sigbus += w.stats.sigbus;
    m.sigsegv += w.stats.sigsegv;
    m.accesses += w.stats.accesses;
    pr.notes.insert(pr.notes.end(), w.notes.begin(), w.notes.end());
  }
}

PhaseResult Run::runPhase(const PhaseDef& phase) {
  PhaseResult pr;
  pr.name = phase.name;
  const CounterSnapshot before = CounterSet::current().snapshot();
  const size_t lockdepBefore = lockdep::reportCount();
  const uint64_t violationsBefore = kernel_->pciHost().decodeViolationCount();
  const auto start = Clock::now();
  PhaseTimeline timeline;
  timeline.offer(sampleOf(Metrics{}));

  std::vector<PhaseWork> work = phaseWork(phase);
  const uint64_t expectedAccesses = expectedAccessesOf(work);
  PhaseSync sync;
  sync.running.store(static_cast<unsigned>(work.size()));
  std::barrier<> start_line(static_cast<std::ptrdiff_t>(work.size() + 1));
  std::vector<std::thread> threads = startPhaseThreads(work, sync, start_line);
  start_line.arrive_and_wait();
  uint64_t peak = pgtablesNow();
  for (const EventDef& e : phase.events) {
    while (e.afterAccesses != 0 &&
           sync.accesses.load(std::memory_order_relaxed) < e.afterAccesses &&
           sync.running.load(std::memory_order_acquire) != 0) {
      spinPoint("runner.wait");
      std::this_thread::yield();
    }
    runEvent(e, pr);
    peak = std::max(peak, pgtablesNow());
    timeline.offer(sampleOf(countedSince(before)));
  }
  sync.eventsDone.store(true, std::memory_order_release);
  // Under a deterministic scheduler only one thread runs: wait for the
  // count to move rather than poll it.
  for (unsigned n = 0;
       options_.scheduler != nullptr && (n = sync.running.load(std::memory_order_acquire)) != 0;)
    schedHook().wait(&sync, sync.running, n);
  while (sync.running.load(std::memory_order_acquire) != 0) {
    peak = std::max(peak, pgtablesNow());
    reportProgress(phase, sync.accesses.load(std::memory_order_relaxed), expectedAccesses);
    timeline.offer(sampleOf(countedSince(before)));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  for (std::thread& t : threads) t.join();
  peak = std::max(peak, pgtablesNow());

  const auto wall = Clock::now() - start;
  collectPhase(pr, work, before);
  Metrics& m = pr.m;
  m.pgtablesPeak = peak;
  m.lockdepReports = lockdep::reportCount() - lockdepBefore;
  m.violations = kernel_->pciHost().decodeViolationCount() - violationsBefore;
  m.modeledNs = sc_.cost.modeledNs(m.costInputs());
  m.dmaModeledNs = sc_.cost.dmaNs(m.costInputs());
  const std::vector<TimelineSample> samples = timeline.finish(sampleOf(m));
  result_.timeline.insert(result_.timeline.end(), samples.begin(), samples.end());
  m.wallNs =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(wall).count());
  return pr;
}

DesignResult Run::run() {
  result_.design = design_;
  result_.dmaPath = sc_.dmaPath;
  boot();
  setUp();
  if (options_.monitorInvariants) {
    monitor_.emplace(*kernel_);
    if (options_.whoRuns) monitor_->setWho(options_.whoRuns);
  }
  for (const PhaseDef& ph : sc_.phases) {
    const uint64_t traced = trace::enabled() ? trace::Tracer::current().now() : UINT64_MAX;
    result_.phases.push_back(runPhase(ph));
    tracePhase(traced, ph.name);
    result_.total.add(result_.phases.back().m);
  }
  if (monitor_ && result_.total.violations != 0)
    result_.firstDecodeViolation = firstDecodeViolation();
  // Invariant 7 is type1's known hazard on the vaddr path (its IOPTEs
  // outlive the zap, dma-mapping.md §2.6); the dma-buf path must keep it.
  result_.failed = (!designTraits(design_).expectsHoles &&
                    (result_.total.violations != 0 || result_.total.lockdepReports != 0)) ||
                   (sc_.dmaPath == DmaPath::kDmaBuf && result_.total.dmaViolations != 0);
  // Everyone exits; then the kernel goes.
  std::vector<std::shared_ptr<Process>> processes;
  for (auto& [n, ps] : procs_) processes.push_back(ps->proc);
  if (monitor_) monitor_->checkEntries(processes);
  for (auto& [n, ps] : procs_) ps->proc->exit();
  procs_.clear();
  if (monitor_) {
    monitor_->checkLeaks(processes);
    result_.invariants = monitor_->counts();
    result_.invariantFindings = monitor_->findings();
    monitor_.reset();
  }
  processes.clear();
  if (options_.beforeTeardown) options_.beforeTeardown(*kernel_);
  const std::vector<lockdep::Report> reports = lockdep::reports();
  if (!reports.empty()) result_.firstLockdepReport = reports.front().text;
  if (options_.traceLimit != 0)
    result_.trace = std::make_shared<trace::TraceLog>(trace::Tracer::current().stop());
  in_.reset();
  kernel_.reset();
  return result_;
}

}  // namespace

Metrics countedSince(const CounterSnapshot& before) {
  const CounterSnapshot d = CounterSet::current().snapshot().since(before);
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
  m.dmaLookups = d.get("vfio.type1.vaddr_get_pfns");
  m.dmaFaults = d.get("vfio.type1.fixup_user_fault");
  m.iommuMaps = d.get("iommu.map.calls");
  m.iopte4k = d.get("iommu.iopte.map.4k");
  m.iopte2m = d.get("iommu.iopte.map.2m");
  m.iopte1g = d.get("iommu.iopte.map.1g");
  m.iovaToPhys = d.get("iommu.iova_to_phys");
  m.dmaAccesses = d.get("iommu.dma.access");
  m.dmarFaults = d.get("iommu.dma.dmar_fault");
  m.dmaViolations = d.get("iommu.dma.decode_violation");
  return m;
}

DesignResult runScenario(const Scenario& scenario, DesignKind design, const RunOptions& options) {
  return Run(scenario, design, options).run();
}

}  // namespace vfiomm::sim
