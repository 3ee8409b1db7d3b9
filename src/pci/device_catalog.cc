#include "pci/device_catalog.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <bit>
#include <filesystem>
#include <initializer_list>
#include <set>
#include <utility>

#include "base/byte_format.h"
#include "base/byte_units.h"
#include "base/page_geometry.h"
#include "pci/config_dump.h"
#include "sync/kernel_context.h"

#ifndef VFIOMM_SOURCE_DIR
#error "VFIOMM_SOURCE_DIR must name the source tree (src/CMakeLists.txt sets it)"
#endif

namespace vfiomm {

namespace {

namespace fs = std::filesystem;

// Parses one catalog file; every failure names file:line:column.
class CatalogParser {
 public:
  explicit CatalogParser(std::string file) : file_(std::move(file)) {}

  CatalogDevice parse(const YAML::Node& root) const;

 private:
  [[noreturn]] void fail(const YAML::Node& n, const std::string& msg) const {
    const YAML::Mark m = n.Mark();
    throw CatalogError(fmt::format("{}:{}:{}: {}", file_, m.line + 1, m.column + 1, msg));
  }
  void checkKeys(const YAML::Node& n, std::initializer_list<const char*> keys,
                 const std::string& what) const;
  std::string str(const YAML::Node& n, const std::string& what) const;
  uint64_t uint(const YAML::Node& n, const std::string& what) const;
  uint64_t size(const YAML::Node& n, const std::string& what) const;
  bool boolean(const YAML::Node& n, const std::string& what) const;

  PciDeviceConfig fromFields(const YAML::Node& root) const;
  PciDeviceConfig fromDump(const YAML::Node& root) const;
  BarSpec fieldBar(const YAML::Node& b) const;
  void capabilities(const YAML::Node& n, PciDeviceConfig& c) const;
  void backing(const YAML::Node& b, BarSpec& bar, unsigned index, const PciDeviceConfig& c) const;
  std::string relative(const std::string& path) const;

  std::string file_;
};

void CatalogParser::checkKeys(const YAML::Node& n, std::initializer_list<const char*> keys,
                              const std::string& what) const {
  if (!n.IsMap()) fail(n, fmt::format("{} must be a mapping", what));
  for (auto it = n.begin(); it != n.end(); ++it) {
    const std::string k = it->first.as<std::string>();
    if (std::none_of(keys.begin(), keys.end(), [&](const char* key) { return k == key; })) {
      std::string list;
      for (const char* key : keys) list += fmt::format("{}{}", list.empty() ? "" : ", ", key);
      fail(it->first, fmt::format("unknown key '{}' in {} (expected one of: {})", k, what, list));
    }
  }
}

std::string CatalogParser::str(const YAML::Node& n, const std::string& what) const {
  if (!n.IsScalar()) fail(n, fmt::format("{} must be a scalar", what));
  return n.Scalar();
}

uint64_t CatalogParser::uint(const YAML::Node& n, const std::string& what) const {
  const std::string s = str(n, what);
  size_t used = 0;
  uint64_t v = 0;
  try {
    v = std::stoull(s, &used, 0);
  } catch (const std::exception&) {
    used = 0;
  }
  if (s.empty() || s[0] == '-' || used != s.size())
    fail(n,
         fmt::format("{} must be a non-negative integer (decimal or 0x hex), not '{}'", what, s));
  return v;
}

// "64M" style: binary K/M/G/T multiples, as in scenarios.
uint64_t CatalogParser::size(const YAML::Node& n, const std::string& what) const {
  std::string s = str(n, what);
  unsigned shift = 0;
  const std::pair<const char*, unsigned> suffixes[] = {{"KiB", 10}, {"MiB", 20}, {"GiB", 30},
                                                       {"TiB", 40}, {"K", 10},   {"M", 20},
                                                       {"G", 30},   {"T", 40}};
  for (const auto& [suffix, bits] : suffixes) {
    const std::string sx = suffix;
    if (s.size() > sx.size() && s.compare(s.size() - sx.size(), sx.size(), sx) == 0) {
      s.resize(s.size() - sx.size());
      shift = bits;
      break;
    }
  }
  size_t used = 0;
  uint64_t v = 0;
  try {
    v = std::stoull(s, &used, 0);
  } catch (const std::exception&) {
    used = 0;
  }
  if (s.empty() || s[0] == '-' || used != s.size() || (shift != 0 && v > (~uint64_t{0} >> shift)))
    fail(n, fmt::format("{} must be a size like 4096, 0x1000, 256K or 64M, not '{}'", what,
                        n.Scalar()));
  return v << shift;
}

bool CatalogParser::boolean(const YAML::Node& n, const std::string& what) const {
  bool v = false;
  if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v))
    fail(n, fmt::format("{} must be true or false", what));
  return v;
}

