#include "check/replay_file.h"

#include <nlohmann/json.hpp>
#include <fmt/format.h>

#include "sim/scenario.h"

namespace vfiomm::check {

namespace {

constexpr int kFormat = 1;

}  // namespace

std::string replayToJson(const ReplayFile& r) {
  nlohmann::ordered_json j;
  j["vfiomm_check_replay"] = kFormat;
  j["scenario"] = r.scenario;
  j["design"] = r.design;
  j["profile"] = r.profile;
  j["mutations"] = r.mutations;
  j["strategy"] = r.strategy;
  j["seed"] = r.seed;
  j["depth"] = r.depth;
  j["schedule"] = r.schedule;
  j["failure"] = r.failure;
  j["choices"] = r.choices;
  return j.dump(2) + "\n";
}

ReplayFile replayFromJson(const std::string& text, const std::string& path) {
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    if (j.value("vfiomm_check_replay", 0) != kFormat)
      throw sim::ScenarioError(fmt::format("{}: not a vfiomm check replay file (format {})", path, kFormat));
    ReplayFile r;
    r.scenario = j.at("scenario").get<std::string>();
    r.design = j.at("design").get<std::string>();
    r.profile = j.at("profile").get<std::string>();
    r.mutations = j.at("mutations").get<std::vector<std::string>>();
    r.strategy = j.at("strategy").get<std::string>();
    r.seed = j.at("seed").get<uint64_t>();
    r.depth = j.at("depth").get<unsigned>();
    r.schedule = j.at("schedule").get<uint64_t>();
    r.failure = j.at("failure").get<std::string>();
    r.choices = j.at("choices").get<std::vector<unsigned>>();
    return r;
  } catch (const nlohmann::json::exception& e) {
    throw sim::ScenarioError(fmt::format("{}: not a replay file: {}", path, e.what()));
  }
}

}  // namespace vfiomm::check
