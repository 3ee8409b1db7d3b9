#include "report/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>

namespace vfiomm::report {

using sim::AccessProgram;
using sim::BarDef;
using sim::CostModel;
using sim::DesignResult;
using sim::DeviceDef;
using sim::DmaPath;
using sim::EventDef;
using sim::EventKind;
using sim::MappingDef;
using sim::Metrics;
using sim::OpenDef;
using sim::Pattern;
using sim::PhaseDef;
using sim::PhaseResult;
using sim::ProcessDef;
using sim::Scenario;
using sim::ThreadDef;
using sim::TimelineSample;

namespace {

using Json = nlohmann::ordered_json;

const char* patternName(Pattern p) {
  switch (p) {
    case Pattern::kSequential: return "sequential";
    case Pattern::kStride: return "stride";
    case Pattern::kRandom: return "random";
  }
  return "?";
}

Json programToJson(const AccessProgram& p) {
  Json j;
  j["pattern"] = patternName(p.pattern);
  j["stride"] = p.stride;
  j["count"] = p.count;
  j["seed"] = p.seed;
  j["writes"] = p.writes;
  j["passes"] = p.passes;
  j["until_events_done"] = p.untilEventsDone;
  j["targets"] = p.targets;
  return j;
}

std::string count(uint64_t v) {
  // 12345678 -> 12,345,678
  const std::string digits = std::to_string(v);
  std::string s;
  s.reserve(digits.size() + digits.size() / 3);
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && (digits.size() - i) % 3 == 0) s.push_back(',');
    s.push_back(digits[i]);
  }
  return s;
}

std::string duration(double ns) {
  if (ns < 1e3) return fmt::format("{:.0f} ns", ns);
  if (ns < 1e6) return fmt::format("{:.1f} us", ns / 1e3);
  if (ns < 1e9) return fmt::format("{:.1f} ms", ns / 1e6);
  return fmt::format("{:.2f} s", ns / 1e9);
}

std::string bytes(uint64_t b) {
  if (b < 10 * 1024) return fmt::format("{} B", b);
  if (b < 10ULL * 1024 * 1024) return fmt::format("{} KiB", b / 1024);
  return fmt::format("{} MiB", b / (1024 * 1024));
}

using Row = MetricRow;

const std::vector<Row>& rows() {
  static const std::vector<Row> kRows = {
      {"faults (minor)", [](const Metrics& m) { return count(m.faults); }},
      {"  PTE inserts (4K)", [](const Metrics& m) { return count(m.pte); }},
      {"  PMD inserts (2M)", [](const Metrics& m) { return count(m.pmd); }},
      {"  PUD inserts (1G)", [](const Metrics& m) { return count(m.pud); }},
      {"  huge fallbacks", [](const Metrics& m) { return count(m.fallback); }},
      {"SIGBUS / SIGSEGV",
       [](const Metrics& m) { return fmt::format("{} / {}", count(m.sigbus), count(m.sigsegv)); }},
      {"zaps / entries",
       [](const Metrics& m) {
         return fmt::format("{} / {}", count(m.zaps), count(m.zappedEntries));
       }},
      {"TLB misses", [](const Metrics& m) { return count(m.tlbMisses); }},
      {"TLB shootdowns", [](const Metrics& m) { return count(m.shootdowns); }},
      {"page tables (peak)", [](const Metrics& m) { return bytes(m.pgtablesPeak); }},
      {"lockdep reports", [](const Metrics& m) { return count(m.lockdepReports); }},
      {"inv-1 violations", [](const Metrics& m) { return count(m.violations); }},
      {"DMA map lookups", [](const Metrics& m) { return count(m.dmaLookups); }},
      {"  faults by DMA map", [](const Metrics& m) { return count(m.dmaFaults); }},
      {"  iommu_map calls", [](const Metrics& m) { return count(m.iommuMaps); }},
      {"  IOPTEs 4K/2M/1G",
       [](const Metrics& m) {
         return fmt::format("{}/{}/{}", count(m.iopte4k), count(m.iopte2m), count(m.iopte1g));
       }},
      {"  DMA map time", [](const Metrics& m) { return duration(m.dmaModeledNs); }},
      {"device DMA / DMAR",
       [](const Metrics& m) {
         return fmt::format("{} / {}", count(m.dmaAccesses), count(m.dmarFaults));
       }},
      {"inv-7 violations", [](const Metrics& m) { return count(m.dmaViolations); }},
      {"modelled time", [](const Metrics& m) { return duration(m.modeledNs); }},
      {"wall time", [](const Metrics& m) { return duration(static_cast<double>(m.wallNs)); }},
  };
  return kRows;
}

}  // namespace