std::string CatalogParser::relative(const std::string& path) const {
  if (fs::path(path).is_absolute()) return path;
  return (fs::path(file_).parent_path() / path).string();
}

// A BAR's backing; the registers may not overlap an MSI-X table or PBA,
// whose entries the model implements itself.
void CatalogParser::backing(const YAML::Node& b, BarSpec& bar, unsigned index,
                            const PciDeviceConfig& c) const {
  if (b["backing"]) {
    const std::string k = str(b["backing"], "backing");
    if (k == "memory")
      bar.backing = BarBacking::kMemory;
    else if (k == "registers")
      bar.backing = BarBacking::kRegisters;
    else
      fail(b["backing"], fmt::format("backing must be memory or registers, not '{}'", k));
  }
  const bool regs = bar.backing == BarBacking::kRegisters;
  if (regs && bar.kind == BarKind::kIo)
    fail(b, "an I/O BAR is the device's ports; backing applies to memory BARs");
  if (!regs && (b["registers"] || b["unimplemented"]))
    fail(b, "registers and unimplemented need backing: registers");
  if (b["unimplemented"])
    bar.unimplemented = static_cast<uint8_t>(uint(b["unimplemented"], "unimplemented") & 0xff);
  if (!b["registers"]) return;
  if (!b["registers"].IsSequence()) fail(b["registers"], "registers must be a list");
  for (const YAML::Node& r : b["registers"]) {
    checkKeys(r, {"name", "offset", "size", "reset", "writable"}, "a register");
    if (!r["name"] || !r["offset"]) fail(r, "a register needs a name and an offset");
    BarRegisterSpec spec;
    spec.name = str(r["name"], "name");
    spec.offset = uint(r["offset"], "offset");
    if (r["size"]) spec.size = static_cast<unsigned>(uint(r["size"], "size"));
    if (r["reset"]) spec.reset = uint(r["reset"], "reset");
    if (r["writable"]) spec.writable = uint(r["writable"], "writable");
    if (c.msix) {
      const MsixPba pba = msixPba(*c.msix);
      const uint64_t tableEnd = c.msix->tableOffset + uint64_t{c.msix->vectors} * kPciMsixEntrySize;
      const uint64_t pbaEnd = pba.offset + (c.msix->vectors + 63) / 64 * 8;
      const bool inTable = c.msix->bar == index && spec.offset < tableEnd &&
                           c.msix->tableOffset < spec.offset + spec.size;
      const bool inPba =
          pba.bar == index && spec.offset < pbaEnd && pba.offset < spec.offset + spec.size;
      if (inTable || inPba)
        fail(r, fmt::format("register '{}' overlaps the MSI-X {}, which the model implements",
                            spec.name, inTable ? "table" : "PBA"));
    }
    bar.registers.push_back(spec);
  }
  if (const std::string why = checkBarRegisters(bar.size, bar.registers); !why.empty())
    fail(b["registers"], why);
}

