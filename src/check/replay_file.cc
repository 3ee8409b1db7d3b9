#include "check/replay_file.h"

#include <fmt/format.h>

#include <cstdint>
#include <nlohmann/json.hpp>

#include "sim/scenario.h"

namespace vfiomm::check {

namespace {

constexpr int kFormat = 1;

// A JSON number as an unsigned integer of at most `max`. nlohmann's get<>
// converts a fraction, a negative or an out-of-range number with undefined
// behaviour, so the value is checked before it is converted.
uint64_t unsignedOf(const nlohmann::json& v, uint64_t max, const std::string& what,
                    const std::string& path) {
  if (!v.is_number_unsigned() || v.get<uint64_t>() > max)
    throw sim::ScenarioError(fmt::format("{}: {} must be a whole number from 0 to {}, not {}", path,
                                         what, max, v.dump()));
  return v.get<uint64_t>();
}

uint64_t unsignedAt(const nlohmann::json& j, const char* key, uint64_t max,
                    const std::string& path) {
  return unsignedOf(j.at(key), max, fmt::format("\"{}\"", key), path);
}

std::vector<unsigned> choicesAt(const nlohmann::json& j, const std::string& path) {
  const nlohmann::json& a = j.at("choices");
  if (!a.is_array())
    throw sim::ScenarioError(fmt::format("{}: \"choices\" must be an array", path));
  std::vector<unsigned> out;
  out.reserve(a.size());
  for (const nlohmann::json& c : a)
    out.push_back(static_cast<unsigned>(unsignedOf(c, UINT32_MAX, "a choice", path)));
  return out;
}

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
    if (!j.is_object() || !j.contains("vfiomm_check_replay") ||
        !j["vfiomm_check_replay"].is_number_unsigned() ||
        j["vfiomm_check_replay"].get<uint64_t>() != kFormat)
      throw sim::ScenarioError(
          fmt::format("{}: not a vfiomm check replay file (format {})", path, kFormat));
    ReplayFile r;
    r.scenario = j.at("scenario").get<std::string>();
    r.design = j.at("design").get<std::string>();
    r.profile = j.at("profile").get<std::string>();
    r.mutations = j.at("mutations").get<std::vector<std::string>>();
    r.strategy = j.at("strategy").get<std::string>();
    r.seed = unsignedAt(j, "seed", UINT64_MAX, path);
    r.depth = static_cast<unsigned>(unsignedAt(j, "depth", UINT32_MAX, path));
    r.schedule = unsignedAt(j, "schedule", UINT64_MAX, path);
    r.failure = j.at("failure").get<std::string>();
    r.choices = choicesAt(j, path);
    return r;
  } catch (const nlohmann::json::exception& e) {
    throw sim::ScenarioError(fmt::format("{}: not a replay file: {}", path, e.what()));
  }
}

}  // namespace vfiomm::check
