#include "vfio/vfio_info_cap.h"

#include <cstring>

#include "abi/vfio.h"
#include "base/user_copy.h"

namespace vfiomm {

namespace {

constexpr uint32_t kNextOffset = offsetof(uapi::vfio_info_cap_header, next);

uint32_t loadNext(const uint8_t* header) {
  uint32_t next = 0;
  std::memcpy(&next, header + kNextOffset, sizeof(next));
  return next;
}

void storeNext(uint8_t* header, uint32_t next) {
  std::memcpy(header + kNextOffset, &next, sizeof(next));
}

}  // namespace

void VfioInfoCap::add(uint16_t id, uint16_t version, const void* body, uint32_t bodySize) {
  const auto at = static_cast<uint32_t>(buf_.size());
  if (!buf_.empty()) storeNext(&buf_[lastHeader_], at);
  uapi::vfio_info_cap_header header{id, version, 0};
  // vfio_info_cap_add() rounds every capability up to 8 bytes so that the
  // next one's u64 fields stay aligned (DMA_AVAIL's 12 bytes become 16).
  buf_.resize(at + ((sizeof(header) + bodySize + 7) & ~size_t{7}));
  std::memcpy(&buf_[at], &header, sizeof(header));
  if (bodySize != 0) std::memcpy(&buf_[at + sizeof(header)], body, bodySize);
  lastHeader_ = at;
}

Status VfioInfoCap::copyOut(void* user, uint32_t structSize, uint32_t* argsz, uint32_t* capOffset,
                            uint32_t* flags, uint32_t capsFlag) const {
  if (buf_.empty()) return ok();
  if (user == nullptr) return fail(Errno::kEFAULT);
  *flags |= capsFlag;
  if (*argsz < structSize + size()) {
    *argsz = structSize + size();
    *capOffset = 0;
    return ok();
  }
  // vfio_info_cap_shift(): every link becomes an offset from the struct.
  std::vector<uint8_t> shifted = buf_;
  for (uint32_t at = 0;;) {
    const uint32_t next = loadNext(&shifted[at]);
    if (next == 0) break;
    storeNext(&shifted[at], next + structSize);
    at = next;
  }
  if (auto st = copyToUser(static_cast<uint8_t*>(user) + structSize, shifted.data(), size()); !st)
    return st;
  *capOffset = structSize;
  return ok();
}

}  // namespace vfiomm