BarSpec CatalogParser::fieldBar(const YAML::Node& b) const {
  BarSpec bar;
  if (!b["size"]) fail(b, "a BAR needs a size");
  bar.size = size(b["size"], "size");
  if (b["type"]) {
    const std::string t = str(b["type"], "type");
    const std::optional<BarKind> kind = valueOf(kBarKindNames, t);
    if (!kind) fail(b["type"], fmt::format("type must be mem32, mem64 or io, not '{}'", t));
    bar.kind = *kind;
  }
  if (b["prefetchable"]) bar.prefetchable = boolean(b["prefetchable"], "prefetchable");
  if (!isPowerOfTwo(bar.size)) fail(b["size"], "a BAR's size is a power of two");
  if (bar.kind == BarKind::kIo && (bar.size < 4 || bar.size > 256 || bar.prefetchable))
    fail(b, "an I/O BAR is 4 to 256 bytes and not prefetchable");
  if (bar.kind != BarKind::kIo && bar.size < 16)
    fail(b["size"], "a memory BAR is at least 16 bytes");
  if (bar.kind == BarKind::kMem32 && bar.size > 2 * kGiB)
    fail(b["size"], "a 32-bit BAR is at most 2G");
  return bar;
}

void CatalogParser::capabilities(const YAML::Node& n, PciDeviceConfig& c) const {
  checkKeys(n, {"pm", "msi", "msix", "pcie", "sriov"}, "capabilities");
  if (const YAML::Node pm = n["pm"]) {
    checkKeys(pm, {"no_soft_reset", "d1", "d2"}, "pm");
    PmCapSpec spec;
    if (pm["no_soft_reset"]) spec.noSoftReset = boolean(pm["no_soft_reset"], "no_soft_reset");
    if (pm["d1"]) spec.d1 = boolean(pm["d1"], "d1");
    if (pm["d2"]) spec.d2 = boolean(pm["d2"], "d2");
    c.pm = spec;
  }
  if (const YAML::Node msi = n["msi"]) {
    checkKeys(msi, {"vectors", "addr64"}, "msi");
    MsiSpec spec;
    const uint64_t vectors = msi["vectors"] ? uint(msi["vectors"], "vectors") : 1;
    if (!isPowerOfTwo(vectors) || vectors > 32)
      fail(msi, "MSI asks for 1, 2, 4, 8, 16 or 32 vectors");
    spec.multipleMessageCapable = static_cast<unsigned>(std::countr_zero(vectors));
    if (msi["addr64"]) spec.addr64 = boolean(msi["addr64"], "addr64");
    c.msi = spec;
  }
  if (const YAML::Node msix = n["msix"]) {
    checkKeys(msix, {"bar", "table_offset", "vectors", "pba_bar", "pba_offset"}, "msix");
    MsixSpec spec;
    spec.bar = static_cast<unsigned>(msix["bar"] ? uint(msix["bar"], "bar") : 0);
    if (msix["table_offset"])
      spec.tableOffset = static_cast<uint32_t>(uint(msix["table_offset"], "table_offset"));
    if (msix["vectors"]) spec.vectors = static_cast<unsigned>(uint(msix["vectors"], "vectors"));
    if (msix["pba_bar"] || msix["pba_offset"])
      spec.pba = MsixPba{
          static_cast<unsigned>(msix["pba_bar"] ? uint(msix["pba_bar"], "pba_bar") : spec.bar),
          static_cast<uint32_t>(msix["pba_offset"] ? uint(msix["pba_offset"], "pba_offset") : 0)};
    const MsixPba pba = msixPba(spec);
    for (unsigned bir : {spec.bar, pba.bar})
      if (bir >= kPciStdNumBars || !c.bars[bir] || c.bars[bir]->kind == BarKind::kIo)
        fail(msix,
             fmt::format("the MSI-X table and PBA live in memory BARs; BAR{} is not one", bir));
    if (spec.vectors < 1 || spec.vectors > 2048 || spec.tableOffset % 8 != 0 || pba.offset % 8 != 0)
      fail(msix, "MSI-X has 1 to 2048 vectors and 8-byte aligned table and PBA offsets");
    if (spec.tableOffset + uint64_t{spec.vectors} * kPciMsixEntrySize > c.bars[spec.bar]->size ||
        pba.offset + (spec.vectors + 63) / 64 * 8 > c.bars[pba.bar]->size)
      fail(msix, "the MSI-X table or PBA runs past its BAR");
    c.msix = spec;
  }
  if (const YAML::Node pcie = n["pcie"]) {
    checkKeys(pcie, {"flr", "atomic_completer"}, "pcie");
    PcieCapSpec spec;
    if (pcie["flr"]) spec.flr = boolean(pcie["flr"], "flr");
    if (const YAML::Node a = pcie["atomic_completer"]) {
      if (!a.IsSequence()) fail(a, "atomic_completer is a list of widths: [32, 64, 128]");
      for (const YAML::Node& w : a) {
        const uint64_t width = uint(w, "an atomic width");
        if (width == 32)
          spec.atomicCompleter |= kPciExpDevcap2AtomicComp32;
        else if (width == 64)
          spec.atomicCompleter |= kPciExpDevcap2AtomicComp64;
        else if (width == 128)
          spec.atomicCompleter |= kPciExpDevcap2AtomicComp128;
        else
          fail(w, "an AtomicOp completer width is 32, 64 or 128");
      }
    }
    c.pcie = spec;
  }
  if (n["sriov"]) c.sriovPf = boolean(n["sriov"], "sriov");
  if (c.sriovPf && !c.pcie) fail(n["sriov"], "an SR-IOV PF is a PCI Express function: add pcie");
}

