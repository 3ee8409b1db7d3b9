// Scenario files are outside input: any text must either parse or be refused
// with a ScenarioError (file:line:col and what is wrong) — never another
// exception, a crash or undefined behaviour.
#include <cstddef>
#include <cstdint>
#include <string>

#include "sim/scenario.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    (void)vfiomm::sim::parseScenario(text, "fuzz.yaml");
  } catch (const vfiomm::sim::ScenarioError&) {
    // Refused with a message: what bad input gets.
  }
  return 0;
}
