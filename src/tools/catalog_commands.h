// The commands that only list or check: `designs`, `devices` and
// `validate SCENARIO`.
#pragma once

#include <string>

#include "tools/subcommand.h"

namespace vfiomm::tools {

class DesignsCommand : public Subcommand {
 public:
  explicit DesignsCommand(CLI::App& parent);
  int run() override;
};

// `--devices-dir` is an option of the app too: every command reads the catalog.
class DevicesCommand : public Subcommand {
 public:
  DevicesCommand(CLI::App& parent, std::string& devicesDir);
  int run() override;
};

class ValidateCommand : public Subcommand {
 public:
  explicit ValidateCommand(CLI::App& parent);
  int run() override;

 private:
  std::string path_;
};

}  // namespace vfiomm::tools
