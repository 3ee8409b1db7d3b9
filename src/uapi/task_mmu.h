// /proc/<pid>/maps and /proc/<pid>/smaps (fs/proc/task_mmu.c): the text a
// process reads for its address space, with the rules of vfio-uapi.md §9
// for vfio BAR mappings (conformance UAPI-30, UAPI-31).
#pragma once

#include <string>

#include "mm/vm_flags.h"

namespace vfiomm {

class Kernel;
class Mm;

// show_map(): one line per VMA.
std::string showMaps(Kernel& kernel, Mm& mm);
// show_smap(): the maps line, then Size, KernelPageSize, MMUPageSize, Rss
// and VmFlags per VMA.
std::string showSmaps(Kernel& kernel, Mm& mm);
// show_smap_vma_flags(): a mnemonic and a space per set bit, in bit order.
std::string vmFlagsMnemonics(VmFlags flags);

}  // namespace vfiomm
