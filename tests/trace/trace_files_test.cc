// A small scenario run with tracing: the Chrome trace parses and holds
// exactly the events the scenario implies, the ftrace text has one line per
// event under the Linux names, and a run without tracing records nothing.
//
// The scenario: one 2 MiB BAR mapped once under address-space (4 KiB PTEs
// only), touched once per page by one thread on CPU 0, then memory decode
// turned off. So:
//  - 512 faults (2 MiB / 4 KiB), each one page_fault_user, one
//    handle_mm_fault that ends NOPAGE (per-VMA-lock attempts end RETRY and
//    are counted apart), and one vmf_insert_pfn (order 0);
//  - the decode-off write zaps the device's address space once:
//    one unmap_mapping_range, one zap_page_range_single clearing 512 PTEs,
//    whose flush reaches CPU 0 (the only CPU that used the mm) as one
//    remote shootdown — the config write runs on no simulated CPU — of the
//    whole mm (512 pages is more than the 33-page ceiling: pages -1),
//    linked to the zap by one flow arrow;
//  - when the run ends the process exits, and freeing its page tables
//    flushes CPU 0 once more (no zap: no arrow).
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>

#include "bound_context.h"
#include "sim/runner.h"
#include "sim/scenario.h"
#include "trace/chrome_trace_writer.h"
#include "trace/ftrace_writer.h"
#include "trace/tracer.h"

namespace vfiomm::sim {
namespace {

constexpr uint64_t kPages = 512;

const char* kScenario = R"(
name: trace-small
cpus: 2
devices:
  - name: nic
    bars:
      - {index: 0, size: 2M, type: mem32}
processes:
  - name: vmm
    open: [nic]
    mappings:
      - {name: regs, device: nic, bar: 0}
phases:
  - name: touch
    threads:
      - {name: vcpu0, process: vmm, cpu: 0, pattern: stride, stride: 4K}
  - name: decode-off
    events:
      - {type: memory-disable, device: nic, process: vmm}
)";

DesignResult tracedRun(size_t limit) {
  RunOptions options;
  options.traceLimit = limit;
  return runScenario(parseScenario(kScenario, "trace-small.yaml"), DesignKind::kAddressSpace,
                     options);
}

std::string chromeText(const trace::TraceLog& log) {
  std::ostringstream out;
  trace::writeChromeTrace(out, {&log});
  return out.str();
}

std::string ftraceText(const trace::TraceLog& log) {
  std::ostringstream out;
  trace::writeFtrace(out, {&log});
  return out.str();
}

TEST(TraceFiles, ChromeTraceHoldsTheScenarioEventsExactly) {
  testing::BoundContext bound;
  const DesignResult r = tracedRun(trace::Tracer::kDefaultLimit);
  ASSERT_TRUE(r.trace);
  ASSERT_EQ(r.phases.size(), 2U);
  ASSERT_EQ(r.phases[0].m.faults, kPages);  // the scenario is what the comment says
  const nlohmann::json doc = nlohmann::json::parse(chromeText(*r.trace));

  std::map<std::string, int> slices, instants, flows;
  int remoteShootdowns = 0;
  for (const auto& e : doc.at("traceEvents")) {
    const std::string ph = e.at("ph");
    const std::string name = e.at("name");
    if (ph == "X") ++slices[name];
    if (ph == "i") ++instants[name];
    if (ph == "s" || ph == "f") ++flows[ph];
    if (name == "handle_mm_fault order 0") {
      EXPECT_EQ(e.at("args").at("order"), 0);
      if (e.at("args").at("result") == "NOPAGE") ++slices["handle_mm_fault NOPAGE"];
    }
    if (name == "tlb_flush" && e.at("args").at("reason") == "remote shootdown") {
      EXPECT_EQ(e.at("args").at("pages"), -1);
      ++remoteShootdowns;
    }
    if (name == "zap_page_range_single") {
      EXPECT_EQ(e.at("args").at("entries"), kPages);
    }
  }
  EXPECT_EQ(slices["page_fault_user"], static_cast<int>(kPages));
  EXPECT_EQ(slices["handle_mm_fault NOPAGE"], static_cast<int>(kPages));
  EXPECT_EQ(instants["vmf_insert_pfn"], static_cast<int>(kPages));
  EXPECT_EQ(instants["vmf_insert_pfn_pmd"] + instants["vmf_insert_pfn_pud"], 0);
  EXPECT_EQ(slices["unmap_mapping_range"], 1);
  EXPECT_EQ(slices["zap_page_range_single"], 1);
  EXPECT_EQ(slices["tlb_flush"], 2);
  EXPECT_EQ(remoteShootdowns, 2);
  EXPECT_EQ(flows["s"], 1);
  EXPECT_EQ(flows["f"], 1);
  EXPECT_EQ(slices["phase touch"], 1);
  EXPECT_EQ(slices["phase decode-off"], 1);

  const auto& buffer = doc.at("otherData").at("buffers").at(0);
  EXPECT_EQ(buffer.at("design"), "address-space");
  EXPECT_EQ(buffer.at("dropped"), 0);
  EXPECT_EQ(buffer.at("limit"), trace::Tracer::kDefaultLimit);
}

TEST(TraceFiles, FtraceHasOneLinePerEventUnderLinuxNames) {
  testing::BoundContext bound;
  const DesignResult r = tracedRun(trace::Tracer::kDefaultLimit);
  ASSERT_TRUE(r.trace);
  std::istringstream text(ftraceText(*r.trace));
  std::string line;
  std::getline(text, line);
  EXPECT_EQ(line, "# vfiomm trace of design address-space (trace-cmd report format)");
  std::getline(text, line);
  EXPECT_THAT(line,
              ::testing::StartsWith("# buffer: ring buffer of 1000000 events keeping the latest;"));
  std::getline(text, line);
  EXPECT_EQ(line, "cpus=2");
  // comm-tid [cpu] seconds.micros: event: fields
  const std::regex shape(R"(^ *\S+-\d+ +\[(\d{3}|---)\] +\d+\.\d{6}: ([a-z_]+): .*$)");
  std::map<std::string, int> events;
  int faultsOnCpu0 = 0;
  int vcpuLines = 0;
  while (std::getline(text, line)) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, shape)) << line;
    ++events[m[2]];
    if (m[2] == "page_fault_user" && m[1] == "000") ++faultsOnCpu0;
    if (line.find("vcpu0-") != std::string::npos) ++vcpuLines;
  }
  EXPECT_EQ(events["page_fault_user"], static_cast<int>(kPages));
  EXPECT_EQ(faultsOnCpu0, static_cast<int>(kPages));
  EXPECT_EQ(events["vmf_insert_pfn"], static_cast<int>(kPages));
  EXPECT_EQ(events["handle_mm_fault"], events["handle_mm_fault_done"]);
  EXPECT_GE(events["handle_mm_fault_done"], static_cast<int>(kPages));
  EXPECT_EQ(events["zap_page_range_single"], 1);
  EXPECT_EQ(events["zap_page_range_single_done"], 1);
  EXPECT_EQ(events["unmap_mapping_range"], 1);
  EXPECT_EQ(events["tlb_flush"], 2);
  EXPECT_EQ(events["tracing_mark_write"], 4);  // two phases, begin and end
  // The decode-off write takes memory_lock for write: lockdep's lock events.
  EXPECT_GE(events["lock_acquire"], 1);
  EXPECT_EQ(events["mmap_lock_start_locking"], events["mmap_lock_acquire_returned"]);
  EXPECT_GT(vcpuLines, static_cast<int>(kPages));
  EXPECT_NE(ftraceText(*r.trace).find("tlb_flush: pages:-1 reason:remote shootdown (1)"),
            std::string::npos);
}

