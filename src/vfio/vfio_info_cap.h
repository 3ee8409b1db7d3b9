// VfioInfoCap: the capability chain an info ioctl returns after its fixed
// struct (vfio_info_cap_add / vfio_info_cap_shift /
// vfio_info_add_capability, vfio-uapi.md §1). Capabilities are appended to a
// scratch buffer with `next` counted from the buffer's start; copyOut()
// either writes the chain after the fixed struct, shifting every `next` by
// the struct's size, or — when argsz is too small — asks for more.
#pragma once

#include <cstdint>
#include <vector>

#include "base/result.h"

namespace vfiomm {

class VfioInfoCap {
 public:
  // One capability: its header (id, version) then `body` (without header).
  void add(uint16_t id, uint16_t version, const void* body, uint32_t bodySize);
  bool empty() const { return buf_.empty(); }
  uint32_t size() const { return static_cast<uint32_t>(buf_.size()); }

  // What the info ioctl does with the chain. With a chain: the caller's
  // `flags` gains `capsFlag`; if `*argsz` < structSize + size(), `*argsz`
  // becomes that sum and `*capOffset` 0, nothing else is written; otherwise
  // the chain goes to user + structSize and `*capOffset` = structSize.
  // Without a chain nothing changes. -EFAULT only for a bad user buffer.
  Status copyOut(void* user, uint32_t structSize, uint32_t* argsz, uint32_t* capOffset,
                 uint32_t* flags, uint32_t capsFlag) const;

 private:
  std::vector<uint8_t> buf_;
  uint32_t lastHeader_ = 0;  // offset of the last header, to link the next one
};

}  // namespace vfiomm
