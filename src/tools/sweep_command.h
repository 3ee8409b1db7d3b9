// `vfiomm sweep` (docs/sweep.md): BAR sizes × alignments × designs, its
// summary printed and its CSV, JSON and HTML written.
#pragma once

#include <string>
#include <vector>

#include "tools/subcommand.h"

namespace vfiomm::tools {

class SweepCommand : public Subcommand {
 public:
  explicit SweepCommand(CLI::App& parent);
  int run() override;

 private:
  std::string sizes_, sampleAbove_;
  std::vector<std::string> alignments_, designs_;
  unsigned jobs_;
  std::string csvPath_, jsonPath_, reportPath_;
};

}  // namespace vfiomm::tools
