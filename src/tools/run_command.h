// `vfiomm run SCENARIO --design D`: one design on a scenario.
#pragma once

#include <string>

#include "tools/cli_options.h"
#include "tools/subcommand.h"

namespace vfiomm::tools {

class RunCommand : public Subcommand {
 public:
  explicit RunCommand(CLI::App& parent);
  int run() override;

 private:
  std::string scenario_, design_, json_, report_;
  TraceOptions trace_;
  bool lockdepSplats_ = false;
};

}  // namespace vfiomm::tools