const std::vector<MetricRow>& metricRows() { return rows(); }

std::string jsonText(const Json& j, int indent) {
  return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

namespace {

// A JSON array of each item as `toJson` writes it.
template <class T, class ToJson>
Json arrayOf(const std::vector<T>& items, ToJson toJson) {
  Json a = Json::array();
  for (const T& item : items) a.push_back(toJson(item));
  return a;
}

Json deviceToJson(const DeviceDef& d) {
  Json dj;
  dj["name"] = d.name;
  dj["bus"] = d.bus;
  dj["slot"] = d.slot;
  dj["function"] = d.function;
  dj["group"] = d.group;
  dj["vf"] = d.vf;
  dj["flr"] = d.flr;
  dj["slot_reset"] = d.slotReset;
  dj["runtime_pm"] = d.runtimePm;
  dj["bars"] = arrayOf(d.bars, [](const BarDef& b) {
    return Json{{"index", b.index},
                {"size", b.size},
                {"type", nameOf(kBarKindNames, b.kind)},
                {"prefetchable", b.prefetchable}};
  });
  return dj;
}

Json mappingToJson(const MappingDef& m) {
  Json mj;
  mj["name"] = m.name;
  mj["anonymous"] = m.anonymous;  // then device is "" and bar 0
  mj["device"] = m.device;
  mj["bar"] = m.bar;
  mj["offset"] = m.offset;
  mj["length"] = m.length;
  mj["address"] = m.address ? Json(*m.address) : Json(nullptr);
  mj["align"] = m.alignSpec;
  mj["align_bytes"] = m.align;
  mj["prot"] = m.write ? "rw" : "r";
  mj["madvise"] = m.madvise;
  return mj;
}

Json processToJson(const ProcessDef& p) {
  Json pj;
  pj["name"] = p.name;
  pj["open"] = arrayOf(p.opens, [](const OpenDef& o) {
    return Json{{"device", o.device}, {"via", nameOf(sim::kOpenViaNames, o.via)}};
  });
  pj["mappings"] = arrayOf(p.mappings, mappingToJson);
  pj["memlock"] = p.memlock == UINT64_MAX ? Json("unlimited") : Json(p.memlock);
  pj["cap_ipc_lock"] = p.capIpcLock;
  return pj;
}

Json threadToJson(const ThreadDef& t) {
  Json tj;
  tj["name"] = t.name;
  tj["process"] = t.process;
  tj["cpu"] = t.cpu;
  tj.update(programToJson(t.program));
  return tj;
}

// The keys an event has beyond type and process depend on its kind.
void eventArgsToJson(const EventDef& e, Json& ej) {
  if (!e.device.empty()) ej["device"] = e.device;
  if (!e.mapping.empty()) {
    ej["mapping"] = e.mapping;
    ej["offset"] = e.offset;
    ej["length"] = e.length;
  }
  switch (e.kind) {
    case EventKind::kMprotect: ej["prot"] = e.protWrite ? "rw" : "r"; break;
    case EventKind::kMremap:
      ej["new_length"] = e.newLength;
      if (e.newAddress) ej["new_address"] = *e.newAddress;
      break;
    case EventKind::kFork:
      ej["child"] = e.child;
      if (e.childProgram) ej["program"] = programToJson(*e.childProgram);
      break;
    case EventKind::kDmaMap:
    case EventKind::kDmaUnmap:
      ej["via"] = dmaViaName(e.via);
      ej["iova"] = e.iova;
      ej["length"] = e.length;
      if (e.kind == EventKind::kDmaMap) ej["prot"] = e.dmaWrite ? "rw" : "r";
      break;
    case EventKind::kDeviceDma:
      ej["iova"] = e.iova;
      ej["write"] = e.dmaWrite;
      ej["size"] = e.dmaSize;
      break;
    default: break;
  }
}

Json eventToJson(const EventDef& e) {
  Json ej;
  ej["type"] = eventKindName(e.kind);
  ej["process"] = e.process;
  eventArgsToJson(e, ej);
  ej["after_accesses"] = e.afterAccesses;
  return ej;
}

Json phaseDefToJson(const PhaseDef& ph) {
  Json pj;
  pj["name"] = ph.name;
  pj["threads"] = arrayOf(ph.threads, threadToJson);
  pj["events"] = arrayOf(ph.events, eventToJson);
  return pj;
}

}  // namespace

Json scenarioToJson(const Scenario& sc) {
  Json j;
  j["name"] = sc.name;
  j["description"] = sc.description;
  j["file"] = sc.file;
  j["cpus"] = sc.cpus;
  j["profile"] = sc.profile;
  j["dma_path"] = dmaPathName(sc.dmaPath);
  j["proposals"] =
      arrayOf(sc.proposals, [](sim::Proposal p) { return Json(sim::proposalName(p)); });
  j["thp"] = sc.thp;
  j["ram"] = sc.memory.ramBytes;
  j["swap"] = sc.memory.swapBytes;
  j["overcommit_memory"] = static_cast<unsigned>(sc.memory.overcommitMemory);
  Json cost = Json::object();
  for (const auto& f : CostModel::fields()) cost[f.key] = sc.cost.*f.member;
  j["cost_model"] = cost;
  Json tlb = Json::object();
  for (const auto& [key, g] : {std::pair{"4k", sc.tlb.page4k}, std::pair{"2m", sc.tlb.page2m},
                               std::pair{"1g", sc.tlb.page1g}})
    tlb[key] = Json{{"entries", g.entries}, {"ways", g.ways}};
  j["tlb"] = tlb;
  j["devices"] = arrayOf(sc.devices, deviceToJson);
  j["processes"] = arrayOf(sc.processes, processToJson);
  j["phases"] = arrayOf(sc.phases, phaseDefToJson);
  return j;
}

Json metricsToJson(const Metrics& m) {
  Json j;
  for (const sim::MetricField& f : sim::metricFields()) {
    // "a.b.c": j["a"]["b"]["c"], each object created where it first appears.
    Json* at = &j;
    std::string_view path = f.path;
    for (size_t dot = path.find('.'); dot != std::string_view::npos; dot = path.find('.')) {
      at = &(*at)[std::string(path.substr(0, dot))];
      path.remove_prefix(dot + 1);
    }
    if (f.ns != nullptr)
      (*at)[std::string(path)] = m.*f.ns;
    else
      (*at)[std::string(path)] = m.*f.count;
  }
  return j;
}

Json resultsToJson(const Scenario& sc, const std::vector<DesignResult>& results) {
  Json j;
  j["schema_version"] = kJsonSchemaVersion;
  j["scenario"] = scenarioToJson(sc);
  j["results"] = arrayOf(results, designResultToJson);
  return j;
}

Json designResultToJson(const DesignResult& r) {
  Json rj;
  rj["design"] = std::string(designName(r.design));
  rj["profile"] = r.profile;
  rj["dma_path"] = dmaPathName(r.dmaPath);
  rj["failed"] = r.failed;
  rj["setup_notes"] = r.setupNotes;
  rj["phases"] = arrayOf(r.phases, [](const PhaseResult& p) {
    Json pj;
    pj["name"] = p.name;
    pj.update(metricsToJson(p.m));
    pj["notes"] = p.notes;
    return pj;
  });
  rj["total"] = metricsToJson(r.total);
  rj["timeline"] = arrayOf(r.timeline, [](const TimelineSample& s) {
    return Json{{"phase", s.phase},
                {"faults", s.faults},
                {"zaps", s.zaps},
                {"zapped_entries", s.zappedEntries},
                {"shootdowns", s.shootdowns},
                {"modeled_ns", s.modeledNs}};
  });
  return rj;
}

namespace {

// Who a note or verdict is about: the design, and with --profiles or
// --dma-paths (the same design in several columns) its profile and path.
std::string runName(const DesignResult& r, const std::vector<DesignResult>& results) {
  const auto sameDesign = std::count_if(
      results.begin(), results.end(), [&](const DesignResult& o) { return o.design == r.design; });
  if (sameDesign < 2) return std::string(designName(r.design));
  return fmt::format("{} ({}, {})", designName(r.design), r.profile, dmaPathName(r.dmaPath));
}

}  // namespace

std::string formatTable(const Scenario& sc, const std::vector<DesignResult>& results) {
  std::string out = fmt::format("scenario {} ({})\n", sc.name, sc.file);
  if (!sc.description.empty()) out += fmt::format("  {}\n", sc.description);
  constexpr size_t kLabel = 22;
  std::vector<size_t> widths;
  for (const DesignResult& r : results)
    widths.push_back(std::max<size_t>(14, designName(r.design).size() + 2));
  auto section = [&](const std::string& title,
                     const std::function<const Metrics&(const DesignResult&)>& get) {
    // Widen columns to their contents first.
    for (size_t c = 0; c < results.size(); ++c)
      for (const Row& row : rows())
        widths[c] = std::max(widths[c], row.cell(get(results[c])).size() + 2);
    out += fmt::format("\n{:<{}}", title, kLabel);
    for (size_t c = 0; c < results.size(); ++c)
      out += fmt::format("{:>{}}", designName(results[c].design), widths[c]);
    out += "\n";
    for (const Row& row : rows()) {
      out += fmt::format("{:<{}}", row.label, kLabel);
      for (size_t c = 0; c < results.size(); ++c)
        out += fmt::format("{:>{}}", row.cell(get(results[c])), widths[c]);
      out += "\n";
    }
  };
  if (!results.empty()) {
    out += fmt::format("\n{:<{}}", "profile", kLabel);
    for (size_t c = 0; c < results.size(); ++c)
      out += fmt::format("{:>{}}", results[c].profile, widths[c]);
    out += "\n";
    if (std::any_of(results.begin(), results.end(),
                    [](const DesignResult& r) { return r.dmaPath != DmaPath::kVaddr; })) {
      out += fmt::format("{:<{}}", "dma path", kLabel);
      for (size_t c = 0; c < results.size(); ++c)
        out += fmt::format("{:>{}}", dmaPathName(results[c].dmaPath), widths[c]);
      out += "\n";
    }
    for (size_t p = 0; p < results.front().phases.size(); ++p)
      section(fmt::format("phase {} {}", p + 1, results.front().phases[p].name),
              [p](const DesignResult& r) -> const Metrics& { return r.phases[p].m; });
    section("total", [](const DesignResult& r) -> const Metrics& { return r.total; });
  }
  bool anyNote = false;
  for (const DesignResult& r : results) {
    for (const std::string& n : r.setupNotes) {
      out += fmt::format("{}note {}: setup: {}\n", anyNote ? "" : "\n", runName(r, results), n);
      anyNote = true;
    }
    for (const PhaseResult& p : r.phases)
      for (const std::string& n : p.notes) {
        out += fmt::format("{}note {}: phase {}: {}\n", anyNote ? "" : "\n", runName(r, results),
                           p.name, n);
        anyNote = true;
      }
  }
  out += "\n";
  for (const DesignResult& r : results) {
    if (designTraits(r.design).expectsHoles &&
        (r.total.violations != 0 || r.total.lockdepReports != 0))
      out += fmt::format(
          "{}: {} invariant-1 violations and {} lockdep reports - the known holes of "
          "this design (reported, not a failure)\n",
          runName(r, results), r.total.violations, r.total.lockdepReports);
    if (r.dmaPath == DmaPath::kVaddr && r.total.dmaViolations != 0)
      out += fmt::format(
          "{}: {} invariant-7 violations - device DMA reached a BAR with decode off through IOPTEs "
          "that type1 keeps past the zap, its known hazard (reported, not a failure)\n",
          runName(r, results), r.total.dmaViolations);
    if (r.failed)
      out += fmt::format(
          "FAIL {}: {} invariant-1 violations, {} lockdep reports, {} invariant-7 violations where "
          "there should be none\n",
          runName(r, results), r.total.violations, r.total.lockdepReports, r.total.dmaViolations);
  }
  return out;
}

}  // namespace vfiomm::report