// The config space a synthetic device with these fields powers on with,
// patched with the identity registers the fields name: the catalog device
// then reads back exactly what its file says.
std::vector<uint8_t> imageOf(const PciDeviceConfig& c, uint8_t revision, uint16_t subVendor,
                             uint16_t subDevice) {
  // Built only to read its power-on image, on no kernel: its locks and
  // counters run on a scratch context.
  KernelContext scratch;
  const KernelContext::Scope in(scratch);
  const PciDevice dev(c);
  std::vector<uint8_t> bytes(dev.configSize());
  for (uint32_t off = 0; off < bytes.size(); off += 4) {
    const uint32_t v = dev.configRead(off, 4).value_or(0);
    for (unsigned i = 0; i < 4; ++i) bytes[off + i] = static_cast<uint8_t>(v >> (8 * i));
  }
  bytes[kPciClassRevision] = revision;
  bytes[kPciSubsystemVendorId] = static_cast<uint8_t>(subVendor);
  bytes[kPciSubsystemVendorId + 1] = static_cast<uint8_t>(subVendor >> 8);
  bytes[kPciSubsystemId] = static_cast<uint8_t>(subDevice);
  bytes[kPciSubsystemId + 1] = static_cast<uint8_t>(subDevice >> 8);
  return bytes;
}

PciDeviceConfig CatalogParser::fromFields(const YAML::Node& root) const {
  PciDeviceConfig c;
  for (const char* key : {"vendor", "device", "class", "bars"})
    if (!root[key])
      fail(root, fmt::format("a device described by fields needs '{}' (or give "
                             "config_dump and resource)",
                             key));
  c.vendorId = static_cast<uint16_t>(uint(root["vendor"], "vendor"));
  c.deviceId = static_cast<uint16_t>(uint(root["device"], "device"));
  c.classCode = static_cast<uint32_t>(uint(root["class"], "class"));
  if (c.classCode >= (1U << 24)) fail(root["class"], "class is 24 bits: base, sub-class, prog-if");
  if (root["interrupt_pin"]) {
    const uint64_t pin = uint(root["interrupt_pin"], "interrupt_pin");
    if (pin > 4) fail(root["interrupt_pin"], "interrupt_pin is 0 (none) or 1-4 (INTA-INTD)");
    c.interruptPin = static_cast<uint8_t>(pin);
  }
  if (!root["bars"].IsSequence()) fail(root["bars"], "bars must be a list");
  for (const YAML::Node& b : root["bars"]) {
    checkKeys(b, {"index", "size", "type", "prefetchable", "backing", "unimplemented", "registers"},
              "a BAR");
    if (!b["index"]) fail(b, "a BAR needs an index (0-5)");
    const uint64_t index = uint(b["index"], "index");
    if (index >= kPciStdNumBars) fail(b["index"], "a BAR index is 0 to 5");
    if (c.bars[index] ||
        (index > 0 && c.bars[index - 1] && c.bars[index - 1]->kind == BarKind::kMem64))
      fail(b["index"], fmt::format("BAR{} is already taken", index));
    c.bars[index] = fieldBar(b);
    if (c.bars[index]->kind == BarKind::kMem64 &&
        (index + 1 == kPciStdNumBars || c.bars[index + 1]))
      fail(b["index"], "a 64-bit BAR takes the next slot too, which must be free");
  }
  if (root["rom"]) {
    const uint64_t rom = size(root["rom"], "rom");
    if (!isPowerOfTwo(rom) || rom < 2048 || rom > (16 << 20))
      fail(root["rom"], "a ROM is a power of two from 2K to 16M");
    c.romSize = rom;
  }
  if (root["capabilities"]) capabilities(root["capabilities"], c);
  // Backing after the capabilities: registers must keep clear of MSI-X.
  for (const YAML::Node& b : root["bars"]) {
    const auto index = static_cast<unsigned>(uint(b["index"], "index"));
    backing(b, *c.bars[index], index, c);
  }
  const auto revision =
      static_cast<uint8_t>(root["revision"] ? uint(root["revision"], "revision") : 0);
  const auto subVendor = static_cast<uint16_t>(
      root["subsystem_vendor"] ? uint(root["subsystem_vendor"], "subsystem_vendor") : c.vendorId);
  const auto subDevice =
      static_cast<uint16_t>(root["subsystem"] ? uint(root["subsystem"], "subsystem") : c.deviceId);
  c.configImage = imageOf(c, revision, subVendor, subDevice);
  return c;
}

