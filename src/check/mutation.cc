#include "check/mutation.h"

namespace vfiomm::check {

namespace {

struct MutationRow {
  std::string_view name;
  bool DesignOptions::*flag;
};

constexpr MutationRow kMutations[] = {
    {"fault-without-memory-lock", &DesignOptions::faultWithoutMemoryLock},
    {"zap-before-memory-lock", &DesignOptions::zapBeforeMemoryLock},
    {"prefault-under-memory-lock", &DesignOptions::prefaultNaiveUnderMemoryLock},
    {"zap-without-tlb-shootdown", &DesignOptions::zapWithoutTlbShootdown},
    {"no-zap-on-d3hot", &DesignOptions::noZapOnD3hot},
    {"hot-reset-zaps-requester-only", &DesignOptions::hotResetZapsRequesterOnly},
    {"insert-without-ptl", &DesignOptions::insertWithoutPtl},
    {"fork-copies-before-link", &DesignOptions::forkCopiesBeforeLink},
    {"gather-without-nested-flush", &DesignOptions::gatherWithoutNestedFlush},
    {"fault-retry-reuses-vma", &DesignOptions::faultRetryReusesVma},
};

}  // namespace

std::vector<std::string_view> mutationNames() {
  std::vector<std::string_view> out;
  for (const MutationRow& m : kMutations) out.push_back(m.name);
  return out;
}

bool applyMutation(std::string_view name, DesignOptions& options) {
  for (const MutationRow& m : kMutations) {
    if (m.name != name) continue;
    options.*m.flag = true;
    return true;
  }
  return false;
}

}  // namespace vfiomm::check
