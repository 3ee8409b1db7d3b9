#include "pci/config_dump.h"

#include <fmt/format.h>

#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

#include "base/page_geometry.h"

namespace vfiomm {

namespace {

constexpr uint32_t kRowBytes = 16;
// What a non-root read of sysfs `config` (and `lspci -x`) returns: the
// kernel gives unprivileged readers only the standard header.
constexpr size_t kUnprivilegedBytes = 64;
constexpr uint32_t kCapStart = 0x40;  // capabilities live after the type 0 header
constexpr size_t kStdResourceLines = kPciStdNumBars + 1;  // BAR0-5 and the ROM

[[noreturn]] void refuse(const std::string& msg) { throw ConfigDumpError(msg); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> splitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    lines.push_back(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return lines;
}

std::vector<std::string_view> splitWords(std::string_view line) {
  std::vector<std::string_view> words;
  line = trim(line);
  while (!line.empty()) {
    size_t end = 0;
    while (end < line.size() && !std::isspace(static_cast<unsigned char>(line[end]))) ++end;
    words.push_back(line.substr(0, end));
    line = trim(line.substr(end));
  }
  return words;
}

// Hex digits only (no prefix, no sign), at most 16 of them.
bool parseHex(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 16) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
    const int digit = std::isdigit(static_cast<unsigned char>(c))
                          ? c - '0'
                          : std::tolower(static_cast<unsigned char>(c)) - 'a' + 10;
    v = (v << 4) | static_cast<uint64_t>(digit);
  }
  out = v;
  return true;
}

bool isPrintableText(std::string_view contents) {
  for (char c : contents) {
    const auto u = static_cast<unsigned char>(c);
    if (!std::isprint(u) && c != '\n' && c != '\r' && c != '\t') return false;
  }
  return true;
}

// "01:00.0 VGA compatible controller: ..." or "0000:01:00.0 ...".
bool isDeviceHeader(std::string_view line) {
  const std::vector<std::string_view> w = splitWords(line);
  if (w.empty()) return false;
  const std::string_view bdf = w[0];
  const size_t dot = bdf.rfind('.');
  return dot != std::string_view::npos && dot + 2 == bdf.size() && bdf.find(':') < dot;
}

// A dump row "00: 10 de ..." / "ff0: ...": the row's offset, or npos.
bool splitRow(std::string_view line, std::string_view& offset, std::string_view& rest) {
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 3) return false;
  uint64_t ignored = 0;
  if (!parseHex(line.substr(0, colon), ignored)) return false;
  offset = line.substr(0, colon);
  rest = line.substr(colon + 1);
  return true;
}

std::string hex(uint64_t v) { return fmt::format("{:#x}", v); }

}  // namespace

// --- the dump --------------------------------------------------------------------

std::string ConfigDump::where(uint32_t offset) const {
  if (text && offset / kRowBytes < rowLine.size())
    return fmt::format("{}:{}: byte {:#x}", file, rowLine[offset / kRowBytes], offset);
  return fmt::format("{}: byte {:#x}", file, offset);
}

uint32_t ConfigDump::read(uint32_t offset, unsigned size) const {
  uint32_t v = 0;
  for (unsigned i = 0; i < size; ++i)
    if (offset + i < bytes.size()) v |= uint32_t{bytes[offset + i]} << (8 * i);
  return v;
}

ConfigDump parseConfigBinary(std::string_view contents, const std::string& file) {
  if (contents.size() == kUnprivilegedBytes)
    refuse(
        fmt::format("{}: 64 bytes is the header alone, what a non-root read of sysfs config "
                    "(or lspci -x) returns; read the config file as root to get 256 or 4096 "
                    "bytes",
                    file));
  if (contents.size() != kPciCfgSpaceSize && contents.size() != kPciCfgSpaceExpSize)
    refuse(
        fmt::format("{}: {} bytes; a sysfs config file has 256 (PCI) or 4096 (PCI Express) "
                    "bytes",
                    file, contents.size()));
  ConfigDump d;
  d.file = file;
  d.bytes.assign(contents.begin(), contents.end());
  return d;
}

