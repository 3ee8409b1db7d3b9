// The lock order of docs/architecture.md ("## Lock order"), read from the
// document itself so that it is written once: tests hold what lockdep
// records to it.
#pragma once

#include <fstream>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "source_dir.h"
#include "sync/lockdep.h"

namespace vfiomm::testing {

class DocumentedLockOrder {
 public:
  // Parses the tree: "- `name` — ..." lines, two spaces per level.
  DocumentedLockOrder() {
    std::ifstream in(test::sourceDir() + "/docs/architecture.md");
    std::string line;
    bool inSection = false;
    std::vector<std::string> path;
    while (std::getline(in, line)) {
      if (line.rfind("## ", 0) == 0) inSection = line == "## Lock order";
      const size_t dash = line.find("- `");
      if (!inSection || dash == std::string::npos || dash % 2 != 0) continue;
      const size_t depth = dash / 2;
      const size_t end = line.find('`', dash + 3);
      const std::string name = line.substr(dash + 3, end - dash - 3);
      path.resize(depth);
      if (depth > 0) below_[path.back()].insert(name);
      below_[name];
      path.push_back(name);
    }
  }

  bool knows(const std::string& lock) const { return below_.count(lock) != 0; }

  // Whether `taken` may be taken while `held` is held: reachable below it.
  bool allows(const std::string& held, const std::string& taken) const {
    std::set<std::string> seen;
    std::vector<std::string> todo{held};
    while (!todo.empty()) {
      const std::string n = todo.back();
      todo.pop_back();
      auto it = below_.find(n);
      if (it == below_.end()) continue;
      for (const std::string& next : it->second) {
        if (next == taken) return true;
        if (seen.insert(next).second) todo.push_back(next);
      }
    }
    return false;
  }

  // The dependencies lockdep holds for the calling thread's kernel that the
  // tree does not allow, as "held -> taken".
  std::vector<std::string> undocumented() const {
    std::vector<std::string> out;
    for (const auto& [held, taken] : lockdep::dependencies())
      if (!allows(held, taken)) out.push_back(held + " -> " + taken);
    return out;
  }

 private:
  std::map<std::string, std::set<std::string>> below_;
};

}  // namespace vfiomm::testing
