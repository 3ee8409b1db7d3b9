// The HTML report of `vfiomm run`, `compare` and `sweep --report FILE.html`
// (issue 7, docs/report.md): one self-contained page, inline CSS and inline
// SVG charts, nothing fetched from anywhere, no script.
#pragma once

#include <string>
#include <vector>

#include "sim/runner.h"
#include "sim/scenario.h"

namespace vfiomm::report {

struct HtmlSection {
  std::string title;  // plain text, escaped by the page
  std::string html;   // ready-made markup, inserted as is
};

// A whole page: a heading, a table of contents and the sections in order.
std::string renderHtmlPage(const std::string& title, const std::vector<HtmlSection>& sections);

// The sections `run` and `compare` show: the scenario, the comparison table,
// faults by page size per design, modelled time per design and phase, and a
// timeline of faults, zaps and shootdowns per design.
std::vector<HtmlSection> comparisonSections(const sim::Scenario& sc,
                                            const std::vector<sim::DesignResult>& results);

}  // namespace vfiomm::report
