// Result<T>: a value or an Errno, on tl::expected (neither compiler we build
// with has std::expected). Status is Result<void>.
#pragma once

#include <tl/expected.hpp>

#include "base/errno.h"

namespace vfiomm {

template <typename T>
using Result = tl::expected<T, Errno>;
using Status = Result<void>;

// `return fail(Errno::kEINVAL);` reads like the kernel's `return -EINVAL;`.
inline tl::unexpected<Errno> fail(Errno e) { return tl::unexpected<Errno>(e); }

inline Status ok() { return {}; }

}  // namespace vfiomm
