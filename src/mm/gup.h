// The part of GUP (mm/gup.c) the long-term DMA pins use: the page frame
// behind one user address of a VMA that has struct pages (not VM_IO or
// VM_PFNMAP; the callers refuse those first). Anonymous memory gets a frame
// of system RAM at its first pin; a file VMA (a MAP_HUGETLB mapping's
// hugetlbfs file, a memfd) pins the file's page at that offset, so a huge
// page gives contiguous frames.
#pragma once

#include "base/addr.h"
#include "base/result.h"

namespace vfiomm {

class Mm;
class SystemRam;
class Vma;

// pin_user_pages(FOLL_LONGTERM) of the page at `va` in `vma` of `mm`.
Result<Pfn> pinUserPage(Mm& mm, const Vma& vma, VirtAddr va, SystemRam& ram);

}  // namespace vfiomm
