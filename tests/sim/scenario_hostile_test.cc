// Issue 17, hostile scenario files: everything `run` would refuse, ignore or
// never finish is refused by the parser (and so by `vfiomm validate`) with
// file:line:column, before anything runs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "report/report.h"
#include "scenario_helpers.h"
#include "sim/scenario.h"

namespace vfiomm::sim {
namespace {

using report::jsonText;
using report::scenarioToJson;

using ::testing::HasSubstr;
using ::testing::StartsWith;

// These tests read their scenarios as "h.yaml".
std::string errorOf(const std::string& yaml) { return scenarioErrorOf(yaml, "h.yaml"); }

// A valid scenario; `device`, `mapping`, `thread` and `extra` are spliced
// in (line numbers in the tests count from "name: h" as line 1).
std::string scenario(const std::string& bars = "{index: 0, size: 2M, type: mem64}",
                     const std::string& mapping = "{name: m, device: d, bar: 0}",
                     const std::string& threads = "      - {name: t, process: p, cpu: 0}\n",
                     const std::string& top = "") {
  return "name: h\n" + top +
         "devices:\n"
         "  - name: d\n"
         "    bars:\n"
         "      - " +
         bars +
         "\n"
         "processes:\n"
         "  - name: p\n"
         "    open: [d]\n"
         "    mappings:\n"
         "      - " +
         mapping +
         "\n"
         "phases:\n"
         "  - name: touch\n"
         "    threads:\n" +
         threads;
}

TEST(ScenarioHostile, BaseScenarioIsAccepted) { EXPECT_EQ(errorOf(scenario()), "(accepted)"); }

TEST(ScenarioHostile, Finding3_NonUtf8Refused) {
  // A Latin-1 'é' (0xe9 followed by ASCII) at line 2, column 21.
  EXPECT_THAT(errorOf(scenario("{index: 0, size: 2M, type: mem64}", "{name: m, device: d, bar: 0}",
                               "      - {name: t, process: p, cpu: 0}\n",
                               "description: caf\xe9 au lait\n")),
              StartsWith("h.yaml:2:17: byte 0xe9 starts a truncated UTF-8 sequence"));
  EXPECT_THAT(errorOf("name: \xff\n"), StartsWith("h.yaml:1:7: byte 0xff is not UTF-8"));
  // Overlong '/', a UTF-16 surrogate, a truncated sequence at the end.
  EXPECT_THAT(errorOf("name: a\xc0\xaf\n"),
              StartsWith("h.yaml:1:8: byte 0xc0 starts an invalid UTF-8 sequence"));
  EXPECT_THAT(errorOf("name: \xed\xa0\x80\n"),
              StartsWith("h.yaml:1:7: byte 0xed starts an invalid"));
  EXPECT_THAT(errorOf("name: x\n#\xe2\x82"),
              StartsWith("h.yaml:2:2: byte 0xe2 starts a truncated"));
  // Control characters YAML does not allow (NUL, ESC, a C1 control).
  EXPECT_THAT(errorOf(std::string("name: a\0b\n", 10)),
              StartsWith("h.yaml:1:8: control character 0x00"));
  EXPECT_THAT(errorOf("name: \x1b[31m\n"), StartsWith("h.yaml:1:7: control character 0x1b"));
  EXPECT_THAT(errorOf("name: \xc2\x9b\n"),
              StartsWith("h.yaml:1:7: character U+009B is not allowed"));
}

TEST(ScenarioHostile, Finding3_Utf8TextAccepted) {
  // Columns count characters: the error after "ñé✓😀" is at column 5.
  EXPECT_EQ(errorOf(scenario("{index: 0, size: 2M, type: mem64}", "{name: m, device: d, bar: 0}",
                             "      - {name: t, process: p, cpu: 0}\n",
                             "description: \"café – ✓ 😀\tTab\xc2\x85NEL\"\n")),
            "(accepted)");
  EXPECT_THAT(errorOf("#\xc3\xb1\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80\xff\n"),
              StartsWith("h.yaml:1:6: byte 0xff"));
}

// A file name is whatever bytes Linux allows; the JSON results carry it and
// must still be written (nlohmann's dump() throws on invalid UTF-8).
TEST(ScenarioHostile, Finding3_JsonOfANonUtf8FileNameIsWritten) {
  const Scenario sc = parseScenario(scenario(), "caf\xe9.yaml");
  std::string text;
  ASSERT_NO_THROW(text = jsonText(scenarioToJson(sc), 2));
  EXPECT_THAT(text, HasSubstr("\"file\": \"caf\xef\xbf\xbd.yaml\""));
}

TEST(ScenarioHostile, Finding6_OffsetPlusLengthWrapRefused) {
  // 0x1000 + 0xfffffffffffff000 wraps to 0, which is not past the BAR's end.
  EXPECT_THAT(
      errorOf(scenario("{index: 0, size: 2M, type: mem64}",
                       "{name: m, device: d, bar: 0, offset: 0x1000, length: 0xfffffffffffff000}")),
      StartsWith(
          "h.yaml:10:62: mapping 'm' (18014398509481980K at 4K) runs past the end of BAR 0 (2M)"));
  // The same sum in a munmap event.
  EXPECT_THAT(
      errorOf(scenario() + "    events:\n"
                           "      - {type: munmap, process: p, mapping: m, offset: 4K, length: "
                           "0xfffffffffffff000}\n"),
      StartsWith("h.yaml:16:68: length must be a non-zero multiple of 4K inside mapping 'm'"));
  // A mremap to an address whose end wraps.
  EXPECT_THAT(errorOf(scenario() + "    events:\n"
                                   "      - {type: mremap, process: p, mapping: m, new_length: 8K, "
                                   "new_address: 0xfffffffffffff000}\n"),
              HasSubstr("reaches into the kernel half"));
}

TEST(ScenarioHostile, Finding9_EndlessInputRefused) {
  try {
    loadScenario("/dev/zero");
    FAIL() << "accepted /dev/zero";
  } catch (const ScenarioError& e) {
    EXPECT_EQ(std::string(e.what()),
              "/dev/zero: longer than the 16 MiB a scenario file may have (or an endless input)");
  }
  EXPECT_THROW(
      {
        try {
          loadScenario(std::filesystem::temp_directory_path().string());
        } catch (const ScenarioError& e) {
          EXPECT_THAT(e.what(), HasSubstr("is a directory"));
          throw;
        }
      },
      ScenarioError);
}

TEST(ScenarioHostile, Finding10_UnknownProfileRefused) {
  EXPECT_THAT(errorOf(scenario("{index: 0, size: 2M, type: mem64}", "{name: m, device: d, bar: 0}",
                               "      - {name: t, process: p, cpu: 0}\n", "profile: linux-9.99\n")),
              StartsWith("h.yaml:2:10: unknown profile 'linux-9.99' (known: linux-6.1"));
  EXPECT_EQ(errorOf(scenario("{index: 0, size: 2M, type: mem64}", "{name: m, device: d, bar: 0}",
                             "      - {name: t, process: p, cpu: 0}\n", "profile: linux-6.12\n")),
            "(accepted)");
}

TEST(ScenarioHostile, Finding10_BarTheKernelCannotPlaceRefused) {
  // 2^63 bytes: a power of two, but no host bridge window holds it.
  EXPECT_THAT(
      errorOf(scenario("{index: 0, size: 0x8000000000000000, type: mem64}",
                       "{name: m, device: d, bar: 0, length: 2M}")),
      StartsWith(
          "h.yaml:5:9: the kernel refuses device 'd': BAR 0 (8388608T) does not fit in the host "
          "bridge's 64-bit window [0x4000000000, 0x400000000000)"));
  // 32 TiB fits the 64-bit window once, not twice.
  EXPECT_EQ(errorOf(scenario("{index: 0, size: 32T, type: mem64}",
                             "{name: m, device: d, bar: 0, length: 2M}")),
            "(accepted)");
  EXPECT_THAT(errorOf(scenario(
                  "{index: 0, size: 32T, type: mem64}\n      - {index: 2, size: 32T, type: mem64}",
                  "{name: m, device: d, bar: 0, length: 2M}")),
              StartsWith("h.yaml:6:9: the kernel refuses device 'd': BAR 2 (32T)"));
  // A 1 GiB 32-bit BAR: the 32-bit window below 4 GiB is 492 MiB.
  EXPECT_THAT(errorOf(scenario("{index: 0, size: 1G, type: mem32}",
                               "{name: m, device: d, bar: 0, length: 2M}")),
              HasSubstr("32-bit window [0xe0000000, 0xfec00000)"));
}

TEST(ScenarioHostile, Finding10_DuplicateKeysRefused) {
  EXPECT_THAT(
      errorOf("name: a\nname: b\n"),
      StartsWith(
          "h.yaml:2:1: key 'name' is given twice in the scenario (first at line 1, column 1)"));
  EXPECT_THAT(
      errorOf(scenario("{index: 0, size: 2M, size: 4K, type: mem64}")),
      StartsWith("h.yaml:5:30: key 'size' is given twice in a BAR (first at line 5, column 20)"));
  EXPECT_THAT(
      errorOf(scenario("{index: 0, size: 2M, type: mem64}", "{name: m, device: d, bar: 0}",
                       "      - {name: t, process: p, cpu: 0, cpu: 1}\n")),
      StartsWith(
          "h.yaml:14:39: key 'cpu' is given twice in a thread (first at line 14, column 31)"));
  // A key that is not a plain string.
  EXPECT_THAT(errorOf("name: a\n? [x]\n: 1\n"),
              StartsWith("h.yaml:2:3: a key of the scenario must be a plain string"));
}

// The mark is the second document's start, its `---` line.
TEST(ScenarioHostile, Finding10_SecondDocumentRefused) {
  EXPECT_THAT(errorOf(scenario() + "---\nname: ignored\n"),
              StartsWith("h.yaml:15:1: a scenario is one YAML document; this is a second one"));
}

TEST(ScenarioHostile, Finding10_EmptyNamesRefused) {
  EXPECT_THAT(errorOf("name: h\ndevices:\n  - name: \"\"\n    bars: [{index: 0, size: 2M}]\n"),
              StartsWith("h.yaml:3:11: a device's name must not be empty"));
  EXPECT_THAT(
      errorOf(scenario("{index: 0, size: 2M, type: mem64}", "{name: '', device: d, bar: 0}")),
      StartsWith("h.yaml:10:16: a mapping's name must not be empty"));
  EXPECT_THAT(errorOf(scenario("{index: 0, size: 2M, type: mem64}", "{name: m, device: d, bar: 0}",
                               "      - {name: '', process: p, cpu: 0}\n")),
              StartsWith("h.yaml:14:16: a thread's name must not be empty"));
}

TEST(ScenarioHostile, Finding10_TwoThreadsWithOneNameRefused) {
  EXPECT_THAT(
      errorOf(scenario(
          "{index: 0, size: 2M, type: mem64}", "{name: m, device: d, bar: 0}",
          "      - {name: t, process: p, cpu: 0}\n      - {name: t, process: p, cpu: 1}\n")),
      StartsWith("h.yaml:15:16: thread 't' is defined twice in phase 'touch' (first at line 14)"));
  // A default name ("<process>.t<N>") counts too.
  EXPECT_THAT(
      errorOf(scenario("{index: 0, size: 2M, type: mem64}", "{name: m, device: d, bar: 0}",
                       "      - {name: p.t1, process: p, cpu: 0}\n      - {process: p, cpu: 1}\n")),
      StartsWith("h.yaml:15:9: thread 'p.t1' is defined twice"));
}

TEST(ScenarioHostile, Finding10_KernelHalfAddressRefused) {
  EXPECT_THAT(
      errorOf(scenario("{index: 0, size: 2M, type: mem64}",
                       "{name: m, device: d, bar: 0, address: 0x0000800000000000}")),
      StartsWith("h.yaml:10:47: mapping 'm' at 0x800000000000 (2M) reaches into the kernel half"));
  // Ending past the top of user space counts too; ending exactly there is fine.
  EXPECT_THAT(errorOf(scenario("{index: 0, size: 2M, type: mem64}",
                               "{name: m, device: d, bar: 0, address: 0x7fffffe00000}")),
              HasSubstr("reaches into the kernel half"));
  EXPECT_EQ(errorOf(scenario("{index: 0, size: 2M, type: mem64}",
                             "{name: m, device: d, bar: 0, address: 0x7fffffffe000, length: 4K}")),
            "(accepted)");
}

TEST(ScenarioHostile, Finding10_UnplaceableAlignmentRefused) {
  EXPECT_THAT(errorOf(scenario("{index: 0, size: 2M, type: mem64}",
                               "{name: m, device: d, bar: 0, align: 0x8000000000000000}")),
              StartsWith("h.yaml:10:45: mapping 'm' cannot be placed: 2M aligned to 8388608T"));
  // 64 TiB alignment: length + align is more than the 128 TiB user space
  // only with a long mapping; 1T is fine.
  EXPECT_THAT(errorOf(scenario("{index: 0, size: 32T, type: mem64}",
                               "{name: m, device: d, bar: 0, align: 128T}")),
              HasSubstr("cannot be placed"));
  EXPECT_EQ(errorOf(scenario("{index: 0, size: 2M, type: mem64}",
                             "{name: m, device: d, bar: 0, align: 1T}")),
            "(accepted)");
}

TEST(ScenarioHostile, Finding10_EndlessWorkloadsRefused) {
  // An event that waits for 2^64 - 1 accesses of a thread that runs until
  // the events are done: neither ever ends.
  EXPECT_THAT(
      errorOf(scenario("{index: 0, size: 2M, type: mem64}", "{name: m, device: d, bar: 0}",
                       "      - {name: t, process: p, cpu: 0, until_events_done: true}\n"
                       "    events:\n"
                       "      - {type: reset, device: d, after_accesses: 18446744073709551615}\n")),
      StartsWith("h.yaml:16:50: after_accesses 18446744073709551615 is more than the 4294967295"));
  EXPECT_THAT(errorOf(scenario(
                  "{index: 0, size: 2M, type: mem64}", "{name: m, device: d, bar: 0}",
                  "      - {name: t, process: p, cpu: 0, pattern: random, count: 4294967296}\n")),
              StartsWith("h.yaml:14:63: count 4294967296 is more than the 4294967295 accesses"));
  // Within the count bound, but not with the passes: 2^31 x 2 passes.
  EXPECT_THAT(errorOf(scenario("{index: 0, size: 2M, type: mem64}", "{name: m, device: d, bar: 0}",
                               "      - {name: t, process: p, cpu: 0, pattern: random, count: "
                               "2147483648, passes: 2}\n")),
              StartsWith("h.yaml:14:9: thread 't' would make 4294967296 accesses; a thread makes "
                         "at most 4294967295"));
  // A stride of 8 over a 32 TiB BAR: 2^42 accesses in one pass.
  EXPECT_THAT(
      errorOf(scenario("{index: 0, size: 32T, type: mem64}", "{name: m, device: d, bar: 0}",
                       "      - {name: t, process: p, cpu: 0, pattern: stride, stride: 8}\n")),
      HasSubstr("thread 't' would make 4398046511104 accesses"));
  // A fork's child program is bounded the same way.
  EXPECT_THAT(
      errorOf(scenario() + "    events:\n"
                           "      - {type: fork, process: p, child: c, program: {pattern: random, "
                           "count: 4294967295, passes: 3}}\n"),
      HasSubstr("the program of child 'c' would make 12884901885 accesses"));
}

// Found by fuzz_scenario: yaml-cpp's LoadAll() never returns on a stray
// flow ',' at block level (an endless run of empty documents); the parser
// counts at most two documents instead (fuzz/regressions/scenario/).
TEST(ScenarioHostile, FuzzFound_StrayFlowCommaIsRefusedNotAHang) {
  EXPECT_THAT(errorOf(","), StartsWith("h.yaml:1:1: a scenario is one YAML document"));
  EXPECT_THAT(errorOf("name: a\n- x\n, y\n"), StartsWith("h.yaml:"));
}

}  // namespace
}  // namespace vfiomm::sim
