#include "sim/scenario.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>

#include "base/byte_format.h"
#include "base/byte_units.h"
#include "base/page_geometry.h"
#include "kernel/kernel_profile.h"
#include "pci/config_dump.h"
#include "pci/device_catalog.h"
#include "pci/pci_allocator.h"

namespace vfiomm::sim {

namespace {

constexpr uint64_t kPage = 4096;
// vm.mmap_min_addr's default: no mapping goes below it.
constexpr uint64_t kMmapMinAddr = 0x10000;
// The most address space one process's mappings can take.
constexpr uint64_t kUserSpan = kTaskSize - kMmapMinAddr;

// a * b and a + b, saturating at UINT64_MAX (estimates compared to bounds).
uint64_t satMul(uint64_t a, uint64_t b) {
  uint64_t r = 0;
  return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}
uint64_t satAdd(uint64_t a, uint64_t b) {
  uint64_t r = 0;
  return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

// Where the text first stops being what YAML 1.2 (§5.1) reads: UTF-8 of
// printable characters (tab, line breaks, and no other C0 or C1 control,
// DEL, surrogate or non-character). Every string of a scenario ends up in
// the JSON results, which must be UTF-8 too.
struct TextFault {
  size_t offset = 0;
  std::string what;
};

std::optional<TextFault> firstBadCharacter(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
        return TextFault{
            i, fmt::format("control character 0x{:02x} (YAML allows tab and line breaks only)", c)};
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    uint32_t least = 0;
    if ((c & 0xe0) == 0xc0) {
      len = 2, cp = c & 0x1fU, least = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, cp = c & 0x0fU, least = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, cp = c & 0x07U, least = 0x10000;
    } else {
      return TextFault{i, fmt::format("byte 0x{:02x} is not UTF-8 (a scenario is UTF-8 text)", c)};
    }
    for (size_t k = 1; k < len; ++k) {
      if (i + k >= text.size() || (static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80)
        return TextFault{
            i,
            fmt::format(
                "byte 0x{:02x} starts a truncated UTF-8 sequence (a scenario is UTF-8 text)", c)};
      cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3fU);
    }
    if (cp < least || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return TextFault{
          i, fmt::format("byte 0x{:02x} starts an invalid UTF-8 sequence (overlong, surrogate or "
                         "beyond U+10FFFF; a scenario is UTF-8 text)",
                         c)};
    if ((cp <= 0x9f && cp != 0x85) || cp == 0xfffe || cp == 0xffff)
      return TextFault{i, fmt::format("character U+{:04X} is not allowed in YAML", cp)};
    i += len;
  }
  return std::nullopt;
}

// 1-based line and column (in characters) of a byte offset into valid UTF-8.
Mark markAt(const std::string& file, std::string_view text, size_t offset) {
  Mark m{file, 1, 1};
  for (size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++m.line;
      m.column = 1;
    } else if ((static_cast<unsigned char>(text[i]) & 0xc0) != 0x80) {
      ++m.column;
    }
  }
  return m;
}

uint64_t pow2Floor(uint64_t v) {
  uint64_t p = 1;
  while (p <= v / 2) p <<= 1;
  return p;
}

class Parser {
 public:
  explicit Parser(std::string file) : file_(std::move(file)) {}

  Scenario parse(const std::string& text);

 private:
  Mark markOf(const YAML::Node& n) const {
    const YAML::Mark m = n.Mark();
    return Mark{file_, m.line + 1, m.column + 1};
  }
  [[noreturn]] void fail(const Mark& m, const std::string& msg) const {
    throw ScenarioError(fmt::format("{}:{}:{}: {}", m.file, m.line, m.column, msg));
  }
  [[noreturn]] void fail(const YAML::Node& n, const std::string& msg) const {
    fail(markOf(n), msg);
  }

  void requireMap(const YAML::Node& n, const std::string& what) const {
    if (!n.IsMap()) fail(n, fmt::format("{} must be a mapping", what));
    checkMapKeys(n, what);
  }
  // Keys are plain strings, each given once: yaml-cpp keeps every pair of
  // a map but n[key] finds the first, so a repeated key would silently lose
  // its later value.
  void checkMapKeys(const YAML::Node& n, const std::string& what) const {
    std::map<std::string, Mark> seen;
    for (auto it = n.begin(); it != n.end(); ++it) {
      if (!it->first.IsScalar())
        fail(it->first, fmt::format("a key of {} must be a plain string", what));
      const auto [first, fresh] = seen.emplace(it->first.Scalar(), markOf(it->first));
      if (!fresh)
        fail(it->first,
             fmt::format("key '{}' is given twice in {} (first at line {}, column {})",
                         it->first.Scalar(), what, first->second.line, first->second.column));
    }
  }
  void requireSeq(const YAML::Node& n, const std::string& what) const {
    if (!n.IsSequence()) fail(n, fmt::format("{} must be a list", what));
  }
  // Unknown keys are refused: a typo must not silently change a run.
  void checkKeys(const YAML::Node& n, std::initializer_list<const char*> allowed,
                 const std::string& what) const {
    for (auto it = n.begin(); it != n.end(); ++it) {
      const std::string key = it->first.as<std::string>();
      bool found = false;
      for (const char* a : allowed) found = found || key == a;
      if (!found) {
        std::string list;
        for (const char* a : allowed) list += fmt::format("{}{}", list.empty() ? "" : ", ", a);
        fail(it->first,
             fmt::format("unknown key '{}' in {} (expected one of: {})", key, what, list));
      }
    }
  }
  std::string str(const YAML::Node& n, const std::string& what) const {
    if (!n.IsScalar()) fail(n, fmt::format("{} must be a string", what));
    return n.Scalar();
  }
  // The name of something other parts of the scenario refer to.
  std::string name(const YAML::Node& n, const std::string& what) const {
    std::string s = str(n, what);
    if (s.empty()) fail(n, fmt::format("{} must not be empty", what));
    return s;
  }
  uint64_t uint(const YAML::Node& n, const std::string& what) const {
    if (!n.IsScalar()) fail(n, fmt::format("{} must be a non-negative integer", what));
    const std::string& s = n.Scalar();
    char* end = nullptr;
    if (s.empty() || s[0] == '-' || s[0] == '+')
      fail(n, fmt::format("{} must be a non-negative integer, not '{}'", what, s));
    errno = 0;
    const unsigned long long v = std::strtoull(s.c_str(), &end, 0);
    if (errno != 0 || end == nullptr || *end != '\0')
      fail(n, fmt::format("{} must be a non-negative integer, not '{}'", what, s));
    return v;
  }
  uint64_t size(const YAML::Node& n, const std::string& what) const {
    if (!n.IsScalar()) fail(n, fmt::format("{} must be a size (e.g. 4K, 2M, 32G)", what));
    auto v = parseSize(n.Scalar());
    if (!v)
      fail(n, fmt::format("{} must be a size (e.g. 4K, 2M, 32G), not '{}'", what, n.Scalar()));
    return *v;
  }
  bool boolean(const YAML::Node& n, const std::string& what) const {
    if (!n.IsScalar()) fail(n, fmt::format("{} must be true or false", what));
    const std::string& s = n.Scalar();
    if (s == "true" || s == "yes" || s == "on") return true;
    if (s == "false" || s == "no" || s == "off") return false;
    fail(n, fmt::format("{} must be true or false, not '{}'", what, s));
  }
  double number(const YAML::Node& n, const std::string& what) const {
    if (!n.IsScalar()) fail(n, fmt::format("{} must be a number", what));
    const std::string& s = n.Scalar();
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (s.empty() || end == nullptr || *end != '\0' || v < 0)
      fail(n, fmt::format("{} must be a non-negative number, not '{}'", what, s));
    return v;
  }
  template <typename T>
  T bounded(const YAML::Node& n, const std::string& what, uint64_t max) const {
    const uint64_t v = uint(n, what);
    if (v > max) fail(n, fmt::format("{} must be at most {}", what, max));
    return static_cast<T>(v);
  }

