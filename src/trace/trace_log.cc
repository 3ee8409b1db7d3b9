#include "trace/trace_log.h"

#include <array>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace vfiomm::trace {

std::string TraceLog::policy() const {
  return fmt::format("ring buffer of {} events keeping the latest; {} recorded, {} dropped", limit,
                     recorded, dropped);
}

std::string TraceLog::threadName(int pid, int tid) const {
  if (auto it = threadNames.find({pid, tid}); it != threadNames.end()) return it->second;
  if (tid == 0) return "kernel";
  if (auto it = processNames.find(pid); it != processNames.end())
    return fmt::format("{}-{}", it->second, tid);
  return fmt::format("task-{}", tid);
}

namespace {

constexpr unsigned kFieldsPerEvent = 14;

}  // namespace

void writeTraceLog(std::ostream& out, const TraceLog& log) {
  // Name and detail are indices into a table of the strings events use.
  std::map<std::string_view, size_t> index{{std::string_view(), 0}};
  nlohmann::json strings = nlohmann::json::array({""});
  auto indexOf = [&](std::string_view s) {
    auto [it, added] = index.emplace(s, index.size());
    if (added) strings.push_back(std::string(s));
    return it->second;
  };
  for (const TraceEvent& e : log.events) {
    indexOf(e.name);
    indexOf(e.detail);
  }
  nlohmann::json processes = nlohmann::json::array();
  for (const auto& [pid, name] : log.processNames) processes.push_back({pid, name});
  nlohmann::json threads = nlohmann::json::array();
  for (const auto& [key, name] : log.threadNames) threads.push_back({key.first, key.second, name});
  const nlohmann::json header{{"title", log.title},   {"limit", log.limit},     {"recorded", log.recorded},
                              {"dropped", log.dropped}, {"cpus", log.cpus},       {"events", log.events.size()},
                              {"processes", processes}, {"threads", threads},     {"strings", strings}};
  out << header.dump() << "\n";
  for (const TraceEvent& e : log.events)
    out << fmt::format("{} {} {} {} {} {} {} {} {} {} {} {} {} {}\n", e.ts, e.dur, e.addr, e.end, e.value,
                       e.flow, index.at(e.name), index.at(e.detail), e.pid, e.tid, e.cpu,
                       static_cast<int>(e.kind), e.order, e.flags);
}

TraceLog readTraceLog(std::istream& in) {
  std::string line;
  if (!std::getline(in, line)) throw std::runtime_error("trace log: no header");
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw std::runtime_error("trace log: bad header");
  TraceLog log;
  std::vector<std::string_view> strings;
  try {
    log.title = j.at("title").get<std::string>();
    log.limit = j.at("limit").get<size_t>();
    log.recorded = j.at("recorded").get<uint64_t>();
    log.dropped = j.at("dropped").get<uint64_t>();
    log.cpus = j.at("cpus").get<unsigned>();
    for (const auto& p : j.at("processes")) log.processNames[p.at(0).get<int>()] = p.at(1).get<std::string>();
    for (const auto& t : j.at("threads"))
      log.threadNames[{t.at(0).get<int>(), t.at(1).get<int>()}] = t.at(2).get<std::string>();
    for (const auto& s : j.at("strings")) strings.push_back(log.intern(s.get<std::string>()));
    log.events.reserve(j.at("events").get<size_t>());
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(fmt::format("trace log: bad header: {}", e.what()));
  }
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::array<int64_t, kFieldsPerEvent> v{};
    std::array<uint64_t, 6> u{};
    for (uint64_t& x : u) fields >> x;
    for (size_t i = 6; i < kFieldsPerEvent; ++i) fields >> v[i];
    if (!fields || v[6] < 0 || v[7] < 0 || static_cast<size_t>(v[6]) >= strings.size() ||
        static_cast<size_t>(v[7]) >= strings.size() || v[11] < 0 || v[11] >= static_cast<int64_t>(kEventKinds))
      throw std::runtime_error(fmt::format("trace log: bad event line '{}'", line));
    TraceEvent e;
    e.ts = u[0];
    e.dur = u[1];
    e.addr = u[2];
    e.end = u[3];
    e.value = u[4];
    e.flow = u[5];
    e.name = strings[static_cast<size_t>(v[6])];
    e.detail = strings[static_cast<size_t>(v[7])];
    e.pid = static_cast<int32_t>(v[8]);
    e.tid = static_cast<int32_t>(v[9]);
    e.cpu = static_cast<int16_t>(v[10]);
    e.kind = static_cast<EventKind>(v[11]);
    e.order = static_cast<uint8_t>(v[12]);
    e.flags = static_cast<uint8_t>(v[13]);
    log.events.push_back(e);
  }
  return log;
}

}  // namespace vfiomm::trace