TEST(TraceFiles, TheBoundHoldsAndTheFilesSaySo) {
  testing::BoundContext bound;
  const DesignResult r = tracedRun(100);
  ASSERT_TRUE(r.trace);
  EXPECT_EQ(r.trace->events.size(), 100U);
  EXPECT_GT(r.trace->recorded, 3 * kPages);  // at least fault, handle_mm_fault, insert per page
  EXPECT_EQ(r.trace->dropped, r.trace->recorded - 100);
  const nlohmann::json doc = nlohmann::json::parse(chromeText(*r.trace));
  EXPECT_EQ(doc.at("otherData").at("buffers").at(0).at("dropped"), r.trace->dropped);
  EXPECT_NE(ftraceText(*r.trace).find(fmt::format("{} dropped", r.trace->dropped)),
            std::string::npos);
}

TEST(TraceFiles, ARunWithoutTracingRecordsNothing) {
  testing::BoundContext bound;
  trace::Tracer::current().start(10, "off", 1);
  trace::Tracer::current().stop();
  const DesignResult r =
      runScenario(parseScenario(kScenario, "trace-small.yaml"), DesignKind::kAddressSpace);
  EXPECT_FALSE(r.trace);
  EXPECT_EQ(r.phases.at(0).m.faults, kPages);
  EXPECT_EQ(trace::Tracer::current().recorded(), 0U);
}

}  // namespace
}  // namespace vfiomm::sim