  void parseCost(const YAML::Node& n, CostModel& cost) const;
  void parseTlb(const YAML::Node& n, TlbGeometry& tlb) const;
  std::vector<Proposal> parseProposals(const YAML::Node& n) const;
  TlbArrayGeometry parseTlbArray(const YAML::Node& n, const std::string& what) const;
  DeviceDef parseDevice(const YAML::Node& n, size_t i) const;
  void parseHardware(const YAML::Node& n, DeviceDef& d) const;
  ProcessDef parseProcess(const YAML::Node& n, const Scenario& sc) const;
  void parseBarRange(const YAML::Node& n, const Scenario& sc, const ProcessDef& p,
                     MappingDef& m) const;
  void parseAnonymous(const YAML::Node& n, MappingDef& m) const;
  void parsePlacement(const YAML::Node& n, MappingDef& m) const;
  MappingDef parseMapping(const YAML::Node& n, const Scenario& sc, const ProcessDef& p) const;
  AccessProgram parseProgram(const YAML::Node& n, bool allowThreadKeys) const;
  void checkTargets(const YAML::Node& n, const AccessProgram& prog, const ProcessDef& p) const;
  PhaseDef parsePhase(const YAML::Node& n, Scenario& sc, std::set<std::string>& live);
  void parseThreadEvents(const YAML::Node& t, ThreadDef& td, Scenario& sc,
                         std::set<std::string>& live, const PhaseDef& ph);
  EventDef parseEvent(const YAML::Node& n, Scenario& sc, std::set<std::string>& live,
                      const PhaseDef& phase);
  const ProcessDef& liveProcess(const YAML::Node& n, const Scenario& sc,
                                const std::set<std::string>& live) const;
  const MappingDef& mappingOf(const YAML::Node& n, const ProcessDef& p) const;
  void placeBars(const Scenario& sc) const;
  void checkAccesses(const YAML::Node& n, const AccessProgram& prog, const ProcessDef& p,
                     const std::string& who) const;
  uint64_t longestLength(const std::string& process, const MappingDef& m) const;
  // `offset` and `length` of an event on mapping `m`: page multiples inside it,
  // the whole of it by default.
  void rangeInMapping(const YAML::Node& n, const MappingDef& m, EventDef& e) const;
  void parseDmaMap(const YAML::Node& n, EventDef& e, const Scenario& sc,
                   const std::set<std::string>& live);
  void parseDmaUnmap(const YAML::Node& n, EventDef& e, const Scenario& sc,
                     const std::set<std::string>& live);
  void parseDeviceDma(const YAML::Node& n, EventDef& e, const Scenario& sc) const;
  DmaVia dmaVia(const YAML::Node& n, const ProcessDef& p) const;
  uint64_t iovaOf(const YAML::Node& n) const;

  // A live DMA mapping as the parser tracks it, to refuse overlaps and
  // unmaps that cut one (what the kernel would refuse with EEXIST/EINVAL).
  struct DmaRange {
    uint64_t iova = 0;
    uint64_t length = 0;
    std::string mapping;
    int line = 0;
  };
  // The IOVA space a process's dma events use: its container or IOAS,
  // shared with the children it forks (they inherit the fds).
  std::vector<DmaRange>& dmaSpace(const std::string& process, DmaVia via) {
    const auto owner = dmaOwner_.find(process);
    return dmaRanges_[{owner == dmaOwner_.end() ? process : owner->second, via}];
  }

