// Inode: the slice of struct inode the model needs — an identity and the
// address space that i_mapping points to.
#pragma once

#include <atomic>
#include <cstdint>

#include "mm/address_space.h"

namespace vfiomm {

class Inode {
 public:
  explicit Inode(uint64_t ino) : ino_(ino) {}
  Inode(const Inode&) = delete;
  Inode& operator=(const Inode&) = delete;

  uint64_t ino() const { return ino_; }
  AddressSpace& mapping() { return data_; }  // inode->i_mapping == &inode->i_data

 private:
  const uint64_t ino_;
  AddressSpace data_;
};

}  // namespace vfiomm
