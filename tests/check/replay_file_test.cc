// The replay file of `vfiomm check`: what --replay-out writes reads back
// whole, and a hand-edited or hostile file is refused with its path and the
// field that is wrong — never converted with undefined behaviour.
#include "check/replay_file.h"

#include <gtest/gtest.h>

#include <string>

#include "sim/scenario.h"

namespace vfiomm::check {
namespace {

ReplayFile sample() {
  ReplayFile r;
  r.scenario = "scenarios/check/fault-vs-disable.yaml";
  r.design = "address-space";
  r.mutations = {"fault-without-memory-lock"};
  r.strategy = "pct";
  r.seed = UINT64_MAX;
  r.depth = 3;
  r.schedule = 8;
  r.failure = "invariant 1 broken";
  r.choices = {1, 0, UINT32_MAX};
  return r;
}

std::string errorOf(const std::string& text) {
  try {
    (void)replayFromJson(text, "r.json");
  } catch (const sim::ScenarioError& e) {
    return e.what();
  }
  return "";
}

// A file with `field`'s value replaced by `value`.
std::string withField(const std::string& field, const std::string& value) {
  std::string text = replayToJson(sample());
  const size_t at = text.find("\"" + field + "\": ");
  const size_t from = at + field.size() + 4;
  size_t to = from;
  if (text[from] == '[') {
    to = text.find(']', from) + 1;
  } else {
    to = text.find_first_of(",\n", from);
  }
  return text.replace(from, to - from, value);
}

TEST(ReplayFileTest, WhatIsWrittenReadsBackWhole) {
  const ReplayFile back = replayFromJson(replayToJson(sample()), "r.json");
  EXPECT_EQ(back.scenario, sample().scenario);
  EXPECT_EQ(back.mutations, sample().mutations);
  EXPECT_EQ(back.seed, UINT64_MAX);
  EXPECT_EQ(back.depth, 3U);
  EXPECT_EQ(back.schedule, 8U);
  EXPECT_EQ(back.choices, sample().choices);
}

// Found by fuzz_check_replay (issue 17): a choice of 1.7e120 reached
// nlohmann's conversion to unsigned, which is undefined behaviour.
TEST(ReplayFileTest, NumbersOutOfRangeAreRefused) {
  EXPECT_NE(errorOf(withField("choices", "[0, 1.7e120]")).find("a choice must be a whole number"),
            std::string::npos);
  EXPECT_NE(errorOf(withField("choices", "[-1]")).find("a choice"), std::string::npos);
  EXPECT_NE(errorOf(withField("choices", "[4294967296]")).find("a choice"), std::string::npos);
  EXPECT_NE(errorOf(withField("choices", "[0.5]")).find("a choice"), std::string::npos);
  EXPECT_NE(errorOf(withField("choices", "7")).find("\"choices\" must be an array"),
            std::string::npos);
  EXPECT_NE(errorOf(withField("depth", "1e300")).find("r.json: \"depth\""), std::string::npos);
  EXPECT_NE(errorOf(withField("seed", "-3")).find("\"seed\""), std::string::npos);
  EXPECT_NE(errorOf(withField("schedule", "2.5")).find("\"schedule\""), std::string::npos);
  EXPECT_NE(errorOf(withField("vfiomm_check_replay", "1e300")).find("not a vfiomm check replay"),
            std::string::npos);
}

TEST(ReplayFileTest, OtherShapesAreRefused) {
  EXPECT_NE(errorOf("[1, 2]").find("not a vfiomm check replay"), std::string::npos);
  EXPECT_NE(errorOf("{").find("r.json: not a replay file"), std::string::npos);
  EXPECT_NE(errorOf(withField("design", "7")).find("r.json: not a replay file"), std::string::npos);
}

}  // namespace
}  // namespace vfiomm::check