  std::string file_;
  std::map<std::string, std::string> dmaOwner_;  // forked child -> the process whose fds it shares
  std::map<std::pair<std::string, DmaVia>, std::vector<DmaRange>> dmaRanges_;
  // The longest each process's mappings get through mremap events so far
  // (process -> mapping -> length), for the access bound of later phases.
  std::map<std::string, std::map<std::string, uint64_t>> grown_;
};

void Parser::parseCost(const YAML::Node& n, CostModel& cost) const {
  requireMap(n, "cost_model");
  for (auto it = n.begin(); it != n.end(); ++it) {
    const std::string key = it->first.as<std::string>();
    bool found = false;
    for (const auto& f : CostModel::fields()) {
      if (key == f.key) {
        cost.*f.member = number(it->second, key);
        found = true;
      }
    }
    if (!found) {
      std::string list;
      for (const auto& f : CostModel::fields())
        list += fmt::format("{}{}", list.empty() ? "" : ", ", f.key);
      fail(it->first,
           fmt::format("unknown key '{}' in cost_model (expected one of: {})", key, list));
    }
  }
}

// `tlb: {4k: {entries: 64, ways: 4}, ...}`: each array given replaces the
// default (a Golden Cove STLB) whole; sets must be a power of two, as the
// model indexes them by the low page-number bits.
void Parser::parseTlb(const YAML::Node& n, TlbGeometry& tlb) const {
  requireMap(n, "tlb");
  checkKeys(n, {"4k", "2m", "1g"}, "tlb");
  if (n["4k"]) tlb.page4k = parseTlbArray(n["4k"], "tlb.4k");
  if (n["2m"]) tlb.page2m = parseTlbArray(n["2m"], "tlb.2m");
  if (n["1g"]) tlb.page1g = parseTlbArray(n["1g"], "tlb.1g");
}

// `proposals: [bar-mmap-dmabuf, ...]`: the names of kProposalNames, each
// at most once.
std::vector<Proposal> Parser::parseProposals(const YAML::Node& n) const {
  requireSeq(n, "proposals");
  std::vector<Proposal> out;
  for (const YAML::Node& p : n) {
    const std::string name = str(p, "proposals");
    const std::optional<Proposal> v = valueOf(kProposalNames, name);
    if (!v)
      fail(p, fmt::format("unknown proposal '{}' (known: {})", name, nameList(kProposalNames)));
    if (std::find(out.begin(), out.end(), *v) != out.end())
      fail(p, fmt::format("proposal '{}' is listed twice", name));
    out.push_back(*v);
  }
  return out;
}

TlbArrayGeometry Parser::parseTlbArray(const YAML::Node& n, const std::string& what) const {
  requireMap(n, what);
  checkKeys(n, {"entries", "ways"}, what);
  if (!n["entries"] || !n["ways"]) fail(n, fmt::format("{} needs entries and ways", what));
  constexpr uint64_t kMaxTlbEntries = 1 << 16;
  const auto entries = bounded<unsigned>(n["entries"], what + ".entries", kMaxTlbEntries);
  const auto ways = bounded<unsigned>(n["ways"], what + ".ways", kMaxTlbEntries);
  if (entries == 0 || ways == 0)
    fail(n, fmt::format("{}: entries and ways must be at least 1", what));
  if (entries % ways != 0 || !isPowerOfTwo(entries / ways))
    fail(n, fmt::format("{}: entries / ways (the number of sets) must be a whole power of two, "
                        "not {} / {}",
                        what, entries, ways));
  return TlbArrayGeometry{entries, ways};
}

// `model:` or `config_dump:` + `resource:`: the device comes whole from the
// catalog or from a dump; its BARs are what mappings refer to.
void Parser::parseHardware(const YAML::Node& n, DeviceDef& d) const {
  for (const char* key : {"bars", "flr", "vf"})
    if (n[key])
      fail(n[key], fmt::format("'{}' comes from the device's model or dump; drop it", key));
  if (n["model"] && n["config_dump"]) fail(n["config_dump"], "give model or config_dump, not both");
  try {
    if (n["model"]) {
      d.model = str(n["model"], "model");
      const DeviceCatalog catalog = DeviceCatalog::load(devicesDir());
      const CatalogDevice* dev = catalog.find(d.model);
      if (dev == nullptr) {
        std::string names;
        for (const CatalogDevice& c : catalog.devices())
          names += (names.empty() ? "" : ", ") + c.name;
        fail(n["model"], fmt::format("no device '{}' in the catalog {} (it has: {})", d.model,
                                     devicesDir(), names));
      }
      d.hardware = dev->config;
    } else {
      if (!n["config_dump"])
        fail(n["resource"], "resource goes with config_dump (the dump it sizes)");
      if (!n["resource"]) fail(n, "config_dump needs resource (the sysfs resource file)");
      const std::filesystem::path dir = std::filesystem::path(file_).parent_path();
      d.model = str(n["config_dump"], "config_dump");
      d.hardware = loadDeviceFromDump((dir / d.model).string(),
                                      (dir / str(n["resource"], "resource")).string());
    }
  } catch (const CatalogError& e) {
    fail(n["model"], e.what());
  } catch (const ConfigDumpError& e) {
    fail(n["config_dump"], e.what());
  }
  d.flr = d.hardware->pcie && d.hardware->pcie->flr;
  // A BAR's place in the file is the key that brought the device.
  const Mark from = markOf(n["model"] ? n["model"] : n["config_dump"]);
  for (unsigned b = 0; b < kPciStdNumBars; ++b)
    if (const auto& bar = d.hardware->bars[b])
      d.bars.push_back(BarDef{b, bar->size, bar->kind, bar->prefetchable, from});
}

DeviceDef Parser::parseDevice(const YAML::Node& n, size_t i) const {
  requireMap(n, "a device");
  checkKeys(n,
            {"name", "bus", "slot", "function", "group", "vf", "flr", "slot_reset", "runtime_pm",
             "bars", "model", "config_dump", "resource"},
            "a device");
  DeviceDef d;
  d.mark = markOf(n);
  if (!n["name"]) fail(n, "a device needs a name");
  d.name = name(n["name"], "a device's name");
  d.bus = n["bus"] ? bounded<uint8_t>(n["bus"], "bus", 255) : static_cast<uint8_t>(1 + i);
  if (d.bus == 0) fail(n["bus"], "bus 0 is the root bus; devices go on bus 1 or above");
  if (n["slot"]) d.slot = bounded<uint8_t>(n["slot"], "slot", 31);
  if (n["function"]) d.function = bounded<uint8_t>(n["function"], "function", 7);
  if (n["group"]) d.group = bounded<int>(n["group"], "group", 1000000);
  if (n["vf"]) d.vf = boolean(n["vf"], "vf");
  if (n["flr"]) d.flr = boolean(n["flr"], "flr");
  if (n["slot_reset"]) d.slotReset = boolean(n["slot_reset"], "slot_reset");
  if (n["runtime_pm"]) d.runtimePm = boolean(n["runtime_pm"], "runtime_pm");
  if (n["model"] || n["config_dump"] || n["resource"]) {
    parseHardware(n, d);
    return d;
  }
  if (!n["bars"]) fail(n, fmt::format("device '{}' has no bars", d.name));
  requireSeq(n["bars"], "bars");
  std::array<bool, kPciStdNumBars> used{};
  for (const YAML::Node& b : n["bars"]) {
    requireMap(b, "a BAR");
    checkKeys(b, {"index", "size", "type", "prefetchable"}, "a BAR");
    BarDef bar;
    bar.mark = markOf(b);
    if (!b["index"]) fail(b, "a BAR needs an index (0-5)");
    bar.index = bounded<unsigned>(b["index"], "index", kPciStdNumBars - 1);
    if (!b["size"]) fail(b, "a BAR needs a size");
    bar.size = size(b["size"], "size");
    if (!isPowerOfTwo(bar.size))
      fail(b["size"], fmt::format("BAR size {} is not a power of two", b["size"].Scalar()));
    if (b["type"]) {
      const std::string t = str(b["type"], "type");
      const std::optional<BarKind> kind = valueOf(kBarKindNames, t);
      if (!kind) fail(b["type"], fmt::format("BAR type must be mem32, mem64 or io, not '{}'", t));
      bar.kind = *kind;
    }
    if (b["prefetchable"]) bar.prefetchable = boolean(b["prefetchable"], "prefetchable");
    if (bar.kind == BarKind::kIo) {
      if (bar.size < 4 || bar.size > 256) fail(b["size"], "an I/O BAR is 4 to 256 bytes");
      if (bar.prefetchable) fail(b["prefetchable"], "an I/O BAR cannot be prefetchable");
      if (d.vf) fail(b, "a VF has no I/O BAR");
    } else {
      if (bar.size < kPage) fail(b["size"], "a memory BAR the model maps is at least 4K");
      if (bar.kind == BarKind::kMem32 && bar.size > (2ULL << 30))
        fail(b["size"], "a 32-bit BAR is at most 2G");
    }
    if (used[bar.index]) fail(b["index"], fmt::format("BAR {} is already taken", bar.index));
    used[bar.index] = true;
    if (bar.kind == BarKind::kMem64) {
      if (bar.index + 1 >= kPciStdNumBars)
        fail(b["index"], "a 64-bit BAR takes two slots; BAR 5 cannot be one");
      if (used[bar.index + 1])
        fail(b["index"], fmt::format("a 64-bit BAR {} also takes slot {}, which is taken",
                                     bar.index, bar.index + 1));
      used[bar.index + 1] = true;
    }
    d.bars.push_back(bar);
  }
  // A 64-bit BAR declared after one at its upper slot.
  for (const BarDef& a : d.bars)
    for (const BarDef& b : d.bars)
      if (a.kind == BarKind::kMem64 && b.index == a.index + 1)
        fail(d.mark, fmt::format("device '{}': BAR {} is the upper half of 64-bit BAR {}", d.name,
                                 b.index, a.index));
  return d;
}

// A BAR mapping: `device`, `bar`, and the range `offset` + `length` of it.
void Parser::parseBarRange(const YAML::Node& n, const Scenario& sc, const ProcessDef& p,
                           MappingDef& m) const {
  if (!n["device"]) fail(n, "a mapping needs a device or anonymous");
  m.device = str(n["device"], "device");
  const DeviceDef* dev = sc.device(m.device);
  if (dev == nullptr) fail(n["device"], fmt::format("undefined device '{}'", m.device));
  bool opened = false;
  for (const OpenDef& o : p.opens) opened = opened || o.device == m.device;
  if (!opened)
    fail(n["device"], fmt::format("process '{}' does not open device '{}'", p.name, m.device));
  if (!n["bar"]) fail(n, "a mapping needs a bar");
  m.bar = bounded<unsigned>(n["bar"], "bar", kPciStdNumBars - 1);
  const BarDef* bar = dev->bar(m.bar);
  if (bar == nullptr) fail(n["bar"], fmt::format("device '{}' has no BAR {}", m.device, m.bar));
  if (bar->kind == BarKind::kIo)
    fail(n["bar"], fmt::format("BAR {} is an I/O BAR; it cannot be mapped", m.bar));
  m.name =
      n["name"] ? name(n["name"], "a mapping's name") : fmt::format("{}.bar{}", m.device, m.bar);
  if (n["offset"]) m.offset = size(n["offset"], "offset");
  if (m.offset % kPage != 0) fail(n["offset"], "offset must be a multiple of 4K");
  if (m.offset >= bar->size)
    fail(n["offset"], fmt::format("offset {} is past the end of BAR {} ({})", formatBytes(m.offset),
                                  m.bar, formatBytes(bar->size)));
  m.length = n["length"] ? size(n["length"], "length") : bar->size - m.offset;
  if (m.length == 0 || m.length % kPage != 0)
    fail(n["length"], "length must be a non-zero multiple of 4K");
  if (m.length > bar->size - m.offset)  // offset < size: no wrap-around
    fail(n["length"] ? n["length"] : n,
         fmt::format("mapping '{}' ({} at {}) runs past the end of BAR {} ({})", m.name,
                     formatBytes(m.length), formatBytes(m.offset), m.bar, formatBytes(bar->size)));
}

// `anonymous: SIZE`: host RAM, named (nothing to name it after).
void Parser::parseAnonymous(const YAML::Node& n, MappingDef& m) const {
  for (const char* k : {"device", "bar", "offset", "length"})
    if (n[k]) fail(n[k], fmt::format("an anonymous mapping has no {}", k));
  if (!n["name"]) fail(n, "an anonymous mapping needs a name");
  m.anonymous = true;
  m.name = name(n["name"], "a mapping's name");
  m.length = size(n["anonymous"], "anonymous");
  if (m.length == 0 || m.length % kPage != 0)
    fail(n["anonymous"], "anonymous must be a non-zero multiple of 4K");
}

// `address` (MAP_FIXED) or `align` (QEMU 9.2's placement).
void Parser::parsePlacement(const YAML::Node& n, MappingDef& m) const {
  if (n["address"]) {
    m.address = uint(n["address"], "address");
    if (*m.address % kPage != 0) fail(n["address"], "address must be a multiple of 4K");
    if (*m.address > kTaskSize || m.length > kTaskSize - *m.address)
      fail(
          n["address"],
          fmt::format("mapping '{}' at {:#x} ({}) reaches into the kernel half: user space ends at "
                      "{:#x} (mmap refuses with ENOMEM)",
                      m.name, *m.address, formatBytes(m.length), kTaskSize));
    if (n["align"]) fail(n["align"], "give an address or an align, not both");
    m.alignSpec = "fixed";
  } else {
    m.alignSpec = n["align"] ? str(n["align"], "align") : "natural";
    if (m.alignSpec == "natural")
      m.align = std::min(pow2Floor(m.length), kGiB);
    else if (m.alignSpec == "none")
      m.align = 0;
    else {
      auto a = parseSize(m.alignSpec);
      if (!a || !isPowerOfTwo(*a) || *a < kPage)
        fail(n["align"],
             fmt::format("align must be natural, none or a power of two of at least 4K, not '{}'",
                         m.alignSpec));
      m.align = *a;
    }
    // The placement reserves length + align bytes (runner: QEMU 9.2's way).
    if (m.align > kUserSpan || m.length > kUserSpan - m.align)
      fail(n["align"] ? n["align"] : n,
           fmt::format("mapping '{}' cannot be placed: {} aligned to {} needs {} + {} of address "
                       "space, and user "
                       "space has {:#x} bytes",
                       m.name, formatBytes(m.length), formatBytes(m.align), formatBytes(m.length),
                       formatBytes(m.align), kUserSpan));
  }
}

MappingDef Parser::parseMapping(const YAML::Node& n, const Scenario& sc,
                                const ProcessDef& p) const {
  requireMap(n, "a mapping");
  checkKeys(n,
            {"name", "anonymous", "device", "bar", "offset", "length", "address", "align", "prot",
             "madvise"},
            "a mapping");
  MappingDef m;
  m.mark = markOf(n);
  if (n["anonymous"])
    parseAnonymous(n, m);
  else
    parseBarRange(n, sc, p, m);
  parsePlacement(n, m);
  if (n["prot"]) {
    const std::string pr = str(n["prot"], "prot");
    if (pr == "rw")
      m.write = true;
    else if (pr == "r")
      m.write = false;
    else
      fail(n["prot"], fmt::format("prot must be r or rw, not '{}'", pr));
  }
  if (n["madvise"]) {
    requireSeq(n["madvise"], "madvise");
    for (const YAML::Node& a : n["madvise"]) {
      const std::string s = str(a, "madvise");
      static const char* kKnown[] = {"hugepage", "nohugepage", "dontfork", "dofork",
                                     "random",   "sequential", "willneed", "dontneed"};
      if (std::find_if(std::begin(kKnown), std::end(kKnown),
                       [&](const char* k) { return s == k; }) == std::end(kKnown))
        fail(a, fmt::format("unknown madvise advice '{}'", s));
      m.madvise.push_back(s);
    }
  }
  for (const MappingDef& other : p.mappings)
    if (other.name == m.name)
      fail(n, fmt::format("mapping '{}' is defined twice in process '{}'", m.name, p.name));
  return m;
}

ProcessDef Parser::parseProcess(const YAML::Node& n, const Scenario& sc) const {
  requireMap(n, "a process");
  checkKeys(n, {"name", "open", "mappings", "memlock", "cap_ipc_lock"}, "a process");
  ProcessDef p;
  p.mark = markOf(n);
  if (!n["name"]) fail(n, "a process needs a name");
  p.name = name(n["name"], "a process's name");
  if (const YAML::Node& m = n["memlock"]) {
    std::optional<uint64_t> v;
    if (m.IsScalar()) v = m.Scalar() == "unlimited" ? UINT64_MAX : parseSize(m.Scalar());
    if (!v) fail(m, "memlock must be a size (e.g. 64K, 16G) or unlimited");
    p.memlock = *v;
  }
  if (n["cap_ipc_lock"]) p.capIpcLock = boolean(n["cap_ipc_lock"], "cap_ipc_lock");
  if (n["open"]) {
    requireSeq(n["open"], "open");
    for (const YAML::Node& o : n["open"]) {
      OpenDef od;
      if (o.IsScalar()) {
        od.device = o.Scalar();
      } else {
        requireMap(o, "an open");
        checkKeys(o, {"device", "via"}, "an open");
        if (!o["device"]) fail(o, "an open needs a device");
        od.device = str(o["device"], "device");
        if (o["via"]) {
          const std::string v = str(o["via"], "via");
          const std::optional<OpenVia> via = valueOf(kOpenViaNames, v);
          if (!via)
            fail(o["via"],
                 fmt::format("via must be {}, not '{}'", nameList(kOpenViaNames, " or "), v));
          od.via = *via;
        }
      }
      if (sc.device(od.device) == nullptr) fail(o, fmt::format("undefined device '{}'", od.device));
      for (const OpenDef& e : p.opens)
        if (e.device == od.device) fail(o, fmt::format("device '{}' is opened twice", od.device));
      p.opens.push_back(od);
    }
  }
  if (n["mappings"]) {
    requireSeq(n["mappings"], "mappings");
    for (const YAML::Node& m : n["mappings"]) p.mappings.push_back(parseMapping(m, sc, p));
    uint64_t space = 0;
    for (const MappingDef& m : p.mappings) space = satAdd(space, satAdd(m.length, m.align));
    if (space > kUserSpan)
      fail(n["mappings"],
           fmt::format("the mappings of process '{}' need {:#x} bytes of address space; user space "
                       "has {:#x}",
                       p.name, space, kUserSpan));
  }
  return p;
}

AccessProgram Parser::parseProgram(const YAML::Node& n, bool allowThreadKeys) const {
  if (allowThreadKeys)
    checkKeys(n,
              {"name", "process", "cpu", "pattern", "stride", "count", "seed", "writes", "passes",
               "until_events_done", "targets", "events"},
              "a thread");
  else
    checkKeys(n, {"pattern", "stride", "count", "seed", "writes", "passes", "targets"},
              "a program");
  AccessProgram prog;
  if (n["pattern"]) {
    const std::string s = str(n["pattern"], "pattern");
    if (s == "sequential")
      prog.pattern = Pattern::kSequential;
    else if (s == "stride")
      prog.pattern = Pattern::kStride;
    else if (s == "random")
      prog.pattern = Pattern::kRandom;
    else
      fail(n["pattern"], fmt::format("pattern must be sequential, stride or random, not '{}'", s));
  }
  if (n["stride"]) {
    prog.stride = size(n["stride"], "stride");
    if (prog.stride == 0 || prog.stride % 8 != 0)
      fail(n["stride"], "stride must be a non-zero multiple of 8");
  }
  if (n["count"]) {
    prog.count = uint(n["count"], "count");
    if (prog.count > kMaxAccesses)
      fail(n["count"],
           fmt::format("count {} is more than the {} accesses a thread makes in a phase",
                       prog.count, kMaxAccesses));
  }
  if (prog.pattern == Pattern::kRandom && prog.count == 0)
    fail(n, "a random pattern needs a count (accesses per pass per target)");
  if (prog.pattern != Pattern::kRandom && n["count"])
    fail(n["count"], "count is for the random pattern");
  if (n["seed"]) prog.seed = uint(n["seed"], "seed");
  if (n["writes"]) {
    prog.writes = number(n["writes"], "writes");
    if (prog.writes > 1.0) fail(n["writes"], "writes is a fraction between 0 and 1");
  }
  if (n["passes"]) {
    prog.passes = bounded<unsigned>(n["passes"], "passes", 1000000);
    if (prog.passes == 0) fail(n["passes"], "passes must be at least 1");
  }
  if (allowThreadKeys && n["until_events_done"])
    prog.untilEventsDone = boolean(n["until_events_done"], "until_events_done");
  if (n["targets"]) {
    requireSeq(n["targets"], "targets");
    for (const YAML::Node& t : n["targets"]) prog.targets.push_back(str(t, "a target"));
  }
  return prog;
}

void Parser::checkTargets(const YAML::Node& n, const AccessProgram& prog,
                          const ProcessDef& p) const {
  if (!n["targets"]) {
    if (p.mappings.empty()) fail(n, fmt::format("process '{}' has no mappings to touch", p.name));
    return;
  }
  size_t i = 0;
  for (const YAML::Node& t : n["targets"]) {
    const std::string& name = prog.targets[i++];
    bool found = false;
    for (const MappingDef& m : p.mappings) found = found || m.name == name;
    if (!found) fail(t, fmt::format("process '{}' has no mapping '{}'", p.name, name));
  }
}

// What PciHost::addDevice will do when the run adds the devices, in order:
// each device's BARs placed largest first, naturally aligned, in the lowest
// free place of the host bridge's window for their type (the kernel's
// default windows); a BAR that does not fit is refused with ENOSPC.
void Parser::placeBars(const Scenario& sc) const {
  PciAllocator allocator{HostBridgeWindows{}};
  for (const DeviceDef& d : sc.devices) {
    std::vector<const BarDef*> bars;
    for (const BarDef& b : d.bars) bars.push_back(&b);
    std::sort(bars.begin(), bars.end(),
              [](const BarDef* a, const BarDef* b) { return a->index < b->index; });
    std::stable_sort(bars.begin(), bars.end(),
                     [](const BarDef* a, const BarDef* b) { return a->size > b->size; });
    for (const BarDef* b : bars) {
      const PciWindow window = b->kind == BarKind::kIo      ? PciWindow::kIo
                               : b->kind == BarKind::kMem64 ? PciWindow::kMem64
                                                            : PciWindow::kMem32;
      if (allocator.allocate(window, b->size)) continue;
      const HostBridgeWindows w;
      const AddressWindow& aw = window == PciWindow::kIo      ? w.io
                                : window == PciWindow::kMem64 ? w.mem64
                                                              : w.mem32;
      fail(b->mark, fmt::format("the kernel refuses device '{}': BAR {} ({}) does not fit in the "
                                "host bridge's {} window "
                                "[{:#x}, {:#x}) beside the BARs placed before it (ENOSPC)",
                                d.name, b->index, formatBytes(b->size),
                                window == PciWindow::kIo      ? "I/O"
                                : window == PciWindow::kMem64 ? "64-bit"
                                                              : "32-bit",
                                aw.start, aw.end));
    }
  }
}

uint64_t Parser::longestLength(const std::string& process, const MappingDef& m) const {
  const auto p = grown_.find(process);
  if (p == grown_.end()) return m.length;
  const auto it = p->second.find(m.name);
  return it == p->second.end() ? m.length : std::max(m.length, it->second);
}

// A thread (or a fork's child program) must end: at most kMaxAccesses in
// a phase, counted as the runner makes them (its passes over its targets,
// which an mremap may have grown).
void Parser::checkAccesses(const YAML::Node& n, const AccessProgram& prog, const ProcessDef& p,
                           const std::string& who) const {
  uint64_t perPass = 0;
  for (const MappingDef& m : p.mappings) {
    if (!prog.targets.empty() &&
        std::find(prog.targets.begin(), prog.targets.end(), m.name) == prog.targets.end())
      continue;
    const uint64_t len = longestLength(p.name, m);
    perPass = satAdd(perPass, prog.pattern == Pattern::kRandom
                                  ? prog.count
                                  : len / prog.stride + (len % prog.stride != 0));
  }
  const uint64_t total = satMul(perPass, prog.passes);
  if (total > kMaxAccesses)
    fail(n,
         fmt::format(
             "{} would make {} accesses; a thread makes at most {} in a phase (docs/scenario.md)",
             who, total == UINT64_MAX ? std::string("more than 2^64") : std::to_string(total),
             kMaxAccesses));
}

const ProcessDef& Parser::liveProcess(const YAML::Node& n, const Scenario& sc,
                                      const std::set<std::string>& live) const {
  const std::string name = str(n, "process");
  const ProcessDef* p = sc.process(name);
  if (p == nullptr) fail(n, fmt::format("undefined process '{}'", name));
  if (live.count(name) == 0) fail(n, fmt::format("process '{}' has exited", name));
  return *p;
}

const MappingDef& Parser::mappingOf(const YAML::Node& n, const ProcessDef& p) const {
  const std::string name = str(n, "mapping");
  for (const MappingDef& m : p.mappings)
    if (m.name == name) return m;
  fail(n, fmt::format("process '{}' has no mapping '{}'", p.name, name));
}

EventDef Parser::parseEvent(const YAML::Node& n, Scenario& sc, std::set<std::string>& live,
                            const PhaseDef& phase) {
  requireMap(n, "an event");
  EventDef e;
  e.mark = markOf(n);
  if (!n["type"]) fail(n, "an event needs a type");
  const std::string type = str(n["type"], "type");
  const std::optional<EventKind> kind = valueOf(kEventKindNames, type);
  if (!kind)
    fail(n["type"], fmt::format("unknown event type '{}' (expected one of: {})", type,
                                nameList(kEventKindNames)));
  e.kind = *kind;
  if (n["after_accesses"]) {
    e.afterAccesses = uint(n["after_accesses"], "after_accesses");
    if (e.afterAccesses > kMaxAccesses)
      fail(n["after_accesses"],
           fmt::format("after_accesses {} is more than the {} accesses a thread makes in a "
                       "phase: the event would never run",
                       e.afterAccesses, kMaxAccesses));
  }
  if (e.afterAccesses != 0 && phase.threads.empty())
    fail(n["after_accesses"], "after_accesses needs threads in the phase");
  switch (e.kind) {
    case EventKind::kMemoryDisable:
    case EventKind::kMemoryEnable:
    case EventKind::kD3hot:
    case EventKind::kD0:
    case EventKind::kReset:
    case EventKind::kHotReset:
    case EventKind::kLowPowerEntry:
    case EventKind::kLowPowerExit: {
      checkKeys(n, {"type", "device", "process", "after_accesses"},
                fmt::format("a {} event", type));
      if (!n["device"]) fail(n, fmt::format("a {} event needs a device", type));
      e.device = str(n["device"], "device");
      if (sc.device(e.device) == nullptr)
        fail(n["device"], fmt::format("undefined device '{}'", e.device));
      auto opens = [&](const ProcessDef& p) {
        return std::any_of(p.opens.begin(), p.opens.end(),
                           [&](const OpenDef& o) { return o.device == e.device; });
      };
      if (n["process"]) {
        const ProcessDef& p = liveProcess(n["process"], sc, live);
        if (!opens(p))
          fail(n["process"],
               fmt::format("process '{}' does not open device '{}'", p.name, e.device));
        e.process = p.name;
      } else {
        for (const ProcessDef& p : sc.processes)
          if (e.process.empty() && live.count(p.name) != 0 && opens(p)) e.process = p.name;
        if (e.process.empty())
          fail(n, fmt::format("no running process has device '{}' open to issue the {}", e.device,
                              type));
      }
      break;
    }
    case EventKind::kMunmap:
    case EventKind::kMprotect:
    case EventKind::kMremap: {
      if (e.kind == EventKind::kMremap)
        checkKeys(n, {"type", "process", "mapping", "new_length", "new_address", "after_accesses"},
                  "an mremap event");
      else if (e.kind == EventKind::kMprotect)
        checkKeys(n, {"type", "process", "mapping", "offset", "length", "prot", "after_accesses"},
                  "an mprotect event");
      else
        checkKeys(n, {"type", "process", "mapping", "offset", "length", "after_accesses"},
                  "a munmap event");
      if (!n["process"]) fail(n, fmt::format("a {} event needs a process", type));
      if (!n["mapping"]) fail(n, fmt::format("a {} event needs a mapping", type));
      const ProcessDef& p = liveProcess(n["process"], sc, live);
      const MappingDef& m = mappingOf(n["mapping"], p);
      e.process = p.name;
      e.mapping = m.name;
      if (e.kind == EventKind::kMremap) {
        if (!n["new_length"]) fail(n, "an mremap event needs new_length");
        e.newLength = size(n["new_length"], "new_length");
        if (e.newLength == 0 || e.newLength % kPage != 0)
          fail(n["new_length"], "new_length must be a non-zero multiple of 4K");
        if (e.newLength > kUserSpan)
          fail(n["new_length"],
               fmt::format("new_length {} is larger than user space", formatBytes(e.newLength)));
        if (n["new_address"]) {
          e.newAddress = uint(n["new_address"], "new_address");
          if (*e.newAddress % kPage != 0)
            fail(n["new_address"], "new_address must be a multiple of 4K");
          if (*e.newAddress > kTaskSize || e.newLength > kTaskSize - *e.newAddress)
            fail(n["new_address"],
                 fmt::format("new_address {:#x} + new_length {} reaches into the kernel half: user "
                             "space ends at {:#x} (mremap refuses with EINVAL)",
                             *e.newAddress, formatBytes(e.newLength), kTaskSize));
        }
        e.length = m.length;
        uint64_t& grown = grown_[p.name][m.name];
        grown = std::max(grown, e.newLength);
      } else {
        rangeInMapping(n, m, e);
        if (e.kind == EventKind::kMprotect) {
          const std::string pr = n["prot"] ? str(n["prot"], "prot") : "r";
          if (pr == "rw")
            e.protWrite = true;
          else if (pr == "r")
            e.protWrite = false;
          else
            fail(n["prot"], fmt::format("prot must be r or rw, not '{}'", pr));
        }
      }
      break;
    }
    case EventKind::kFork: {
      checkKeys(n, {"type", "process", "child", "program", "after_accesses"}, "a fork event");
      if (!n["process"]) fail(n, "a fork event needs a process");
      if (!n["child"]) fail(n, "a fork event needs a child name");
      const ProcessDef& parent = liveProcess(n["process"], sc, live);
      e.process = parent.name;
      e.child = name(n["child"], "child");
      if (sc.process(e.child) != nullptr)
        fail(n["child"], fmt::format("process '{}' already exists", e.child));
      ProcessDef child = parent;  // same files, same mappings (by name)
      child.name = e.child;
      child.mark = markOf(n);
      if (n["program"]) {
        requireMap(n["program"], "program");
        e.childProgram = parseProgram(n["program"], false);
        checkTargets(n["program"], *e.childProgram, child);
      }
      if (grown_.count(parent.name) != 0) grown_[e.child] = grown_.at(parent.name);
      dmaOwner_[e.child] =
          dmaOwner_.count(parent.name) != 0 ? dmaOwner_.at(parent.name) : parent.name;
      if (e.childProgram)
        checkAccesses(n["program"], *e.childProgram, child,
                      fmt::format("the program of child '{}'", e.child));
      sc.processes.push_back(child);
      live.insert(e.child);
      break;
    }
    case EventKind::kExit: {
      checkKeys(n, {"type", "process", "after_accesses"}, "an exit event");
      if (!n["process"]) fail(n, "an exit event needs a process");
      const ProcessDef& p = liveProcess(n["process"], sc, live);
      e.process = p.name;
      for (const ThreadDef& t : phase.threads)
        if (t.process == p.name && t.program.untilEventsDone)
          fail(n, fmt::format("process '{}' exits while its thread '{}' waits for the events",
                              p.name, t.name));
      live.erase(p.name);
      break;
    }
    case EventKind::kDmaMap: parseDmaMap(n, e, sc, live); break;
    case EventKind::kDmaUnmap: parseDmaUnmap(n, e, sc, live); break;
    case EventKind::kDeviceDma: parseDeviceDma(n, e, sc); break;
  }
  return e;
}

// `via`: container needs a device opened via group (the container QEMU sets
// TYPE1v2 on), iommufd one opened via cdev; the default is whichever the
// process has, the container when it has both.
DmaVia Parser::dmaVia(const YAML::Node& n, const ProcessDef& p) const {
  const bool group = std::any_of(p.opens.begin(), p.opens.end(),
                                 [](const OpenDef& o) { return o.via == OpenVia::kGroup; });
  const bool cdev = std::any_of(p.opens.begin(), p.opens.end(),
                                [](const OpenDef& o) { return o.via == OpenVia::kCdev; });
  if (!n["via"]) {
    if (!group && !cdev)
      fail(n, fmt::format("process '{}' opens no device: it has no container or iommufd", p.name));
    return group ? DmaVia::kContainer : DmaVia::kIommufd;
  }
  const std::string v = str(n["via"], "via");
  const std::optional<DmaVia> via = valueOf(kDmaViaNames, v);
  if (!via)
    fail(n["via"], fmt::format("via must be {}, not '{}'", nameList(kDmaViaNames, " or "), v));
  if (*via == DmaVia::kContainer && !group)
    fail(n["via"],
         fmt::format("process '{}' has no container: it opens no device via group", p.name));
  if (*via == DmaVia::kIommufd && !cdev)
    fail(n["via"], fmt::format("process '{}' has no iommufd: it opens no device via cdev", p.name));
  return *via;
}

// An IOVA is a multiple of the smallest IOMMU page (4 KiB: type1's and
// iommufd's alignment check, dma-mapping.md §1.4 #5).
uint64_t Parser::iovaOf(const YAML::Node& n) const {
  if (!n["iova"]) fail(n, "a DMA event needs an iova");
  const uint64_t iova = size(n["iova"], "iova");
  if (iova % kPage != 0)
    fail(n["iova"],
         fmt::format("iova {:#x} is not a multiple of 4K (the IOMMU's smallest page)", iova));
  return iova;
}

// `{type: dma-map, process, mapping, offset, length, iova, via, prot}`.
void Parser::rangeInMapping(const YAML::Node& n, const MappingDef& m, EventDef& e) const {
  if (n["offset"]) e.offset = size(n["offset"], "offset");
  if (e.offset % kPage != 0 || e.offset >= m.length)
    fail(n["offset"], fmt::format("offset must be a multiple of 4K inside mapping '{}'", m.name));
  e.length = n["length"] ? size(n["length"], "length") : m.length - e.offset;
  if (e.length == 0 || e.length % kPage != 0 || e.length > m.length - e.offset)
    fail(n["length"],
         fmt::format("length must be a non-zero multiple of 4K inside mapping '{}'", m.name));
}

void Parser::parseDmaMap(const YAML::Node& n, EventDef& e, const Scenario& sc,
                         const std::set<std::string>& live) {
  checkKeys(
      n,
      {"type", "process", "mapping", "offset", "length", "iova", "via", "prot", "after_accesses"},
      "a dma-map event");
  if (!n["process"]) fail(n, "a dma-map event needs a process");
  if (!n["mapping"]) fail(n, "a dma-map event needs a mapping");
  const ProcessDef& p = liveProcess(n["process"], sc, live);
  const MappingDef& m = mappingOf(n["mapping"], p);
  e.process = p.name;
  e.mapping = m.name;
  e.via = dmaVia(n, p);
  e.iova = iovaOf(n);
  rangeInMapping(n, m, e);
  if (e.iova + e.length - 1 < e.iova)
    fail(n["iova"], fmt::format("iova {:#x} + length {} wraps the 64-bit IOVA space", e.iova,
                                formatBytes(e.length)));
  if (n["prot"]) {
    const std::string pr = str(n["prot"], "prot");
    if (pr == "rw")
      e.dmaWrite = true;
    else if (pr == "r")
      e.dmaWrite = false;
    else
      fail(n["prot"], fmt::format("prot must be r or rw, not '{}'", pr));
  }
  std::vector<DmaRange>& space = dmaSpace(p.name, e.via);
  for (const DmaRange& r : space)
    if (e.iova < r.iova + r.length && r.iova < e.iova + e.length)
      fail(n["iova"],
           fmt::format(
               "IOVA [{:#x}, {:#x}) overlaps the DMA mapping of '{}' at [{:#x}, {:#x}) made at "
               "line {} (the kernel refuses with EEXIST)",
               e.iova, e.iova + e.length, r.mapping, r.iova, r.iova + r.length, r.line));
  space.push_back(DmaRange{e.iova, e.length, m.name, e.mark.line});
}

// `{type: dma-unmap, process, via, mapping}` (the live DMA mapping made from
// that BAR mapping) or `{..., iova, length}`.
void Parser::parseDmaUnmap(const YAML::Node& n, EventDef& e, const Scenario& sc,
                           const std::set<std::string>& live) {
  checkKeys(n, {"type", "process", "mapping", "iova", "length", "via", "after_accesses"},
            "a dma-unmap event");
  if (!n["process"]) fail(n, "a dma-unmap event needs a process");
  const ProcessDef& p = liveProcess(n["process"], sc, live);
  e.process = p.name;
  e.via = dmaVia(n, p);
  std::vector<DmaRange>& space = dmaSpace(p.name, e.via);
  if (n["mapping"]) {
    if (n["iova"] || n["length"])
      fail(n["mapping"], "give a mapping or an iova and length, not both");
    e.mapping = str(n["mapping"], "mapping");
    auto it = std::find_if(space.rbegin(), space.rend(),
                           [&](const DmaRange& r) { return r.mapping == e.mapping; });
    if (it == space.rend())
      fail(n["mapping"], fmt::format("mapping '{}' of process '{}' is not DMA-mapped via {} here",
                                     e.mapping, p.name, dmaViaName(e.via)));
    e.iova = it->iova;
    e.length = it->length;
  } else {
    e.iova = iovaOf(n);
    if (!n["length"]) fail(n, "a dma-unmap event needs a length (or a mapping)");
    e.length = size(n["length"], "length");
    if (e.length == 0 || e.length % kPage != 0)
      fail(n["length"], "length must be a non-zero multiple of 4K");
    if (e.iova + e.length - 1 < e.iova)
      fail(n["length"], fmt::format("iova {:#x} + length {} wraps the 64-bit IOVA space", e.iova,
                                    formatBytes(e.length)));
  }
  // type1v2 refuses a range that cuts a mapping (EINVAL), iommufd too (ENOENT).
  for (const DmaRange& r : space) {
    const bool inside = r.iova >= e.iova && r.iova + r.length <= e.iova + e.length;
    if (!inside && e.iova < r.iova + r.length && r.iova < e.iova + e.length)
      fail(n,
           fmt::format(
               "IOVA [{:#x}, {:#x}) cuts the DMA mapping of '{}' at [{:#x}, {:#x}) made at line {} "
               "(the kernel refuses a partial unmap)",
               e.iova, e.iova + e.length, r.mapping, r.iova, r.iova + r.length, r.line));
  }
  space.erase(std::remove_if(space.begin(), space.end(),
                             [&](const DmaRange& r) {
                               return r.iova >= e.iova && r.iova + r.length <= e.iova + e.length;
                             }),
              space.end());
}

// `{type: dma, device, iova, write, size}`: one DMA access by the device,
// translated by the IOMMU domain its group or cdev is attached to.
void Parser::parseDeviceDma(const YAML::Node& n, EventDef& e, const Scenario& sc) const {
  checkKeys(n, {"type", "device", "iova", "write", "size", "after_accesses"}, "a dma event");
  if (!n["device"]) fail(n, "a dma event needs a device");
  e.device = str(n["device"], "device");
  if (sc.device(e.device) == nullptr)
    fail(n["device"], fmt::format("undefined device '{}'", e.device));
  if (!n["iova"]) fail(n, "a dma event needs an iova");
  e.iova = size(n["iova"], "iova");
  e.dmaWrite = n["write"] ? boolean(n["write"], "write") : false;
  e.dmaSize = n["size"] ? bounded<unsigned>(n["size"], "size", 8) : 4;
  if (e.dmaSize != 1 && e.dmaSize != 2 && e.dmaSize != 4 && e.dmaSize != 8)
    fail(n["size"], fmt::format("a DMA access is 1, 2, 4 or 8 bytes, not {}", e.dmaSize));
  if (e.iova % e.dmaSize != 0)
    fail(n["iova"],
         fmt::format("iova {:#x} is not aligned to the access size {}", e.iova, e.dmaSize));
}

// A thread's `events`: device events of its own process, instead of any
// access key.
void Parser::parseThreadEvents(const YAML::Node& t, ThreadDef& td, Scenario& sc,
                               std::set<std::string>& live, const PhaseDef& ph) {
  for (const char* key :
       {"pattern", "stride", "count", "seed", "writes", "passes", "until_events_done", "targets"})
    if (t[key])
      fail(t[key], fmt::format("a thread with events makes no accesses: '{}' is not for it", key));
  requireSeq(t["events"], "events");
  for (const YAML::Node& n : t["events"]) {
    EventDef e = parseEvent(n, sc, live, ph);
    if (!isDeviceEvent(e.kind))
      fail(n, fmt::format("a thread issues device events only, not '{}'", eventKindName(e.kind)));
    if (e.afterAccesses != 0)
      fail(n["after_accesses"], "a thread's event does not wait for accesses");
    if (e.process != td.process)
      fail(n, fmt::format("thread '{}' issues events of its process '{}', not of '{}'", td.name,
                          td.process, e.process));
    td.events.push_back(std::move(e));
  }
  if (td.events.empty()) fail(t["events"], fmt::format("thread '{}' has no events", td.name));
}

PhaseDef Parser::parsePhase(const YAML::Node& n, Scenario& sc, std::set<std::string>& live) {
  requireMap(n, "a phase");
  checkKeys(n, {"name", "threads", "events"}, "a phase");
  PhaseDef ph;
  ph.mark = markOf(n);
  if (!n["name"]) fail(n, "a phase needs a name");
  ph.name = name(n["name"], "a phase's name");
  for (const PhaseDef& other : sc.phases)
    if (other.name == ph.name) fail(n["name"], fmt::format("phase '{}' is defined twice", ph.name));
  if (n["threads"]) {
    requireSeq(n["threads"], "threads");
    size_t i = 0;
    for (const YAML::Node& t : n["threads"]) {
      requireMap(t, "a thread");
      ThreadDef td;
      td.mark = markOf(t);
      td.program = parseProgram(t, true);
      if (!t["process"]) fail(t, "a thread needs a process");
      const ProcessDef& p = liveProcess(t["process"], sc, live);
      td.process = p.name;
      td.name = t["name"] ? name(t["name"], "a thread's name") : fmt::format("{}.t{}", p.name, i);
      // One name is one simulated thread: two at once would run two
      // programs on it from two host threads.
      for (const ThreadDef& other : ph.threads)
        if (other.name == td.name)
          fail(t["name"] ? t["name"] : t,
               fmt::format("thread '{}' is defined twice in phase '{}' (first at line {})", td.name,
                           ph.name, other.mark.line));
      if (t["cpu"]) td.cpu = bounded<unsigned>(t["cpu"], "cpu", 63);
      if (td.cpu >= sc.cpus)
        fail(t["cpu"],
             fmt::format("cpu {} does not exist (the scenario has {} cpus)", td.cpu, sc.cpus));
      if (t["events"]) {
        parseThreadEvents(t, td, sc, live, ph);
      } else {
        checkTargets(t, td.program, p);
        checkAccesses(t, td.program, p, fmt::format("thread '{}'", td.name));
      }
      ph.threads.push_back(std::move(td));
      ++i;
    }
  }
  if (n["events"]) {
    requireSeq(n["events"], "events");
    for (const YAML::Node& e : n["events"]) ph.events.push_back(parseEvent(e, sc, live, ph));
  }
  for (const ThreadDef& t : ph.threads)
    if (t.program.untilEventsDone && ph.events.empty())
      fail(t.mark,
           fmt::format("thread '{}' waits for events but phase '{}' has none", t.name, ph.name));
  if (ph.threads.empty() && ph.events.empty())
    fail(n, fmt::format("phase '{}' does nothing", ph.name));
  return ph;
}

namespace {

// Counts documents without building them: yaml-cpp's LoadAll() loops
// forever, allocating, on a stray flow ',' at block level (each call of
// HandleNextDocument() returns an empty document without consuming it), so
// the count stops at two.
class DocumentCounter final : public YAML::EventHandler {
 public:
  std::optional<YAML::Mark> second;
  int documents = 0;

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents == 2) second = mark;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

std::optional<YAML::Mark> secondDocument(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentCounter counter;
  while (counter.documents < 2 && parser.HandleNextDocument(counter)) {
  }
  return counter.second;
}

}  // namespace

Scenario Parser::parse(const std::string& text) {
  if (const std::optional<TextFault> bad = firstBadCharacter(text))
    fail(markAt(file_, text, bad->offset), bad->what);
  YAML::Node root;
  try {
    // A second document would be silently ignored by a run.
    if (const std::optional<YAML::Mark> second = secondDocument(text))
      fail(Mark{file_, second->line + 1, second->column + 1},
           "a scenario is one YAML document; this is a second one");
    root = YAML::Load(text);
  } catch (const YAML::Exception& ex) {
    fail(Mark{file_, ex.mark.line + 1, ex.mark.column + 1}, ex.msg);
  }
  if (!root.IsMap()) fail(Mark{file_, 1, 1}, "a scenario is a YAML mapping");
  checkMapKeys(root, "the scenario");
  checkKeys(root,
            {"name", "description", "cpus", "profile", "dma_path", "proposals", "thp", "ram",
             "swap", "overcommit_memory", "cost_model", "tlb", "devices", "processes", "phases"},
            "the scenario");
  Scenario sc;
  sc.file = file_;
  if (!root["name"]) fail(root, "a scenario needs a name");
  sc.name = str(root["name"], "name");
  if (root["description"]) sc.description = str(root["description"], "description");
  if (root["cpus"]) {
    sc.cpus = bounded<unsigned>(root["cpus"], "cpus", 64);
    if (sc.cpus == 0) fail(root["cpus"], "cpus must be at least 1");
  }
  if (root["profile"]) {
    sc.profile = str(root["profile"], "profile");
    if (!KernelProfile::byName(sc.profile))
      fail(root["profile"], fmt::format("unknown profile '{}' (known: {})", sc.profile,
                                        fmt::join(KernelProfile::names(), ", ")));
  }
  if (root["dma_path"]) {
    const std::string path = str(root["dma_path"], "dma_path");
    const std::optional<DmaPath> p = dmaPathByName(path);
    if (!p)
      fail(root["dma_path"],
           fmt::format("dma_path must be {}, not '{}'", nameList(kDmaPathNames, " or "), path));
    sc.dmaPath = *p;
  }
  if (root["proposals"]) sc.proposals = parseProposals(root["proposals"]);
  if (root["thp"]) sc.thp = boolean(root["thp"], "thp");
  if (root["ram"]) {
    sc.memory.ramBytes = size(root["ram"], "ram");
    if (sc.memory.ramBytes < 4096) fail(root["ram"], "ram must be at least 4K");
  }
  if (root["swap"]) sc.memory.swapBytes = size(root["swap"], "swap");
  if (root["overcommit_memory"])
    sc.memory.overcommitMemory = static_cast<OvercommitMode>(
        bounded<unsigned>(root["overcommit_memory"], "overcommit_memory", 2));
  if (root["cost_model"]) parseCost(root["cost_model"], sc.cost);
  if (root["tlb"]) parseTlb(root["tlb"], sc.tlb);
  if (!root["devices"]) fail(root, "a scenario needs devices");
  requireSeq(root["devices"], "devices");
  size_t i = 0;
  for (const YAML::Node& d : root["devices"]) {
    DeviceDef dev = parseDevice(d, i++);
    if (sc.device(dev.name) != nullptr)
      fail(d, fmt::format("device '{}' is defined twice", dev.name));
    for (const DeviceDef& o : sc.devices)
      if (o.bus == dev.bus && o.slot == dev.slot && o.function == dev.function)
        fail(d, fmt::format("devices '{}' and '{}' are both at {:02x}:{:02x}.{}", o.name, dev.name,
                            dev.bus, dev.slot, dev.function));
    sc.devices.push_back(std::move(dev));
  }
  placeBars(sc);
  if (!root["processes"]) fail(root, "a scenario needs processes");
  requireSeq(root["processes"], "processes");
  std::set<std::string> live;
  for (const YAML::Node& p : root["processes"]) {
    ProcessDef pd = parseProcess(p, sc);
    if (sc.process(pd.name) != nullptr)
      fail(p, fmt::format("process '{}' is defined twice", pd.name));
    live.insert(pd.name);
    sc.processes.push_back(std::move(pd));
  }
  if (!root["phases"]) fail(root, "a scenario needs phases");
  requireSeq(root["phases"], "phases");
  for (const YAML::Node& ph : root["phases"]) {
    PhaseDef phase = parsePhase(ph, sc, live);
    sc.phases.push_back(std::move(phase));
  }
  if (sc.phases.empty()) fail(root["phases"], "a scenario needs at least one phase");
  return sc;
}

}  // namespace

const BarDef* DeviceDef::bar(unsigned index) const {
  for (const BarDef& b : bars)
    if (b.index == index) return &b;
  return nullptr;
}

const DeviceDef* Scenario::device(const std::string& n) const {
  for (const DeviceDef& d : devices)
    if (d.name == n) return &d;
  return nullptr;
}

const ProcessDef* Scenario::process(const std::string& n) const {
  for (const ProcessDef& p : processes)
    if (p.name == n) return &p;
  return nullptr;
}

bool isDeviceEvent(EventKind k) {
  return k >= EventKind::kMemoryDisable && k <= EventKind::kLowPowerExit;
}

Scenario parseScenario(const std::string& text, const std::string& fileName) {
  return Parser(fileName).parse(text);
}

Scenario loadScenario(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw ScenarioError(
        fmt::format("{}: cannot open the scenario file: {}", path, std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    throw ScenarioError(fmt::format("{}: is a directory, not a scenario file", path));
  }
  // Read one byte past the bound, so that a longer (or endless) input is
  // refused rather than read until memory runs out.
  std::string text;
  char buf[65536];
  int err = 0;
  while (text.size() <= kMaxScenarioBytes) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) err = errno;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (err != 0)
    throw ScenarioError(
        fmt::format("{}: cannot read the scenario file: {}", path, std::strerror(err)));
  if (text.size() > kMaxScenarioBytes)
    throw ScenarioError(
        fmt::format("{}: longer than the {} MiB a scenario file may have (or an endless input)",
                    path, kMaxScenarioBytes >> 20));
  return parseScenario(text, path);
}

std::optional<uint64_t> parseSize(const std::string& text) {
  if (text.empty() || !std::isdigit(static_cast<unsigned char>(text[0]))) return std::nullopt;
  size_t i = 0;
  const bool hex = text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
  if (hex) {
    i = 2;
    while (i < text.size() && std::isxdigit(static_cast<unsigned char>(text[i]))) ++i;
  } else {
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  }
  errno = 0;
  const unsigned long long base = std::strtoull(text.substr(0, i).c_str(), nullptr, hex ? 16 : 10);
  if (errno != 0) return std::nullopt;
  std::string suffix = text.substr(i);
  unsigned shift = 0;
  if (suffix.empty())
    shift = 0;
  else if (suffix == "K" || suffix == "KiB" || suffix == "k")
    shift = 10;
  else if (suffix == "M" || suffix == "MiB")
    shift = 20;
  else if (suffix == "G" || suffix == "GiB")
    shift = 30;
  else if (suffix == "T" || suffix == "TiB")
    shift = 40;
  else
    return std::nullopt;
  if (shift != 0 && base > (~0ULL >> shift)) return std::nullopt;
  return static_cast<uint64_t>(base) << shift;
}

}  // namespace vfiomm::sim
