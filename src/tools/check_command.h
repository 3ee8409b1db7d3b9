// The `vfiomm check` command: parses what the command line gave into a
// check run, runs it, prints the figures and the first failure, and writes
// the replay file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "check/check_run.h"
#include "check/replay_file.h"
#include "tools/subcommand.h"

namespace vfiomm::tools {

struct CheckCommand {
  std::string scenario;
  std::string design;
  std::string profile;  // empty: the scenario's
  std::vector<std::string> mutations;
  std::string strategy = "random";
  uint64_t schedules = 1000;
  uint64_t seed = 1;
  unsigned depth = 3;
  unsigned preemptions = 2;
  unsigned jobs = 1;
  std::string replayOut;  // write the failing schedule here
  std::string replayIn;   // run this recorded schedule instead
  std::string tracePath;  // write the failing schedule's Chrome trace here
};

// The recorded inputs of `r` replace those of `cmd`.
void applyReplay(const check::ReplayFile& r, CheckCommand& cmd);
// The run `cmd` asks for; `replay` is the recorded choice sequence when
// cmd.replayIn is set. Throws sim::ScenarioError on an unknown design,
// mutation or strategy.
check::CheckOptions checkOptionsOf(const CheckCommand& cmd, std::vector<unsigned> replay);

// Runs the check; a failure found is shrunk (check/shrink.h) before it is
// printed and written, and replayed with the tracer on for --trace.
// Returns the exit status: 0 no violation, 1 a violation (or deadlock),
// 3 a replay that left its recording or ended otherwise than recorded
// (the model was not deterministic: a bug of vfiomm). Throws
// sim::ScenarioError and report::OutputError on bad input.
int runCheckCommand(CheckCommand cmd);

// `vfiomm check` on the command line.
class CheckSubcommand : public Subcommand {
 public:
  explicit CheckSubcommand(CLI::App& parent);
  int run() override;

 private:
  CheckCommand cmd_;
};

}  // namespace vfiomm::tools
