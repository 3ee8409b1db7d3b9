// Shrinking a failing schedule before it is written for replay: fewer
// preemptions and a shorter recording that still ends in the same kind of
// failure (failureKind()), so that the replay a user reads is the race and
// little else.
//
// A recording is a prefix of choices; past it nobody is preempted
// (ReplayStrategy). Shrinking first tries the empty recording (the default
// schedule), then replays edited recordings leniently: it drops
// the tail after a choice that is not the default, or turns one such choice
// into the default and keeps the rest, and keeps an edit when the same kind
// of failure comes back. Each kept schedule is written back as the choices
// it actually made, up to its last one that was not the default, so the
// result replays strictly.
#pragma once

#include <cstdint>

#include "check/check_run.h"
#include "sim/scenario.h"

namespace vfiomm::check {

struct ShrinkResult {
  Failure failure;  // the shrunk schedule: its recording and what it broke
  uint64_t choicesBefore = 0;
  uint64_t preemptionsBefore = 0;
  uint64_t runs = 0;  // schedules replayed to shrink it
};

// `found` came from a run with `options` (its design and mutations; its
// strategy does not matter). At most `maxRuns` replays.
ShrinkResult shrinkFailure(const sim::Scenario& scenario, const CheckOptions& options,
                           const Failure& found, uint64_t maxRuns = 2000);

}  // namespace vfiomm::check
