// `vfiomm explain` (docs/explain.md): what one BAR mapping costs per
// design, and why huge pages are (not) used.
#pragma once

#include <string>

#include "tools/subcommand.h"

namespace vfiomm::tools {

class ExplainCommand : public Subcommand {
 public:
  explicit ExplainCommand(CLI::App& parent);
  int run() override;

 private:
  std::string barSize_, offset_, length_, address_, design_, json_;
};

}  // namespace vfiomm::tools
