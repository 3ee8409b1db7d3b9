// DeviceCatalog: the devices under `devices/` (docs/devices.md), one YAML
// file each. A file describes its device either by fields (ids, BARs,
// capabilities at the model's own capability offsets) or by a config-space
// dump plus sysfs `resource` file next to it (config_dump.h: the exact
// card, capabilities where the card has them); both forms can give a BAR
// the `registers` backing with a register description.
//
// Bad files are refused with CatalogError, "file:line:column: what".
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "pci/pci_device.h"

namespace vfiomm {

class CatalogError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CatalogDevice {
  std::string name;
  std::string description;
  std::string source;  // where the numbers come from
  std::string file;    // the YAML file it was read from
  PciDeviceConfig config;
};

class DeviceCatalog {
 public:
  // Every *.yaml directly under `dir`, by name. A missing directory and
  // two files with one name are errors.
  static DeviceCatalog load(const std::string& dir);

  const std::vector<CatalogDevice>& devices() const { return devices_; }
  const CatalogDevice* find(const std::string& name) const;

 private:
  std::vector<CatalogDevice> devices_;
};

// One catalog file.
CatalogDevice loadCatalogDevice(const std::string& path);

// The catalog of the source tree this binary was built from
// (VFIOMM_SOURCE_DIR/devices): works from a clean clone with no option.
std::string defaultDevicesDir();
// Where scenarios' `model:` devices are looked up: defaultDevicesDir()
// unless `vfiomm --devices-dir` said otherwise (set once, before anything
// runs).
const std::string& devicesDir();
void setDevicesDir(std::string dir);

// One device as `vfiomm devices` lists it: name, ids, BARs, capabilities.
std::string describeCatalogDevice(const CatalogDevice& dev);
// `vfiomm devices`: where the catalog is, then every device by name.
std::string listCatalog(const std::string& dir);

}  // namespace vfiomm