ConfigDump parseLspciText(std::string_view text, const std::string& file) {
  ConfigDump d;
  d.file = file;
  d.text = true;
  bool header = false;
  const std::vector<std::string_view> lines = splitLines(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    const int lineNo = static_cast<int>(i + 1);
    const std::string_view line = trim(lines[i]);
    // Blank lines, and '#' comments saying where a dump came from.
    if (line.empty() || line.front() == '#') continue;
    if (isDeviceHeader(line)) {
      if (header || !d.bytes.empty())
        refuse(fmt::format("{}:{}: a second device; a dump holds one function", file, lineNo));
      header = true;
      continue;
    }
    std::string_view offsetText;
    std::string_view rest;
    if (!splitRow(line, offsetText, rest)) {
      // lspci -v details between the header and the hex rows are indented.
      const bool detail = std::isspace(static_cast<unsigned char>(lines[i].front())) != 0;
      if (d.bytes.empty() && header && detail) continue;
      refuse(
          fmt::format("{}:{}: expected a row like '00: 86 80 ...' (offset, colon, 16 hex "
                      "bytes), not '{}'",
                      file, lineNo, line));
    }
    uint64_t offset = 0;
    parseHex(offsetText, offset);
    if (offset != d.bytes.size())
      refuse(
          fmt::format("{}:{}: row at offset {:#x}, expected {:#x}: rows must be consecutive "
                      "from 00",
                      file, lineNo, offset, d.bytes.size()));
    if (offset >= kPciCfgSpaceExpSize)
      refuse(fmt::format("{}:{}: row at offset {:#x} is past config space (0xff0 is the last)",
                         file, lineNo, offset));
    const std::vector<std::string_view> words = splitWords(rest);
    if (words.size() != kRowBytes)
      refuse(
          fmt::format("{}:{}: {} bytes in the row; each row has 16", file, lineNo, words.size()));
    for (size_t b = 0; b < words.size(); ++b) {
      uint64_t v = 0;
      if (words[b].size() != 2 || !parseHex(words[b], v))
        refuse(fmt::format("{}:{}: byte {:#x} is '{}', not two hex digits", file, lineNo,
                           offset + b, words[b]));
      d.bytes.push_back(static_cast<uint8_t>(v));
    }
    d.rowLine.push_back(lineNo);
  }
  if (d.bytes.empty())
    refuse(fmt::format("{}: no hex rows (is this an lspci -xxx listing?)", file));
  if (d.bytes.size() == kUnprivilegedBytes)
    refuse(
        fmt::format("{}: only 64 bytes (rows 00-30): that is lspci -x, or lspci run as a "
                    "normal user, which sees the header alone; run lspci -xxx (256 bytes) or "
                    "-xxxx (4096) as root",
                    file));
  if (d.bytes.size() != kPciCfgSpaceSize && d.bytes.size() != kPciCfgSpaceExpSize)
    refuse(
        fmt::format("{}: the rows end at {:#x}; a dump has 256 bytes (lspci -xxx, rows "
                    "00-f0) or 4096 (lspci -xxxx, rows 00-ff0)",
                    file, d.bytes.size()));
  return d;
}

ConfigDump parseConfigDump(std::string_view contents, const std::string& file) {
  if (!contents.empty() && isPrintableText(contents)) return parseLspciText(contents, file);
  return parseConfigBinary(contents, file);
}

std::vector<ResourceLine> parseResourceFile(std::string_view text, const std::string& file) {
  std::vector<ResourceLine> out;
  const std::vector<std::string_view> lines = splitLines(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    const int lineNo = static_cast<int>(i + 1);
    const std::string_view line = trim(lines[i]);
    if (line.empty() || line.front() == '#') continue;
    const std::vector<std::string_view> w = splitWords(line);
    ResourceLine r;
    r.line = lineNo;
    uint64_t* fields[] = {&r.start, &r.end, &r.flags};
    if (w.size() != 3)
      refuse(fmt::format("{}:{}: expected '0x<start> 0x<end> 0x<flags>', found {} fields", file,
                         lineNo, w.size()));
    for (size_t f = 0; f < 3; ++f)
      if (w[f].size() < 3 || w[f].substr(0, 2) != "0x" || !parseHex(w[f].substr(2), *fields[f]))
        refuse(fmt::format("{}:{}: '{}' is not a 0x-prefixed hex number", file, lineNo, w[f]));
    if (r.size() != 0 && r.end < r.start)
      refuse(
          fmt::format("{}:{}: end {} is below start {}", file, lineNo, hex(r.end), hex(r.start)));
    out.push_back(r);
  }
  if (out.size() < kStdResourceLines)
    refuse(fmt::format("{}: {} lines; the resource file has at least 7 (BAR0-5 and the ROM)", file,
                       out.size()));
  return out;
}

// --- capability chains ------------------------------------------------------------------

