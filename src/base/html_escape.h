// Text placed in HTML or SVG, as element content or as an attribute value
// in either kind of quotes: & < > " ' become entities.
#pragma once

#include <string>

namespace vfiomm {

std::string htmlEscape(const std::string& text);

}  // namespace vfiomm
