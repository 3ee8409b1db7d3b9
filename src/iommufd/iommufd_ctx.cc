#include "iommufd/iommufd_ctx.h"

#include "abi/iommufd.h"
#include "base/user_copy.h"
#include "iommu/iommu.h"
#include "iommu/iommu_domain.h"

namespace vfiomm {

namespace {

constexpr uint32_t kMapFlags = uapi::IOMMU_IOAS_MAP_FIXED_IOVA | uapi::IOMMU_IOAS_MAP_WRITEABLE |
                               uapi::IOMMU_IOAS_MAP_READABLE;
// ULONG_MAX on the 64-bit host: iova and length must stay below it.
constexpr uint64_t kUlongMax = ~uint64_t{0};

// conv_iommu_prot() without IOMMU_CACHE, which the IOAS adds.
int mapProt(uint32_t flags) {
  int prot = 0;
  if (flags & uapi::IOMMU_IOAS_MAP_READABLE) prot |= iommuprot::kRead;
  if (flags & uapi::IOMMU_IOAS_MAP_WRITEABLE) prot |= iommuprot::kWrite;
  return prot;
}

// The command's struct from the user buffer: its leading `size` field says
// how much the caller passed, and less than the struct is -EINVAL.
template <typename T>
Status copyCmd(T* cmd, const void* arg) {
  uint32_t size = 0;
  if (auto st = copyFromUser(&size, arg, sizeof(size)); !st) return st;
  if (size < sizeof(T)) return fail(Errno::kEINVAL);
  return copyFromUser(cmd, arg, sizeof(T));
}

}  // namespace

IommufdCtx::IommufdCtx(int id, Iommu& iommu, SystemRam& ram, bool mapFile,
                       DmaBufIommufdMap dmabufMap)
    : id_(id), iommu_(iommu), ram_(ram), mapFile_(mapFile), dmabufMap_(std::move(dmabufMap)) {}

Result<long> IommufdCtx::ioctl(unsigned long request, void* arg, const IommufdCaller& caller) {
  switch (request) {
    case uapi::IOMMU_DESTROY: return destroy(arg);
    case uapi::IOMMU_IOAS_ALLOC: return ioasAlloc(arg);
    case uapi::IOMMU_IOAS_MAP: return ioasMap(arg, caller.source);
    case uapi::IOMMU_IOAS_MAP_FILE:
      // Not in iommufd's ioctl table before v6.13.
      if (!mapFile_) return fail(Errno::kENOTTY);
      return ioasMapFile(arg, caller);
    case uapi::IOMMU_IOAS_UNMAP: return ioasUnmap(arg);
    default: return fail(Errno::kENOTTY);
  }
}

std::shared_ptr<IoPagetable> IommufdCtx::ioas(uint32_t id) {
  SpinGuard g(lock_);
  auto it = ioases_.find(id);
  return it == ioases_.end() ? nullptr : it->second;
}

Status IommufdCtx::compatIoasCreate() {
  SpinGuard g(lock_);
  if (compatIoasId_ != 0 && ioases_.count(compatIoasId_) != 0) return ok();
  compatIoasId_ = allocObjectId();
  ioases_.emplace(compatIoasId_, std::make_shared<IoPagetable>(iommu_, ram_));
  return ok();
}

std::shared_ptr<IoPagetable> IommufdCtx::compatIoas() {
  SpinGuard g(lock_);
  auto it = ioases_.find(compatIoasId_);
  return compatIoasId_ == 0 || it == ioases_.end() ? nullptr : it->second;
}

Result<uint32_t> IommufdCtx::compatAttachDevice(const PciDevice& pdev) {
  uint32_t ioasId = 0;
  {
    SpinGuard g(lock_);
    ioasId = compatIoasId_;
  }
  if (ioasId == 0) return fail(Errno::kENODEV);
  const uint32_t devid = allocObjectId();
  if (auto st = attachDevice(devid, pdev, ioasId); !st) return fail(st.error());
  return devid;
}

Result<uint32_t> IommufdCtx::hwptFor(uint32_t ptId) {
  if (hwpts_.count(ptId) != 0) return ptId;
  std::shared_ptr<IoPagetable> iopt = ioas(ptId);
  if (iopt == nullptr) return fail(Errno::kENOENT);
  for (const auto& [id, hwpt] : hwpts_)
    if (hwpt.ioasId == ptId) return id;
  Hwpt hwpt{ptId, std::move(iopt), iommu_.allocDomain()};
  if (auto st = hwpt.iopt->addDomain(hwpt.domain); !st) return fail(st.error());
  const uint32_t id = allocObjectId();
  hwpts_.emplace(id, std::move(hwpt));
  return id;
}

void IommufdCtx::putHwpt(uint32_t hwptId) {
  auto it = hwpts_.find(hwptId);
  if (--it->second.users != 0) return;
  it->second.iopt->removeDomain(*it->second.domain);
  hwpts_.erase(it);
}

bool IommufdCtx::isHwpt(uint32_t id) {
  MutexGuard g(deviceLock_);
  return hwpts_.count(id) != 0;
}

Result<uint32_t> IommufdCtx::attachDevice(uint32_t devid, const PciDevice& pdev, uint32_t ptId) {
  MutexGuard g(deviceLock_);
  Result<uint32_t> hwptId = hwptFor(ptId);
  if (!hwptId) return hwptId;
  Hwpt& hwpt = hwpts_.at(*hwptId);
  ++hwpt.users;
  iommu_.attachDevice(pdev, hwpt.domain);
  auto it = attached_.find(devid);
  if (it != attached_.end()) {
    const uint32_t old = it->second.hwptId;
    it->second.hwptId = *hwptId;
    putHwpt(old);
  } else {
    attached_.emplace(devid, Attachment{&pdev, *hwptId});
  }
  return *hwptId;
}

void IommufdCtx::detachDevice(uint32_t devid) {
  MutexGuard g(deviceLock_);
  auto it = attached_.find(devid);
  if (it == attached_.end()) return;
  // The device stops translating before its IOPTEs go.
  iommu_.detachDevice(*it->second.pdev);
  putHwpt(it->second.hwptId);
  attached_.erase(it);
}

Result<long> IommufdCtx::destroy(void* arg) {
  uapi::iommu_destroy cmd;
  if (auto st = copyCmd(&cmd, arg); !st) return fail(st.error());
  // An automatic HWPT lives exactly as long as a device is on it.
  if (isHwpt(cmd.id)) return fail(Errno::kEBUSY);
  std::shared_ptr<IoPagetable> iopt = ioas(cmd.id);
  if (iopt == nullptr) return fail(Errno::kENOENT);
  // An attached device holds a reference: the object stays.
  if (iopt->hasDomains()) return fail(Errno::kEBUSY);
  SpinGuard g(lock_);
  ioases_.erase(cmd.id);  // `iopt` is torn down after the unlock
  return 0;
}

Result<long> IommufdCtx::ioasAlloc(void* arg) {
  uapi::iommu_ioas_alloc cmd;
  if (auto st = copyCmd(&cmd, arg); !st) return fail(st.error());
  if (cmd.flags != 0) return fail(Errno::kEOPNOTSUPP);
  cmd.out_ioas_id = allocObjectId();
  {
    SpinGuard g(lock_);
    ioases_.emplace(cmd.out_ioas_id, std::make_shared<IoPagetable>(iommu_, ram_));
  }
  if (auto st = copyToUser(arg, &cmd, sizeof(cmd)); !st) return fail(st.error());
  return 0;
}

Result<long> IommufdCtx::ioasMap(void* arg, const IoptSource& source) {
  uapi::iommu_ioas_map cmd;
  if (auto st = copyCmd(&cmd, arg); !st) return fail(st.error());
  if ((cmd.flags & ~kMapFlags) != 0 || cmd.__reserved != 0) return fail(Errno::kEOPNOTSUPP);
  if (cmd.iova >= kUlongMax || cmd.length >= kUlongMax) return fail(Errno::kEOVERFLOW);
  const int prot = mapProt(cmd.flags);
  if (prot == 0) return fail(Errno::kEINVAL);
  std::shared_ptr<IoPagetable> iopt = ioas(cmd.ioas_id);
  if (iopt == nullptr) return fail(Errno::kENOENT);
  const bool fixed = (cmd.flags & uapi::IOMMU_IOAS_MAP_FIXED_IOVA) != 0;
  auto iova = iopt->mapUserPages(source, cmd.user_va, cmd.length, cmd.iova, fixed, prot);
  if (!iova) return fail(iova.error());
  cmd.iova = *iova;
  if (auto st = copyToUser(arg, &cmd, sizeof(cmd)); !st) return fail(st.error());
  return 0;
}

Result<long> IommufdCtx::ioasMapFile(void* arg, const IommufdCaller& caller) {
  uapi::iommu_ioas_map_file cmd;
  if (auto st = copyCmd(&cmd, arg); !st) return fail(st.error());
  if ((cmd.flags & ~kMapFlags) != 0) return fail(Errno::kEOPNOTSUPP);
  if (cmd.iova >= kUlongMax || cmd.length >= kUlongMax) return fail(Errno::kEOVERFLOW);
  const int prot = mapProt(cmd.flags);
  if (prot == 0) return fail(Errno::kEINVAL);
  std::shared_ptr<IoPagetable> iopt = ioas(cmd.ioas_id);
  if (iopt == nullptr) return fail(Errno::kENOENT);
  // iopt_map_file_pages(): the range, then the fd as a dma-buf.
  if (cmd.length == 0) return fail(Errno::kEINVAL);
  if (cmd.start + (cmd.length - 1) < cmd.start) return fail(Errno::kEOVERFLOW);
  const bool fixed = (cmd.flags & uapi::IOMMU_IOAS_MAP_FIXED_IOVA) != 0;
  auto dmabuf = caller.dmaBufGet(cmd.fd);
  Result<uint64_t> iova = 0;
  if (dmabuf) {
    auto pages = IoptDmabufPages::alloc(std::move(*dmabuf), cmd.start, cmd.length, dmabufMap_);
    if (!pages) return fail(pages.error());
    // `pages` outlives the call, so a failed map releases them here, with
    // no IOAS lock held.
    iova = iopt->mapDmabufPages(*pages, cmd.start, cmd.length, cmd.iova, fixed, prot);
  } else {
    // Not a dma-buf: the file itself (iopt_alloc_file_pages()), whatever
    // it is; a file without pages fails when they are pinned.
    auto file = caller.fileGet(cmd.fd);
    if (!file) return fail(file.error());
    iova = iopt->mapFilePages(caller.source, std::move(*file), cmd.start, cmd.length, cmd.iova,
                              fixed, prot);
  }
  if (!iova) return fail(iova.error());
  cmd.iova = *iova;
  if (auto st = copyToUser(arg, &cmd, sizeof(cmd)); !st) return fail(st.error());
  return 0;
}

Result<long> IommufdCtx::ioasUnmap(void* arg) {
  uapi::iommu_ioas_unmap cmd;
  if (auto st = copyCmd(&cmd, arg); !st) return fail(st.error());
  std::shared_ptr<IoPagetable> iopt = ioas(cmd.ioas_id);
  if (iopt == nullptr) return fail(Errno::kENOENT);
  if (cmd.iova == 0 && cmd.length == ~uint64_t{0}) {
    cmd.length = iopt->unmapAll();
  } else {
    if (cmd.iova >= kUlongMax || cmd.length >= kUlongMax) return fail(Errno::kEOVERFLOW);
    auto removed = iopt->unmapIova(cmd.iova, cmd.length);
    if (!removed) return fail(removed.error());
    // Native unmap of nothing stays an error, whatever the compat one does.
    if (*removed == 0) return fail(Errno::kENOENT);
    cmd.length = *removed;
  }
  if (auto st = copyToUser(arg, &cmd, sizeof(cmd)); !st) return fail(st.error());
  return 0;
}

}  // namespace vfiomm
