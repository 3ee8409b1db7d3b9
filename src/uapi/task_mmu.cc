#include "uapi/task_mmu.h"

#include <fmt/format.h>

#include "fs/inode.h"
#include "kernel/kernel.h"
#include "mm/fault.h"
#include "mm/mm.h"
#include "mm/vma.h"
#include "vfio/vfio_device_file.h"
#include "vfio/vfio_pci_dmabuf_file.h"

namespace vfiomm {

namespace {

// What show_map_vma() prints after the offset: st_dev, i_ino and d_path.
struct FileName {
  uint32_t dev = 0;
  uint64_t ino = 0;
  std::string path;
};

// The files the model maps are vfio device files: the group path's file
// is an anon-inode file named "[vfio-device]" (the per-device vfio-fs
// inode only replaces f_mapping, never f_path or f_inode), the cdev
// path's is the device node itself (UAPI-30). A vfio dma-buf's file (the
// proposals) prints its dmabuffs_dname(); the model keeps no dma-buf
// inode, so its device and inode print as 0.
FileName nameOf(Kernel& kernel, const File* file) {
  if (const auto* b = dynamic_cast<const VfioPciDmaBufFile*>(file)) return {0, 0, b->path()};
  const auto* f = dynamic_cast<const VfioDeviceFile*>(file);
  if (f == nullptr) return {};
  FileName n{f->fInode().dev(), f->fInode().ino(), {}};
  n.path =
      f->path() == VfioOpenPath::kGroup ? "anon_inode:[vfio-device]" : kernel.cdevPath(f->device());
  return n;
}

// show_vma_header_prefix() and the name, padded to the kernel's column.
std::string mapsLine(Kernel& kernel, const Vma& v) {
  const VmFlags f = v.flags();
  const FileName name = nameOf(kernel, v.file());
  std::string line =
      fmt::format("{:08x}-{:08x} {}{}{}{} {:08x} {:02x}:{:02x} {} ", v.start().value(),
                  v.end().value(), (f & vm::kRead) ? 'r' : '-', (f & vm::kWrite) ? 'w' : '-',
                  (f & vm::kExec) ? 'x' : '-', (f & vm::kMayShare) ? 's' : 'p', v.pgoff().toBytes(),
                  devMajor(name.dev), devMinor(name.dev), name.ino);
  if (!name.path.empty()) {
    // seq_setwidth(25 + sizeof(void *) * 6 - 1) then seq_pad(): column 73.
    constexpr size_t kNameColumn = 73;
    if (line.size() < kNameColumn) line.append(kNameColumn - line.size(), ' ');
    line += name.path;
  }
  return line + "\n";
}

}  // namespace

std::string vmFlagsMnemonics(VmFlags flags) {
  // The mnemonics of the bits the model sets; any other set bit prints
  // "??" as in the kernel (VM_ALLOW_ANY_UNCACHED, bit 39, has none).
  struct Mnemonic {
    VmFlags flag;
    const char* name;
  };
  static constexpr Mnemonic kNames[] = {
      {vm::kRead, "rd"},       {vm::kWrite, "wr"},      {vm::kExec, "ex"},
      {vm::kShared, "sh"},     {vm::kMayRead, "mr"},    {vm::kMayWrite, "mw"},
      {vm::kMayExec, "me"},    {vm::kMayShare, "ms"},   {vm::kPfnmap, "pf"},
      {vm::kLocked, "lo"},     {vm::kIo, "io"},         {vm::kSeqRead, "sr"},
      {vm::kRandRead, "rr"},   {vm::kDontCopy, "dc"},   {vm::kDontExpand, "de"},
      {vm::kAccount, "ac"},    {vm::kNoReserve, "nr"},  {vm::kHugetlb, "ht"},
      {vm::kPat, "ar"},        {vm::kWipeOnFork, "wf"}, {vm::kDontDump, "dd"},
      {vm::kSoftDirty, "sd"},  {vm::kMixedmap, "mm"},   {vm::kHugepage, "hg"},
      {vm::kNoHugepage, "nh"}, {vm::kMergeable, "mg"},
  };
  std::string out;
  for (unsigned bit = 0; bit < 64; ++bit) {
    const VmFlags flag = VmFlags{1} << bit;
    if (!(flags & flag)) continue;
    const char* name = "??";
    for (const Mnemonic& m : kNames)
      if (m.flag == flag) name = m.name;
    out += fmt::format("{} ", name);
  }
  return out;
}

std::string showMaps(Kernel& kernel, Mm& mm) {
  std::string out;
  mm.forEachVma([&](const Vma& v) { out += mapsLine(kernel, v); });
  return out;
}

std::string showSmaps(Kernel& kernel, Mm& mm) {
  std::string out;
  mm.forEachVma([&](const Vma& v) {
    out += mapsLine(kernel, v);
    out += fmt::format("Size: {:>14} kB\n", v.length() >> 10);
    // smaps cannot show huge pfnmap leaves: always 4 kB (MMAP-12); a
    // pfnmap has no pages, so no Rss.
    out += "KernelPageSize:        4 kB\nMMUPageSize:           4 kB\n";
    out += "Rss:                   0 kB\n";
    out += fmt::format("THPeligible:    {:>8}\n", thpEligibleForSmaps(v) ? 1 : 0);
    out += fmt::format("VmFlags: {}\n", vmFlagsMnemonics(v.flags()));
  });
  return out;
}

}  // namespace vfiomm
