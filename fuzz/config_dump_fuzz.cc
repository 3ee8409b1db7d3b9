// Config-space dumps are outside input (a user's sysfs `config` file or
// `lspci -xxxx` text, plus the `resource` file): the loader must either
// refuse them with a ConfigDumpError or produce a device the model can
// build, bind to vfio-pci, open and read through the virtualized config
// region — whatever its capability chain looks like. The input is the dump,
// then "\n--resource--\n", then the resource file.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "kernel/kernel.h"
#include "pci/config_dump.h"
#include "uapi/process.h"
#include "vfio/vfio_device.h"

namespace {

using namespace vfiomm;

constexpr std::string_view kSeparator = "\n--resource--\n";

void exercise(const PciDeviceConfig& config) {
  auto kernel = *Kernel::create(KernelConfig{});
  PciDeviceConfig c = config;
  c.bus = 1;
  auto dev = kernel->addVfioDevice(kernel->addBus(1), c);
  if (!dev) return;  // the host cannot place its BARs: an errno, fine
  auto proc = Process::spawn(*kernel, "fuzz");
  const long container = proc->open("/dev/vfio/vfio", O_RDWR);
  const long group = proc->open(kernel->groupPath(**dev), O_RDWR);
  int cfd = static_cast<int>(container);
  proc->ioctl(static_cast<int>(group), uapi::VFIO_GROUP_SET_CONTAINER, &cfd);
  const long fd = proc->ioctl(static_cast<int>(group), uapi::VFIO_GROUP_GET_DEVICE_FD,
                              const_cast<char*>((*dev)->name().c_str()));
  if (fd < 0) return;
  const uint64_t base = uapi::VFIO_PCI_INDEX_TO_OFFSET(uapi::VFIO_PCI_CONFIG_REGION_INDEX);
  uint8_t byte = 0;
  for (uint32_t off = 0; off < (*dev)->pdev().configSize(); ++off)
    proc->pread(static_cast<int>(fd), &byte, 1, base + off);
  uint32_t dword = 0;
  for (uint32_t off = 0; off < (*dev)->pdev().configSize(); off += 4)
    proc->pread(static_cast<int>(fd), &dword, 4, base + off);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t cut = input.find(kSeparator);
  const std::string_view dump = input.substr(0, cut);
  const std::string_view resource =
      cut == std::string_view::npos ? std::string_view() : input.substr(cut + kSeparator.size());
  try {
    const ConfigDump parsed = parseConfigDump(dump, "fuzz.config");
    (void)walkCapabilities(parsed);
    const auto lines = parseResourceFile(resource, "fuzz.resource");
    exercise(deviceConfigFromDump(parsed, lines, "fuzz.resource"));
  } catch (const ConfigDumpError&) {
    // Refused with where and why: what a malformed dump gets.
  }
  return 0;
}
