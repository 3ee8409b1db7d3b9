// Scenario: what `vfiomm` runs against each design (docs/scenario.md) —
// devices with their BARs, processes that open them and map BARs, and
// phases that run threads (access patterns) and events (decode toggles,
// power transitions, resets, mm syscalls, fork, exit) in order.
//
// A scenario is parsed from YAML and checked completely before anything
// runs: bad input throws ScenarioError whose message starts with
// `file:line:column:` (ARCHITECTURE: exceptions only for bugs and bad
// scenario files).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/enum_names.h"
#include "hw/tlb.h"
#include "mm/vm_commit.h"
#include "pci/pci_device.h"
#include "sim/cost_model.h"

namespace vfiomm::sim {

class ScenarioError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Where a definition came from, for messages about it.
struct Mark {
  std::string file;
  int line = 0;    // 1-based
  int column = 0;  // 1-based
};

struct BarDef {
  unsigned index = 0;
  uint64_t size = 0;
  BarKind kind = BarKind::kMem32;
  bool prefetchable = false;
  Mark mark;
};

struct DeviceDef {
  std::string name;
  uint8_t bus = 1;
  uint8_t slot = 0;
  uint8_t function = 0;
  int group = -1;          // -1: a group of its own
  bool vf = false;         // an SR-IOV VF (no_command_memory)
  bool flr = true;         // PCIe FLR advertised
  bool slotReset = false;  // the bus's reset is a slot reset
  bool runtimePm = true;   // sysfs power/control "auto" (vfio-pci's pm_runtime_allow)
  std::vector<BarDef> bars;
  // `model:` (a catalog device) or `config_dump:` + `resource:` (a dump):
  // the whole device, placed at bus/slot/function; bars, flr and vf then
  // come from it (docs/devices.md).
  std::string model;
  std::optional<PciDeviceConfig> hardware;
  Mark mark;

