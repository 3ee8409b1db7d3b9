// x86-64 4-level paging geometry (mm-pfnmap.md §1). Every shift, order and
// size the model uses comes from here.
#pragma once

#include <cstdint>

namespace vfiomm {

inline constexpr unsigned kPageShift = 12;  // PAGE_SHIFT
inline constexpr unsigned kPmdShift = 21;   // PMD_SHIFT
inline constexpr unsigned kPudShift = 30;   // PUD_SHIFT
inline constexpr unsigned kPgdShift = 39;   // PGDIR_SHIFT (P4D folded)

inline constexpr uint64_t kPageSize = uint64_t{1} << kPageShift;  // 4 KiB
inline constexpr uint64_t kPmdSize = uint64_t{1} << kPmdShift;    // 2 MiB
inline constexpr uint64_t kPudSize = uint64_t{1} << kPudShift;    // 1 GiB
inline constexpr uint64_t kPgdSize = uint64_t{1} << kPgdShift;    // 512 GiB

inline constexpr uint64_t kPageMask = ~(kPageSize - 1);  // PAGE_MASK
inline constexpr uint64_t kPmdMask = ~(kPmdSize - 1);    // PMD_MASK
inline constexpr uint64_t kPudMask = ~(kPudSize - 1);    // PUD_MASK

// Orders in 4 KiB pages, as huge_fault(vmf, order) receives them.
inline constexpr unsigned kPteOrder = 0;
inline constexpr unsigned kPmdOrder = kPmdShift - kPageShift;  // PMD_ORDER = 9
inline constexpr unsigned kPudOrder = kPudShift - kPageShift;  // PUD_ORDER = 18

inline constexpr unsigned kPtrsPerTable = 512;  // PTRS_PER_{PTE,PMD,PUD,PGD}
inline constexpr uint64_t kPageTableBytes = kPageSize;

// 47-bit user address space: TASK_SIZE of 4-level x86-64.
inline constexpr uint64_t kTaskSize = 0x7fff'ffff'f000ULL;

// Page-table levels, leaf-most first so that "level <= kPmd" reads naturally.
enum class PtLevel : uint8_t { kPte = 0, kPmd = 1, kPud = 2, kPgd = 3 };

constexpr unsigned levelShift(PtLevel l) { return kPageShift + 9U * static_cast<unsigned>(l); }
constexpr uint64_t levelSize(PtLevel l) { return uint64_t{1} << levelShift(l); }
constexpr unsigned levelOrder(PtLevel l) { return levelShift(l) - kPageShift; }
constexpr const char* levelName(PtLevel l) {
  switch (l) {
    case PtLevel::kPte: return "pte";
    case PtLevel::kPmd: return "pmd";
    case PtLevel::kPud: return "pud";
    case PtLevel::kPgd: return "pgd";
  }
  return "?";
}

constexpr uint64_t pageAlignDown(uint64_t v) { return v & kPageMask; }
constexpr uint64_t pageAlignUp(uint64_t v) { return (v + kPageSize - 1) & kPageMask; }
constexpr bool isPageAligned(uint64_t v) { return (v & ~kPageMask) == 0; }
constexpr bool isAligned(uint64_t v, uint64_t size) { return (v & (size - 1)) == 0; }
constexpr bool isPowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }
// `align` a power of two.
constexpr uint64_t roundDown(uint64_t v, uint64_t align) { return v & ~(align - 1); }
constexpr uint64_t roundUp(uint64_t v, uint64_t align) { return roundDown(v + align - 1, align); }

}  // namespace vfiomm
