// `vfiomm compare [SCENARIO]`, the default command: a scenario against
// several designs, kernel profiles and DMA paths, side by side.
#pragma once

#include <string>
#include <vector>

#include "tools/cli_options.h"
#include "tools/subcommand.h"

namespace vfiomm::tools {

class CompareCommand : public Subcommand {
 public:
  explicit CompareCommand(CLI::App& parent);
  int run() override;

 private:
  std::string scenario_;
  std::vector<std::string> designs_, profiles_, dmaPaths_;
  std::string json_, report_;
  TraceOptions trace_;
  unsigned jobs_;
  bool lockdepSplats_ = false;
};

}  // namespace vfiomm::tools
