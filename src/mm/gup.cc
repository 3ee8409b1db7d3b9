#include "mm/gup.h"

#include "mm/file.h"
#include "mm/mm.h"
#include "mm/system_ram.h"
#include "mm/vma.h"

namespace vfiomm {

Result<Pfn> pinUserPage(Mm& mm, const Vma& vma, VirtAddr va, SystemRam& ram) {
  if (vma.file() != nullptr) return vma.file()->findOrAllocPage(vma.linearPageIndex(va).value());
  return ram.frameFor(mm.id(), va);
}

}  // namespace vfiomm
