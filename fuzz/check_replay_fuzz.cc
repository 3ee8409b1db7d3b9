// Replay files of `vfiomm check` are outside input: a user hands one to
// `check --replay`. Any text must either be refused with a ScenarioError or
// name a run the model can carry out; its choice sequence, whatever it says,
// must then replay to an end — a failure, no violation or a divergence from
// the recording — never a crash, a hang or undefined behaviour.
//
// The recorded scenario path is not followed (a fuzzer must not read files
// it names): every schedule runs on the smallest check scenario. Mutations
// are parsed and checked but not applied: a mutated schedule may end in a
// deadlock, which the CLI reports by ending the process.
#include <cstddef>
#include <cstdint>
#include <string>

#include "check/check_run.h"
#include "check/replay_file.h"
#include "sim/scenario.h"
#include "tools/check_command.h"

namespace {

const vfiomm::sim::Scenario& fixedScenario() {
  static const vfiomm::sim::Scenario sc =
      vfiomm::sim::loadScenario(VFIOMM_SOURCE_DIR "/scenarios/check/fault-vs-disable.yaml");
  return sc;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vfiomm;
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const check::ReplayFile recorded = check::replayFromJson(text, "fuzz.json");
    tools::CheckCommand cmd;
    cmd.replayIn = "fuzz.json";
    tools::applyReplay(recorded, cmd);
    check::CheckOptions options = tools::checkOptionsOf(cmd, recorded.choices);
    options.designOptions = {};
    options.maxPoints = 100'000;
    options.onStuck = [](const check::Failure&) { __builtin_trap(); };  // no mutation: a bug
    sim::Scenario sc = fixedScenario();
    if (!cmd.profile.empty()) sc.profile = cmd.profile;
    (void)check::runCheck(sc, options);
  } catch (const sim::ScenarioError&) {
    // Refused with a message: what bad input gets.
  }
  return 0;
}