namespace {

// The bytes a capability needs, from its header to its last register the
// model reads; 2 (the header) for the rest.
uint32_t capabilityMinSize(const ConfigDump& dump, uint32_t pos, uint16_t id) {
  switch (id) {
    case kPciCapIdPm: return kPciPmSizeof;
    case kPciCapIdMsix: return kPciCapMsixSizeof;
    case kPciCapIdExp: return 0x2c;  // through DEVCAP2/DEVCTL2
    case kPciCapIdMsi: return (dump.read(pos + 2, 2) & 0x80) != 0 ? 14 : 10;
    case kPciCapIdVndr: return 3;  // header and length byte
    default: return 2;
  }
}

void walkStandard(const ConfigDump& dump, std::vector<CapabilityEntry>& out) {
  if ((dump.read(kPciStatus, 2) & kPciStatusCapList) == 0) return;
  uint32_t from = kPciCapabilityList;
  uint32_t pos = dump.read(kPciCapabilityList, 1);
  std::set<uint32_t> seen;
  while (pos != 0) {
    if (pos < kCapStart)
      refuse(
          fmt::format("{}: capability pointer {:#x} points into the header (capabilities "
                      "start at 0x40)",
                      dump.where(from), pos));
    if (pos % 4 != 0)
      refuse(
          fmt::format("{}: capability pointer {:#x} is not dword aligned", dump.where(from), pos));
    if (!seen.insert(pos).second)
      refuse(fmt::format("{}: capability pointer loop: {:#x} is already in the chain",
                         dump.where(from), pos));
    const auto id = static_cast<uint16_t>(dump.read(pos + kPciCapListId, 1));
    if (pos + capabilityMinSize(dump, pos, id) > kPciCfgSpaceSize)
      refuse(
          fmt::format("{}: capability {:#04x} at {:#x} runs past 0xff", dump.where(pos), id, pos));
    out.push_back({static_cast<uint16_t>(pos), id, false});
    from = pos + kPciCapListNext;
    pos = dump.read(from, 1);
  }
}

void walkExtended(const ConfigDump& dump, std::vector<CapabilityEntry>& out) {
  if (dump.bytes.size() <= kPciCfgSpaceSize) return;
  uint32_t pos = kPciExtCapStart;
  uint32_t from = kPciExtCapStart;
  std::set<uint32_t> seen;
  for (;;) {
    const uint32_t header = dump.read(pos, 4);
    // No extended capabilities: all zeros, or all ones from a
    // conventional function behind a PCIe bridge.
    if (header == 0 || header == 0xffff'ffff) return;
    if (!seen.insert(pos).second)
      refuse(fmt::format("{}: extended capability pointer loop: {:#x} is already in the chain",
                         dump.where(from), pos));
    out.push_back({static_cast<uint16_t>(pos), static_cast<uint16_t>(header & 0xffff), true});
    const uint32_t next = header >> 20;
    if (next == 0) return;
    if (next < kPciExtCapStart || next % 4 != 0 || next + 4 > kPciCfgSpaceExpSize)
      refuse(
          fmt::format("{}: extended capability pointer {:#x} is outside 0x100-0xffc or not "
                      "dword aligned",
                      dump.where(pos + 2), next));
    from = pos + 2;
    pos = next;
  }
}

}  // namespace

std::vector<CapabilityEntry> walkCapabilities(const ConfigDump& dump) {
  std::vector<CapabilityEntry> caps;
  walkStandard(dump, caps);
  walkExtended(dump, caps);
  return caps;
}

// --- from dump to device -------------------------------------------------------------------

namespace {

std::string barName(unsigned bar) {
  return bar == kPciRomResource ? std::string("the ROM") : fmt::format("BAR{}", bar);
}

// The BAR as the dump's register type bits and the resource line agree on
// it; nullopt when unimplemented.
std::optional<BarSpec> barFromDump(const ConfigDump& dump, const ResourceLine& r, unsigned bar,
                                   const std::string& resourceFile) {
  const uint64_t size = r.size();
  if (size == 0) return std::nullopt;
  const std::string at = fmt::format("{}:{}: {}", resourceFile, r.line, barName(bar));
  const uint32_t reg = dump.read(pciBaseAddress(bar), 4);
  const bool io = (reg & kPciBaseAddressSpaceIo) != 0;
  if (io != ((r.flags & kIoresourceIo) != 0) || io == ((r.flags & kIoresourceMem) != 0))
    refuse(
        fmt::format("{} is {} in the resource file (flags {}) but {} in the dump ({} = {:#010x})",
                    at, (r.flags & kIoresourceIo) != 0 ? "I/O" : "memory", hex(r.flags),
                    io ? "I/O" : "memory", dump.where(pciBaseAddress(bar)), reg));
  if (!isPowerOfTwo(size))
    refuse(fmt::format("{}: size {} ({} - {} + 1) is not a power of two", at, hex(size), hex(r.end),
                       hex(r.start)));
  BarSpec b;
  b.size = size;
  if (io) {
    if (size < 4 || size > 256)
      refuse(
          fmt::format("{}: an I/O BAR of {} bytes; the model's I/O BARs are 4 to 256", at, size));
    b.kind = BarKind::kIo;
    return b;
  }
  const uint32_t type = reg & 0x6;
  if (type != 0 && type != kPciBaseAddressMemType64)
    refuse(fmt::format("{}: memory type bits {:#x} are reserved (0 = 32-bit, 4 = 64-bit)",
                       dump.where(pciBaseAddress(bar)), type));
  b.kind = type == kPciBaseAddressMemType64 ? BarKind::kMem64 : BarKind::kMem32;
  b.prefetchable = (reg & kPciBaseAddressMemPrefetch) != 0;
  if ((b.kind == BarKind::kMem64) != ((r.flags & kIoresourceMem64) != 0))
    refuse(fmt::format("{} is {} in the resource file but {} in the dump ({} = {:#010x})", at,
                       (r.flags & kIoresourceMem64) != 0 ? "64-bit" : "32-bit",
                       b.kind == BarKind::kMem64 ? "64-bit" : "32-bit",
                       dump.where(pciBaseAddress(bar)), reg));
  if (b.prefetchable != ((r.flags & kIoresourcePrefetch) != 0))
    refuse(fmt::format("{} is {}prefetchable in the resource file but {}prefetchable in the dump",
                       at, (r.flags & kIoresourcePrefetch) != 0 ? "" : "not ",
                       b.prefetchable ? "" : "not "));
  if (size < 16) refuse(fmt::format("{}: a memory BAR of {} bytes (at least 16)", at, size));
  if (b.kind == BarKind::kMem32 && size > (uint64_t{2} << 30))
    refuse(fmt::format("{}: a 32-bit BAR of {} bytes (at most 2 GiB)", at, hex(size)));
  return b;
}

void barsFromDump(const ConfigDump& dump, const std::vector<ResourceLine>& res,
                  const std::string& resourceFile, PciDeviceConfig& c) {
  for (unsigned bar = 0; bar < kPciStdNumBars; ++bar) {
    if (bar > 0 && c.bars[bar - 1] && c.bars[bar - 1]->kind == BarKind::kMem64) {
      if (res[bar].size() != 0)
        refuse(fmt::format("{}:{}: BAR{} is the upper half of 64-bit BAR{} but has a resource",
                           resourceFile, res[bar].line, bar, bar - 1));
      continue;
    }
    c.bars[bar] = barFromDump(dump, res[bar], bar, resourceFile);
    if (c.bars[bar] && c.bars[bar]->kind == BarKind::kMem64 && bar + 1 == kPciStdNumBars)
      refuse(fmt::format("{}: BAR5 cannot be 64-bit", dump.where(pciBaseAddress(bar))));
  }
  const ResourceLine& rom = res[kPciRomResource];
  if (rom.size() == 0) return;
  if (!isPowerOfTwo(rom.size()) || rom.size() < 2048 || rom.size() > (16 << 20))
    refuse(fmt::format("{}:{}: the ROM's size {} is not a power of two from 2 KiB to 16 MiB",
                       resourceFile, rom.line, hex(rom.size())));
  c.romSize = rom.size();
}

void msixFromDump(const ConfigDump& dump, uint32_t pos, PciDeviceConfig& c) {
  const uint32_t table = dump.read(pos + kPciMsixTable, 4);
  const uint32_t pba = dump.read(pos + kPciMsixPba, 4);
  MsixSpec m;
  m.bar = table & kPciMsixTableBir;
  m.tableOffset = table & kPciMsixTableOffset;
  m.vectors = (dump.read(pos + kPciMsixFlags, 2) & kPciMsixFlagsQsize) + 1U;
  m.pba = MsixPba{pba & kPciMsixTableBir, pba & kPciMsixTableOffset};
  for (unsigned bir : {m.bar, m.pba->bar}) {
    if (bir >= kPciStdNumBars || !c.bars[bir] || c.bars[bir]->kind == BarKind::kIo)
      refuse(fmt::format("{}: the MSI-X table or PBA is in BAR{}, which is not a memory BAR",
                         dump.where(pos + kPciMsixTable), bir));
  }
  if (uint64_t{m.tableOffset} + uint64_t{m.vectors} * kPciMsixEntrySize > c.bars[m.bar]->size)
    refuse(fmt::format("{}: the MSI-X table ({} vectors at {:#x}) runs past BAR{} ({} bytes)",
                       dump.where(pos + kPciMsixTable), m.vectors, m.tableOffset, m.bar,
                       c.bars[m.bar]->size));
  if (uint64_t{m.pba->offset} + (m.vectors + 63) / 64 * 8 > c.bars[m.pba->bar]->size)
    refuse(fmt::format("{}: the MSI-X PBA at {:#x} runs past BAR{}", dump.where(pos + kPciMsixPba),
                       m.pba->offset, m.pba->bar));
  c.msix = m;
}

void capabilitiesFromDump(const ConfigDump& dump, PciDeviceConfig& c) {
  for (const CapabilityEntry& cap : walkCapabilities(dump)) {
    const uint32_t pos = cap.offset;
    if (cap.extended) {
      if (cap.id == kPciExtCapIdSriov) c.sriovPf = true;
      continue;
    }
    switch (cap.id) {
      case kPciCapIdPm: {
        const uint32_t pmc = dump.read(pos + kPciPmPmc, 2);
        c.pm =
            PmCapSpec{.noSoftReset = (dump.read(pos + kPciPmCtrl, 2) & kPciPmCtrlNoSoftReset) != 0,
                      .d1 = (pmc & kPciPmCapD1) != 0,
                      .d2 = (pmc & kPciPmCapD2) != 0};
        break;
      }
      case kPciCapIdMsi: {
        const uint32_t flags = dump.read(pos + kPciMsiFlags, 2);
        const uint32_t mmc = (flags & kPciMsiFlagsQmask) >> 1;
        if (mmc > 5)
          refuse(fmt::format("{}: MSI Multiple Message Capable {} is reserved (0-5)",
                             dump.where(pos + kPciMsiFlags), mmc));
        c.msi = MsiSpec{.multipleMessageCapable = mmc, .addr64 = (flags & kPciMsiFlags64Bit) != 0};
        break;
      }
      case kPciCapIdMsix: msixFromDump(dump, pos, c); break;
      case kPciCapIdExp: {
        const uint32_t devcap = dump.read(pos + kPciExpDevcap, 4);
        const uint32_t devcap2 = dump.read(pos + kPciExpDevcap2, 4);
        c.pcie = PcieCapSpec{
            .flr = (devcap & kPciExpDevcapFlr) != 0,
            .atomicCompleter = devcap2 & (kPciExpDevcap2AtomicComp32 | kPciExpDevcap2AtomicComp64 |
                                          kPciExpDevcap2AtomicComp128)};
        break;
      }
      default: break;  // vendor-specific and others: raw bytes only
    }
  }
  if (c.sriovPf && !c.pcie)
    refuse(fmt::format("{}: an SR-IOV capability without a PCI Express capability", dump.file));
}

}  // namespace

PciDeviceConfig deviceConfigFromDump(const ConfigDump& dump,
                                     const std::vector<ResourceLine>& resources,
                                     const std::string& resourceFile) {
  const uint32_t headerType = dump.read(0x0e, 1) & 0x7f;
  if (headerType != 0)
    refuse(
        fmt::format("{}: header type {} (a bridge or CardBus); the model has endpoints "
                    "(type 0)",
                    dump.where(0x0e), headerType));
  PciDeviceConfig c;
  c.vendorId = static_cast<uint16_t>(dump.read(kPciVendorId, 2));
  c.deviceId = static_cast<uint16_t>(dump.read(kPciDeviceId, 2));
  if (c.vendorId == 0xffff || c.vendorId == 0)
    refuse(fmt::format("{}: vendor ID {:#06x}: no function answered when this was dumped",
                       dump.where(0), c.vendorId));
  c.classCode = dump.read(kPciClassRevision, 4) >> 8;
  c.interruptPin = static_cast<uint8_t>(dump.read(kPciInterruptPin, 1));
  if (c.interruptPin > 4)
    refuse(fmt::format("{}: Interrupt Pin {} (0 none, 1-4 INTA-INTD)", dump.where(kPciInterruptPin),
                       c.interruptPin));
  barsFromDump(dump, resources, resourceFile, c);
  capabilitiesFromDump(dump, c);
  c.configImage = dump.bytes;
  return c;
}

std::string readWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigDumpError(fmt::format("{}: cannot open", path));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

PciDeviceConfig loadDeviceFromDump(const std::string& configPath, const std::string& resourcePath) {
  const ConfigDump dump = parseConfigDump(readWholeFile(configPath), configPath);
  return deviceConfigFromDump(dump, parseResourceFile(readWholeFile(resourcePath), resourcePath),
                              resourcePath);
}

}  // namespace vfiomm
