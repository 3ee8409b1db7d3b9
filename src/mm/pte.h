// Page-table entries in the x86-64 format (Intel SDM vol. 3 §4.5): the same
// bits at every level, PSE marking a huge leaf at PMD and PUD level. The
// "physical address" field of a table entry holds the host address of the
// next-level table page, so a walk follows entries exactly like the MMU does.
#pragma once

#include <cstdint>

#include "base/addr.h"

namespace vfiomm {

struct PageTablePage;

namespace pte {

inline constexpr uint64_t kPresent = 1ULL << 0;                  // _PAGE_PRESENT
inline constexpr uint64_t kRw = 1ULL << 1;                       // _PAGE_RW
inline constexpr uint64_t kUser = 1ULL << 2;                     // _PAGE_USER
inline constexpr uint64_t kPwt = 1ULL << 3;                      // _PAGE_PWT
inline constexpr uint64_t kPcd = 1ULL << 4;                      // _PAGE_PCD (uncached)
inline constexpr uint64_t kAccessed = 1ULL << 5;                 // _PAGE_ACCESSED ("young")
inline constexpr uint64_t kDirty = 1ULL << 6;                    // _PAGE_DIRTY
inline constexpr uint64_t kPse = 1ULL << 7;                      // _PAGE_PSE: leaf at PMD/PUD
inline constexpr uint64_t kSpecial = 1ULL << 9;                  // _PAGE_SPECIAL (software bit 1)
inline constexpr uint64_t kNx = 1ULL << 63;                      // _PAGE_NX
inline constexpr uint64_t kAddrMask = 0x000f'ffff'ffff'f000ULL;  // bits 12..51

// Protection bits a leaf carries (vm_page_prot without the pfn).
inline constexpr uint64_t kProtMask = kRw | kUser | kPwt | kPcd | kNx;

constexpr bool isNone(uint64_t e) { return e == 0; }
constexpr bool isPresent(uint64_t e) { return (e & kPresent) != 0; }
constexpr bool isWritable(uint64_t e) { return (e & kRw) != 0; }
constexpr bool isSpecial(uint64_t e) { return (e & kSpecial) != 0; }
// At PMD/PUD level: a huge leaf rather than a pointer to a table.
constexpr bool isHugeLeaf(uint64_t e) { return isPresent(e) && (e & kPse) != 0; }
constexpr bool isTable(uint64_t e) { return isPresent(e) && (e & kPse) == 0; }

constexpr Pfn pfnOf(uint64_t e) { return Pfn((e & kAddrMask) >> kPageShift); }

// pte_mkspecial(pfn_pte(pfn, prot)) and the huge variants.
constexpr uint64_t makeLeaf(Pfn pfn, uint64_t prot, bool huge) {
  return (pfn.value() << kPageShift) | (prot & kProtMask) | kPresent | kSpecial | (huge ? kPse : 0);
}

inline uint64_t makeTable(const PageTablePage* table) {
  return reinterpret_cast<uint64_t>(table) | kPresent | kRw | kUser;
}
inline PageTablePage* tableOf(uint64_t e) {
  return reinterpret_cast<PageTablePage*>(e & kAddrMask);
}

}  // namespace pte
}  // namespace vfiomm