  const BarDef* bar(unsigned index) const;
};

enum class OpenVia { kGroup, kCdev };
inline constexpr EnumName<OpenVia> kOpenViaNames[] = {{OpenVia::kGroup, "group"},
                                                      {OpenVia::kCdev, "cdev"}};

struct OpenDef {
  std::string device;
  OpenVia via = OpenVia::kGroup;
};

struct MappingDef {
  std::string name;
  // `anonymous: SIZE`: private anonymous memory (host RAM a dma-map pins),
  // not a BAR: no device, no bar, no offset; `length` is the size.
  bool anonymous = false;
  std::string device;
  unsigned bar = 0;
  uint64_t offset = 0;
  uint64_t length = 0;              // resolved: the rest of the BAR when not given
  std::optional<uint64_t> address;  // MAP_FIXED at this address
  // Alignment of the placement (QEMU 9.2 style); 0 with no address: let
  // get_unmapped_area choose. Resolved: "natural" is min(length rounded
  // down to a power of two, 1 GiB).
  uint64_t align = 0;
  std::string alignSpec = "natural";  // as written: 4K, 2M, 1G, natural, none
  bool write = true;                  // PROT_READ|PROT_WRITE, else PROT_READ
  std::vector<std::string> madvise;   // hugepage, nohugepage, dontfork, ...
  Mark mark;
};

struct ProcessDef {
  std::string name;
  std::vector<OpenDef> opens;
  std::vector<MappingDef> mappings;
  uint64_t memlock = uint64_t{8} << 20;  // RLIMIT_MEMLOCK, bytes; UINT64_MAX: unlimited
  bool capIpcLock = false;               // CAP_IPC_LOCK
  Mark mark;
};

enum class Pattern { kSequential, kStride, kRandom };

struct AccessProgram {
  Pattern pattern = Pattern::kSequential;
  uint64_t stride = 4096;  // sequential: 4 KiB; stride: as given
  uint64_t count = 0;      // random: accesses per pass per target
  uint64_t seed = 1;
  double writes = 0.0;  // fraction of stores, 0..1
  unsigned passes = 1;
  bool untilEventsDone = false;      // keep making passes until the phase's events are done
  std::vector<std::string> targets;  // mapping names; empty: every mapping of the process
};

enum class EventKind {
  kMemoryDisable,
  kMemoryEnable,
  kD3hot,
  kD0,
  kReset,
  kHotReset,
  kLowPowerEntry,
  kLowPowerExit,
  kMunmap,
  kMprotect,
  kMremap,
  kFork,
  kExit,
  // The IOMMU (dma-mapping.md): a process DMA-maps part of a BAR mapping at
  // an IOVA or unmaps an IOVA range, and a device issues one DMA access.
  kDmaMap,
  kDmaUnmap,
  kDeviceDma,
};

// Which IOMMU interface a dma-map/dma-unmap goes through: the process's
// type1 container (devices opened via group; VFIO_IOMMU_MAP_DMA of the
// vaddr) or its iommufd IOAS (devices opened via cdev; IOMMU_IOAS_MAP of
// the vaddr, which the kernel refuses for a BAR: §3.2).
enum class DmaVia { kContainer, kIommufd };
inline constexpr EnumName<DmaVia> kDmaViaNames[] = {{DmaVia::kContainer, "container"},
                                                    {DmaVia::kIommufd, "iommufd"}};
inline const char* dmaViaName(DmaVia v) { return nameOf(kDmaViaNames, v); }

// How the VMM makes its BAR mappings reachable by device DMA, a dimension of
// the run beside the fault design (docs/scenario.md "DMA path"):
//   vaddr:   the BAR mapping's virtual address is handed to the IOMMU
//            driver (type1 VFIO_IOMMU_MAP_DMA, or IOMMU_IOAS_MAP); type1's
//            IOPTEs outlive every zap (dma-mapping.md §2.6);
//   dma-buf: (6.19+) every device is opened via its cdev and attached to the
//            process's IOAS; each dma-map exports the BAR range as a vfio
//            dma-buf (VFIO_DEVICE_FEATURE_DMA_BUF) and imports it with
//            IOMMU_IOAS_MAP_FILE; every zap trigger revokes it (§4).
enum class DmaPath { kVaddr, kDmaBuf };
inline constexpr EnumName<DmaPath> kDmaPathNames[] = {{DmaPath::kVaddr, "vaddr"},
                                                      {DmaPath::kDmaBuf, "dma-buf"}};
inline const char* dmaPathName(DmaPath p) { return nameOf(kDmaPathNames, p); }
inline std::optional<DmaPath> dmaPathByName(const std::string& name) {
  return valueOf(kDmaPathNames, name);
}
// The 2026 proposals (not merged; dma-mapping.md §4.4) a scenario can turn
// on, each an option of the dma-buf design (DesignOptions) that does
// nothing on a kernel without the vfio dma-buf export:
//   dmabuf-mmap-revoke: a vfio dma-buf fd can be mmapped, and
//                       VFIO_DEVICE_FEATURE_DMA_BUF_REVOKE revokes for good;
//   bar-mmap-dmabuf:    a BAR mmap of the device fd maps a dma-buf exported
//                       for the BAR.
enum class Proposal { kDmabufMmapRevoke, kBarMmapDmabuf };
inline constexpr EnumName<Proposal> kProposalNames[] = {
    {Proposal::kDmabufMmapRevoke, "dmabuf-mmap-revoke"},
    {Proposal::kBarMmapDmabuf, "bar-mmap-dmabuf"}};
inline const char* proposalName(Proposal p) { return nameOf(kProposalNames, p); }

// The kernel a dma-buf run gets when neither the scenario nor the command
// line names one: the first with the vfio dma-buf export and its import.
inline constexpr const char* kDmaBufProfile = "linux-6.19";

// The scenario's `type:` of each event.
inline constexpr EnumName<EventKind> kEventKindNames[] = {
    {EventKind::kMemoryDisable, "memory-disable"},
    {EventKind::kMemoryEnable, "memory-enable"},
    {EventKind::kD3hot, "d3hot"},
    {EventKind::kD0, "d0"},
    {EventKind::kReset, "reset"},
    {EventKind::kHotReset, "hot-reset"},
    {EventKind::kLowPowerEntry, "low-power-entry"},
    {EventKind::kLowPowerExit, "low-power-exit"},
    {EventKind::kMunmap, "munmap"},
    {EventKind::kMprotect, "mprotect"},
    {EventKind::kMremap, "mremap"},
    {EventKind::kFork, "fork"},
    {EventKind::kExit, "exit"},
    {EventKind::kDmaMap, "dma-map"},
    {EventKind::kDmaUnmap, "dma-unmap"},
    {EventKind::kDeviceDma, "dma"},
};
inline const char* eventKindName(EventKind k) { return nameOf(kEventKindNames, k); }
// The events that act on a device through an fd (memory-disable up to
// low-power-exit): they change no process and no mapping.
bool isDeviceEvent(EventKind k);

struct EventDef {
  EventKind kind = EventKind::kMemoryDisable;
  std::string process;                        // who issues it (resolved)
  std::string device;                         // device events
  std::string mapping;                        // munmap, mprotect, mremap
  uint64_t offset = 0;                        // munmap/mprotect: range inside the mapping
  uint64_t length = 0;                        // resolved: the rest of the mapping
  bool protWrite = false;                     // mprotect: read-only unless write
  uint64_t newLength = 0;                     // mremap
  std::optional<uint64_t> newAddress;         // mremap MREMAP_FIXED
  std::string child;                          // fork: the child's name
  std::optional<AccessProgram> childProgram;  // fork: run by the child right away
  // dma-map, dma-unmap, dma: `mapping`/`offset`/`length` above give the
  // part of the BAR mapping to map; a dma-unmap's range is iova + length.
  DmaVia via = DmaVia::kContainer;
  uint64_t iova = 0;
  bool dmaWrite = true;        // dma-map: IOPTEs writable; dma: a write
  unsigned dmaSize = 4;        // dma: bytes, 1, 2, 4 or 8
  uint64_t afterAccesses = 0;  // wait until the phase's threads made this many accesses
  Mark mark;
};

struct ThreadDef {
  std::string name;
  std::string process;
  unsigned cpu = 0;
  AccessProgram program;
  // Device events this thread issues, in order, instead of accesses, at the
  // same time as the phase's own events (a second syscall-issuing thread,
  // e.g. a decode change racing a fork); empty: it runs `program`.
  std::vector<EventDef> events;
  Mark mark;
};

struct PhaseDef {
  std::string name;
  std::vector<ThreadDef> threads;
  std::vector<EventDef> events;
  Mark mark;
};

struct Scenario {
  std::string name;
  std::string description;
  std::string file;
  unsigned cpus = 4;
  std::string profile;  // empty: each design's own
  DmaPath dmaPath = DmaPath::kVaddr;
  std::vector<Proposal> proposals;  // in the file's order, each once
  bool thp = true;
  HostMemory memory;  // ram, swap, overcommit_memory (vfio-uapi.md §10)
  CostModel cost;
  TlbGeometry tlb;  // every simulated CPU's
  std::vector<DeviceDef> devices;
  std::vector<ProcessDef> processes;
  std::vector<PhaseDef> phases;

