// One subcommand of the vfiomm command line: it adds itself and its options
// to the CLI11 app when constructed, and runs once the command line parsed.
#pragma once

#include <CLI/CLI.hpp>

namespace vfiomm::tools {

// Exit statuses (tools/main.cc says when each is given).
inline constexpr int kExitFailed = 1;
inline constexpr int kExitBadInput = 2;
inline constexpr int kExitInternal = 3;

class Subcommand {
 public:
  Subcommand(const Subcommand&) = delete;
  Subcommand& operator=(const Subcommand&) = delete;
  virtual ~Subcommand() = default;

  bool parsed() const { return app_->parsed(); }
  // Runs what the command line asked for and returns the exit status.
  // Bad input throws sim::ScenarioError, report::OutputError or
  // CatalogError.
  virtual int run() = 0;

 protected:
  Subcommand(CLI::App& parent, const char* name, const char* description)
      : app_(parent.add_subcommand(name, description)) {}
  CLI::App& app() { return *app_; }

 private:
  CLI::App* app_;
};

}  // namespace vfiomm::tools