PciDeviceConfig CatalogParser::fromDump(const YAML::Node& root) const {
  for (const char* key : {"vendor", "device", "class", "revision", "subsystem_vendor", "subsystem",
                          "interrupt_pin", "rom", "capabilities"})
    if (root[key]) fail(root[key], fmt::format("'{}' comes from the dump; drop it", key));
  if (!root["resource"]) fail(root, "config_dump needs resource (the sysfs resource file)");
  PciDeviceConfig c;
  try {
    c = loadDeviceFromDump(relative(str(root["config_dump"], "config_dump")),
                           relative(str(root["resource"], "resource")));
  } catch (const ConfigDumpError& e) {
    fail(root["config_dump"], e.what());
  }
  if (!root["bars"]) return c;
  if (!root["bars"].IsSequence()) fail(root["bars"], "bars must be a list");
  for (const YAML::Node& b : root["bars"]) {
    checkKeys(b, {"index", "backing", "unimplemented", "registers"}, "a BAR of a dumped device");
    if (!b["index"]) fail(b, "a BAR needs an index (0-5)");
    const uint64_t index = uint(b["index"], "index");
    if (index >= kPciStdNumBars || !c.bars[index])
      fail(b["index"], fmt::format("the dump has no BAR{}", index));
    backing(b, *c.bars[index], static_cast<unsigned>(index), c);
  }
  return c;
}

CatalogDevice CatalogParser::parse(const YAML::Node& root) const {
  checkKeys(
      root,
      {"name", "description", "source", "config_dump", "resource", "vendor", "device", "class",
       "revision", "subsystem_vendor", "subsystem", "interrupt_pin", "bars", "rom", "capabilities"},
      "a catalog device");
  CatalogDevice d;
  d.file = file_;
  if (!root["name"]) fail(root, "a catalog device needs a name");
  d.name = str(root["name"], "name");
  if (root["description"]) d.description = str(root["description"], "description");
  if (!root["source"]) fail(root, "say where the numbers come from: a source key");
  d.source = str(root["source"], "source");
  d.config = root["config_dump"] ? fromDump(root) : fromFields(root);
  return d;
}

std::string capabilityName(const CapabilityEntry& cap) {
  if (cap.extended) {
    switch (cap.id) {
      case kPciExtCapIdErr: return "AER";
      case kPciExtCapIdPwr: return "PwrBudget";
      case 0x0b: return "ext-vendor";
      case 0x0e: return "ARI";
      case 0x0f: return "ATS";
      case 0x10: return "SR-IOV";
      case 0x13: return "PRI";
      case 0x15: return "ReBAR";
      case 0x19: return "SecPCIe";
      case 0x1b: return "PASID";
      default: return fmt::format("ext {:#06x}", cap.id);
    }
  }
  switch (cap.id) {
    case kPciCapIdPm: return "PM";
    case kPciCapIdVpd: return "VPD";
    case kPciCapIdMsi: return "MSI";
    case kPciCapIdPcix: return "PCI-X";
    case kPciCapIdVndr: return "vendor";
    case kPciCapIdExp: return "PCIe";
    case kPciCapIdMsix: return "MSI-X";
    case kPciCapIdAf: return "AF";
    default: return fmt::format("cap {:#04x}", cap.id);
  }
}

}  // namespace