  const DeviceDef* device(const std::string& name) const;
  const ProcessDef* process(const std::string& name) const;
};

// Bounds on what a scenario may ask for (docs/scenario.md), so that every
// scenario that validates can run and end.
// A scenario file is at most this long (`vfiomm validate /dev/zero` must
// not read until memory runs out).
inline constexpr uint64_t kMaxScenarioBytes = 16ULL << 20;
// A thread makes at most this many accesses in a phase (its passes over its
// targets, or a random pattern's count per pass per target, times passes),
// and `after_accesses` waits for at most this many: ~12 minutes of 4 KiB
// faults at the model's ~170 ns each.
inline constexpr uint64_t kMaxAccesses = (1ULL << 32) - 1;

// Throws ScenarioError.
Scenario parseScenario(const std::string& text, const std::string& fileName);
// Refuses a directory and anything longer than kMaxScenarioBytes (also
// endless inputs such as /dev/zero, which are read only that far).
Scenario loadScenario(const std::string& path);
// The built-in default, identical to scenarios/gpu-passthrough.yaml.
const std::string& defaultScenarioYaml();
Scenario defaultScenario();

// "16M" style sizes: a number with an optional K/M/G/T (or KiB/MiB/GiB/TiB)
// suffix, binary multiples. nullopt when malformed.
std::optional<uint64_t> parseSize(const std::string& text);

}  // namespace vfiomm::sim
