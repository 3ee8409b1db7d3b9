// ConfigDump: a real function's configuration space as a user can take it
// from a Linux host — the binary sysfs `config` file (256 bytes, or 4096
// for PCI Express; read as root), or `lspci -xxx` / `lspci -xxxx` text —
// plus its BAR sizes from the sysfs `resource` file, turned into a
// PciDeviceConfig whose power-on config space is the dump's own bytes.
//
// Input files are user input: anything malformed is refused with a
// ConfigDumpError that says what is wrong and where (file:line for text,
// the byte offset for binary), never an assertion.
#pragma once

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "pci/pci_device.h"

namespace vfiomm {

class ConfigDumpError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One line of sysfs `resource`: "0x<start> 0x<end> 0x<flags>".
struct ResourceLine {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t flags = 0;
  int line = 0;  // 1-based, for messages

  // 0 for an unimplemented (all-zero) line.
  uint64_t size() const { return end == 0 && start == 0 ? 0 : end - start + 1; }
};

// include/linux/ioport.h's resource flags, as sysfs prints them.
inline constexpr uint64_t kIoresourceIo = 0x100;
inline constexpr uint64_t kIoresourceMem = 0x200;
inline constexpr uint64_t kIoresourcePrefetch = 0x2000;
inline constexpr uint64_t kIoresourceMem64 = 0x10'0000;

// A capability found by walking the chain (standard or extended).
struct CapabilityEntry {
  uint16_t offset = 0;
  uint16_t id = 0;
  bool extended = false;
};

struct ConfigDump {
  std::string file;
  bool text = false;
  // 256 or 4096 bytes.
  std::vector<uint8_t> bytes;
  // Text dumps: the 1-based line of each 16-byte row, for messages.
  std::vector<int> rowLine;

  // "file:line" of a text dump's byte, "file: byte 0x41" of a binary one.
  std::string where(uint32_t offset) const;
  uint32_t read(uint32_t offset, unsigned size) const;
};

// The file's bytes: text when every byte is printable (an lspci listing),
// else the binary sysfs file.
ConfigDump parseConfigDump(std::string_view contents, const std::string& file);
ConfigDump parseConfigBinary(std::string_view contents, const std::string& file);
ConfigDump parseLspciText(std::string_view text, const std::string& file);
std::vector<ResourceLine> parseResourceFile(std::string_view text, const std::string& file);

// The capability chains as pci_find_capability() and
// pci_find_ext_capability() walk them, refusing a loop, a pointer into the
// header or past the end, and a capability that does not fit.
std::vector<CapabilityEntry> walkCapabilities(const ConfigDump& dump);

// The device the dump describes: identity, BARs (type bits from the dump,
// sizes from `resources`), ROM, capabilities, and the raw bytes.
PciDeviceConfig deviceConfigFromDump(const ConfigDump& dump,
                                     const std::vector<ResourceLine>& resources,
                                     const std::string& resourceFile);

// Reads the files and does all of the above.
PciDeviceConfig loadDeviceFromDump(const std::string& configPath, const std::string& resourcePath);

// The whole file, or ConfigDumpError naming it.
std::string readWholeFile(const std::string& path);

}  // namespace vfiomm
