// vm_flags, protection, mmap/mremap/madvise flags, with Linux's values
// (include/linux/mm.h, include/uapi/asm-generic/mman*.h) so that a test
// written against a real kernel reads the same.
#pragma once

#include <cstdint>

#include "mm/pte.h"

namespace vfiomm {

using VmFlags = uint64_t;

namespace vm {
inline constexpr VmFlags kRead = 0x00000001;
inline constexpr VmFlags kWrite = 0x00000002;
inline constexpr VmFlags kExec = 0x00000004;
inline constexpr VmFlags kShared = 0x00000008;
inline constexpr VmFlags kMayRead = 0x00000010;
inline constexpr VmFlags kMayWrite = 0x00000020;
inline constexpr VmFlags kMayExec = 0x00000040;
inline constexpr VmFlags kMayShare = 0x00000080;
inline constexpr VmFlags kPfnmap = 0x00000400;
inline constexpr VmFlags kLocked = 0x00002000;
inline constexpr VmFlags kIo = 0x00004000;
inline constexpr VmFlags kSeqRead = 0x00008000;   // MADV_SEQUENTIAL
inline constexpr VmFlags kRandRead = 0x00010000;  // MADV_RANDOM
inline constexpr VmFlags kDontCopy = 0x00020000;
inline constexpr VmFlags kDontExpand = 0x00040000;
inline constexpr VmFlags kAccount = 0x00100000;
inline constexpr VmFlags kNoReserve = 0x00200000;
inline constexpr VmFlags kHugetlb = 0x00400000;
inline constexpr VmFlags kPat = 0x01000000;  // VM_ARCH_1 on x86
inline constexpr VmFlags kWipeOnFork = 0x02000000;
inline constexpr VmFlags kDontDump = 0x04000000;
inline constexpr VmFlags kSoftDirty = 0x08000000;  // CONFIG_MEM_SOFT_DIRTY
inline constexpr VmFlags kMixedmap = 0x10000000;
inline constexpr VmFlags kHugepage = 0x20000000;
inline constexpr VmFlags kNoHugepage = 0x40000000;
inline constexpr VmFlags kMergeable = 0x80000000;  // KSM (MADV_MERGEABLE)
inline constexpr VmFlags kAllowAnyUncached = 1ULL << 39;
inline constexpr VmFlags kSpecial = kIo | kDontExpand | kPfnmap | kMixedmap;  // VM_SPECIAL
}  // namespace vm

namespace prot {
inline constexpr int kNone = 0x0;
inline constexpr int kRead = 0x1;
inline constexpr int kWrite = 0x2;
inline constexpr int kExec = 0x4;
inline constexpr int kSem = 0x8;               // accepted, no effect on x86
inline constexpr int kGrowsDown = 0x01000000;  // mprotect: extend to the VMA's start
inline constexpr int kGrowsUp = 0x02000000;    // mprotect: extend to the VMA's end
}  // namespace prot

namespace map {
inline constexpr int kShared = 0x01;
inline constexpr int kPrivate = 0x02;
inline constexpr int kSharedValidate = 0x03;
inline constexpr int kTypeMask = 0x0f;
inline constexpr int kFixed = 0x10;
inline constexpr int kAnonymous = 0x20;
inline constexpr int k32Bit = 0x40;
inline constexpr int kGrowsDown = 0x100;
inline constexpr int kDenyWrite = 0x800;
inline constexpr int kExecutable = 0x1000;
inline constexpr int kLocked = 0x2000;
inline constexpr int kNoReserve = 0x4000;
inline constexpr int kPopulate = 0x8000;
inline constexpr int kNonBlock = 0x10000;
inline constexpr int kStack = 0x20000;
inline constexpr int kHugetlb = 0x40000;
inline constexpr int kSync = 0x80000;
inline constexpr int kFixedNoReplace = 0x100000;
inline constexpr int kUninitialized = 0x4000000;
// MAP_HUGE_SHIFT/MAP_HUGE_MASK: log2 of the huge page size of a MAP_HUGETLB
// (or MFD_HUGETLB) request in bits 26-31; 0 = the default size (2 MiB).
inline constexpr int kHugeShift = 26;
inline constexpr int kHugeMask = 0x3f;
inline constexpr int kHuge2Mb = 21 << kHugeShift;
inline constexpr int kHuge1Gb = 30 << kHugeShift;
// LEGACY_MAP_MASK: what MAP_SHARED_VALIDATE accepts of every file, the
// flags older than it (not MAP_FIXED_NOREPLACE, not MAP_SYNC).
inline constexpr int kLegacyMask = kShared | kPrivate | kFixed | kAnonymous | kDenyWrite |
                                   kExecutable | kUninitialized | kGrowsDown | kLocked |
                                   kNoReserve | kPopulate | kNonBlock | kStack | kHugetlb | k32Bit |
                                   kHuge2Mb | kHuge1Gb;
}  // namespace map

namespace mremap {
inline constexpr int kMayMove = 1;
inline constexpr int kFixed = 2;
inline constexpr int kDontUnmap = 4;
}  // namespace mremap

namespace madv {
inline constexpr int kNormal = 0;
inline constexpr int kRandom = 1;
inline constexpr int kSequential = 2;
inline constexpr int kWillNeed = 3;
inline constexpr int kDontNeed = 4;
inline constexpr int kFree = 8;
inline constexpr int kRemove = 9;
inline constexpr int kDontFork = 10;
inline constexpr int kDoFork = 11;
inline constexpr int kMergeable = 12;
inline constexpr int kUnmergeable = 13;
inline constexpr int kHugepage = 14;
inline constexpr int kNoHugepage = 15;
inline constexpr int kDontDump = 16;
inline constexpr int kDoDump = 17;
inline constexpr int kWipeOnFork = 18;
inline constexpr int kKeepOnFork = 19;
inline constexpr int kCold = 20;
inline constexpr int kPageout = 21;
inline constexpr int kPopulateRead = 22;
inline constexpr int kPopulateWrite = 23;
inline constexpr int kDontNeedLocked = 24;
inline constexpr int kCollapse = 25;
}  // namespace madv

// calc_vm_prot_bits() + calc_vm_flag_bits() for the bits the model uses.
constexpr VmFlags protToVmFlags(int p) {
  return ((p & prot::kRead) ? vm::kRead : 0) | ((p & prot::kWrite) ? vm::kWrite : 0) |
         ((p & prot::kExec) ? vm::kExec : 0);
}

// vm_get_page_prot(): x86's protection_map. Only a shared writable mapping
// gets RW in its entries; a private writable one would be COW.
constexpr uint64_t vmGetPageProt(VmFlags flags) {
  uint64_t bits = 0;
  if ((flags & (vm::kRead | vm::kWrite | vm::kExec)) != 0) bits |= pte::kUser;
  if ((flags & vm::kWrite) && (flags & vm::kShared)) bits |= pte::kRw;
  if (!(flags & vm::kExec)) bits |= pte::kNx;
  return bits;
}

// pgprot_noncached(): UC- via PCD (x86 _PAGE_CACHE_MODE_UC_MINUS).
constexpr uint64_t pgprotNoncached(uint64_t prot) { return prot | pte::kPcd; }

}  // namespace vfiomm