CatalogDevice loadCatalogDevice(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw CatalogError(fmt::format("{}: cannot open", path));
  } catch (const YAML::Exception& e) {
    throw CatalogError(
        fmt::format("{}:{}:{}: {}", path, e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  return CatalogParser(path).parse(root);
}

DeviceCatalog DeviceCatalog::load(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw CatalogError(fmt::format("{}: no such device catalog directory", dir));
  std::vector<std::string> files;
  for (const fs::directory_entry& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".yaml") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  DeviceCatalog catalog;
  for (const std::string& f : files) {
    CatalogDevice d = loadCatalogDevice(f);
    if (const CatalogDevice* other = catalog.find(d.name))
      throw CatalogError(
          fmt::format("{}: device '{}' is already defined in {}", f, d.name, other->file));
    catalog.devices_.push_back(std::move(d));
  }
  std::sort(catalog.devices_.begin(), catalog.devices_.end(),
            [](const CatalogDevice& a, const CatalogDevice& b) { return a.name < b.name; });
  return catalog;
}

const CatalogDevice* DeviceCatalog::find(const std::string& name) const {
  for (const CatalogDevice& d : devices_)
    if (d.name == name) return &d;
  return nullptr;
}

std::string defaultDevicesDir() { return std::string(VFIOMM_SOURCE_DIR) + "/devices"; }

namespace {
std::string& devicesDirSetting() {
  static std::string dir = defaultDevicesDir();
  return dir;
}
}  // namespace

const std::string& devicesDir() { return devicesDirSetting(); }

void setDevicesDir(std::string dir) { devicesDirSetting() = std::move(dir); }

std::string describeCatalogDevice(const CatalogDevice& dev) {
  const PciDeviceConfig& c = dev.config;
  std::string out =
      fmt::format("{}  {:04x}:{:04x} class {:06x}", dev.name, c.vendorId, c.deviceId, c.classCode);
  if (!dev.description.empty()) out += "  " + dev.description;
  out += "\n";
  for (unsigned bar = 0; bar < kPciStdNumBars; ++bar) {
    if (!c.bars[bar]) continue;
    const BarSpec& b = *c.bars[bar];
    const char* kind = b.kind == BarKind::kIo      ? "io"
                       : b.kind == BarKind::kMem64 ? "mem64"
                                                   : "mem32";
    out += fmt::format("    BAR{} {}{} {}", bar, kind, b.prefetchable ? " prefetchable" : "",
                       formatBytes(b.size, ByteStyle::kIec));
    if (b.kind != BarKind::kIo)
      out += b.backing == BarBacking::kRegisters
                 ? fmt::format(" registers ({} described)", b.registers.size())
                 : std::string(" memory");
    out += "\n";
  }
  if (c.romSize) out += fmt::format("    ROM {}\n", formatBytes(*c.romSize, ByteStyle::kIec));
  ConfigDump dump;
  dump.bytes = c.configImage;
  std::string caps;
  for (const CapabilityEntry& cap : walkCapabilities(dump))
    caps += fmt::format("{}{}@{:#x}", caps.empty() ? "" : " ", capabilityName(cap), cap.offset);
  out += fmt::format("    caps: {}\n", caps.empty() ? "none" : caps);
  return out;
}

std::string listCatalog(const std::string& dir) {
  const DeviceCatalog catalog = DeviceCatalog::load(dir);
  std::string out = fmt::format("{} devices in {}\n", catalog.devices().size(), dir);
  for (const CatalogDevice& d : catalog.devices()) out += describeCatalogDevice(d);
  return out;
}

}  // namespace vfiomm
