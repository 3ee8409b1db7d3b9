// Inode: the slice of struct inode the model needs — an identity (the
// superblock's st_dev and i_ino, as /proc/<pid>/maps prints them) and the
// address space that i_mapping points to.
#pragma once

#include <atomic>
#include <cstdint>

#include "mm/address_space.h"

namespace vfiomm {

// MKDEV(major, minor) in the kernel's internal 12:20 layout.
constexpr uint32_t makeDev(uint32_t major, uint32_t minor) { return (major << 20) | minor; }
constexpr uint32_t devMajor(uint32_t dev) { return dev >> 20; }
constexpr uint32_t devMinor(uint32_t dev) { return dev & ((1U << 20) - 1); }

class Inode {
 public:
  explicit Inode(uint64_t ino, uint32_t dev = 0) : ino_(ino), dev_(dev) {}
  Inode(const Inode&) = delete;
  Inode& operator=(const Inode&) = delete;

  uint64_t ino() const { return ino_; }
  uint32_t dev() const { return dev_; }      // i_sb->s_dev
  AddressSpace& mapping() { return data_; }  // inode->i_mapping == &inode->i_data

 private:
  const uint64_t ino_;
  const uint32_t dev_;
  AddressSpace data_;
};

}  // namespace vfiomm
