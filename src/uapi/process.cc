#include "uapi/process.h"

#include <fcntl.h>

#include <cstring>

#include "base/user_copy.h"
#include "dmabuf/dma_buf.h"
#include "fs/eventfd.h"
#include "fs/file_without_mmap.h"
#include "fs/hugetlbfs.h"
#include "fs/shmem.h"
#include "iommufd/iommufd_ctx.h"
#include "iommufd/iommufd_file.h"
#include "iommufd/vfio_compat.h"
#include "kernel/kernel.h"
#include "mm/mm.h"
#include "sync/lockdep.h"
#include "uapi/task_mmu.h"
#include "vfio/vfio_container.h"
#include "vfio/vfio_device.h"
#include "vfio/vfio_device_file.h"
#include "vfio/vfio_device_set.h"
#include "vfio/vfio_group.h"
#include "vfio/vfio_pci_dmabuf.h"

namespace vfiomm {

namespace {

long err(Errno e) { return -static_cast<long>(toInt(e)); }

template <typename T>
long toLong(const Result<T>& r) {
  if (!r) return err(r.error());
  return static_cast<long>(*r);
}

long toLong(const Status& s) { return s ? 0 : err(s.error()); }

constexpr unsigned kMemfdFlags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
// MFD_NAME_MAX_LEN: NAME_MAX less the "memfd:" prefix.
constexpr size_t kMemfdNameMax = 255 - 6;

}  // namespace

// ---------------------------------------------------------------------------
// Thread

Thread::Thread(Process& process, unsigned cpu, int tid) : process_(process), cpu_(cpu) {
  task_.comm = process.comm();
  task_.pid = process.pid();
  task_.tid = tid;
  task_.mm = &process.mm();
}

AccessResult Thread::load(uint64_t va, unsigned size) { return Timeslice(*this).load(va, size); }

AccessResult Thread::store(uint64_t va, uint64_t value, unsigned size) {
  return Timeslice(*this).store(va, value, size);
}

Thread::Timeslice::Timeslice(Thread& thread)
    : in_(thread.process_.kernel().context()),
      run_(thread.process_.kernel().cpuRunLock(thread.cpu_)),
      cpu_(thread.process_.kernel().machine().cpu(thread.cpu_)) {
  lockdep::setThreadIdentity(thread.task_.comm, thread.task_.tid, static_cast<int>(thread.cpu_));
  cpu_.switchTo(&thread.task_);
}

// ---------------------------------------------------------------------------
// Process life

Process::Syscall::Syscall(Process& process) : in_(process.kernel_.context()) {
  lockdep::setThreadIdentity(process.comm_, process.pid_, -1);
}

std::shared_ptr<Process> Process::spawn(Kernel& kernel, std::string comm) {
  const KernelContext::Scope in(kernel.context());
  return std::make_shared<Process>(kernel, std::move(comm));
}

Process::Process(Kernel& kernel, std::string comm)
    : Process(kernel, std::move(comm),
              std::make_shared<Mm>(kernel.machine(), kernel.profile().mm)) {
  mm_->setVmCommit(&kernel.vmCommit());
  mm_->setPatMemtype(&kernel.patMemtype());
  mm_->setOomKill(&kernel.oomKill());
  mm_->setSystemRam(&kernel.systemRam());
  mm_->setThpEnabled(kernel.config().thp);
}

Process::Process(Kernel& kernel, std::string comm, std::shared_ptr<Mm> mm)
    : kernel_(kernel), comm_(std::move(comm)), pid_(kernel.nextPid()), mm_(std::move(mm)) {
  mm_->setOwner(pid_, comm_);
  SpinGuard g(threadLock_);
  threads_.push_back(std::make_unique<Thread>(*this, 0, pid_));
}

Process::~Process() {
  const Syscall in(*this);
  exit();
}

Thread& Process::thread(size_t i) {
  const Syscall in(*this);
  SpinGuard g(threadLock_);
  return *threads_.at(i);  // a Thread never moves: the vector holds pointers
}

size_t Process::threadCount() {
  const Syscall in(*this);
  SpinGuard g(threadLock_);
  return threads_.size();
}

Thread* Process::addThread(unsigned cpu) {
  const Syscall in(*this);
  // A CPU the machine lacks would only fail at the thread's first access,
  // far from the mistake: refuse it here.
  if (cpu >= kernel_.machine().cpuCount() || exited()) return nullptr;
  auto t = std::make_unique<Thread>(*this, cpu, kernel_.nextPid());
  SpinGuard g(threadLock_);
  threads_.push_back(std::move(t));
  return threads_.back().get();
}

std::shared_ptr<Process> Process::fork(long* error) {
  const Syscall in(*this);
  auto childMm = mm_->fork();  // -ENOMEM once exit_mmap() ran
  if (!childMm) {
    if (error != nullptr) *error = err(childMm.error());
    return nullptr;
  }
  auto child = std::shared_ptr<Process>(new Process(kernel_, comm_, std::move(*childMm)));
  // copy_signal() copies the rlimits, copy_creds() the capabilities.
  child->memlockLimit_.store(memlockLimit_.load(std::memory_order_relaxed),
                             std::memory_order_relaxed);
  child->capIpcLock_.store(capIpcLock_.load(std::memory_order_relaxed), std::memory_order_relaxed);
  FdTable files;
  {
    // dup_fd(): a copy of the table taken under file_lock; the child shares
    // every open file.
    SpinGuard g(fileLock_);
    if (filesGone_) {
      if (error != nullptr) *error = err(Errno::kENOMEM);
      return nullptr;
    }
    files = fds_;
  }
  {
    SpinGuard g(child->fileLock_);
    child->fds_ = std::move(files);
  }
  auto first = std::make_unique<Thread>(*child, thread(0).cpu(), child->pid_);
  {
    SpinGuard g(child->threadLock_);
    child->threads_.front() = std::move(first);
  }
  if (error != nullptr) *error = child->pid_;
  return child;
}

// The task is dead after this: its descriptor table is gone (every later
// fd lookup is -EBADF, a new descriptor -EMFILE) and so is its address
// space (exit_mmap(): Mm refuses to map into it again). Both are refused
// under the lock that guards them, so a syscall racing exit() from another
// host thread cannot leave a file or a mapping behind (finding 8).
void Process::exit() {
  const Syscall in(*this);
  if (exited_.exchange(true, std::memory_order_acq_rel)) return;
  FdTable files;
  {
    SpinGuard g(fileLock_);
    filesGone_ = true;
    files.swap(fds_);
  }
  files.clear();  // filp_close() of each, outside file_lock
  mm_->exitMmap();
}

Rusage Process::getrusage() {
  const Syscall in(*this);
  Rusage r;
  SpinGuard g(threadLock_);
  for (auto& t : threads_) {
    r.ru_minflt += t->task().minFlt.load();
    r.ru_majflt += t->task().majFlt.load();
  }
  return r;
}

void Process::prctlSetThpDisable(bool disable) {
  const Syscall in(*this);
  mm_->setThpDisabled(disable);
}

std::string Process::maps() {
  const Syscall in(*this);
  return showMaps(kernel_, *mm_);
}

std::string Process::smaps() {
  const Syscall in(*this);
  return showSmaps(kernel_, *mm_);
}

// ---------------------------------------------------------------------------
// Files

Process::FdEntry::~FdEntry() {
  if (group != nullptr) group->put();
}

std::shared_ptr<Process::FdEntry> Process::fdEntry(int fd) {
  SpinGuard g(fileLock_);
  auto it = fds_.find(fd);
  return it == fds_.end() ? nullptr : it->second;
}

long Process::installFd(FdEntry entry) {
  auto file = std::make_shared<FdEntry>(std::move(entry));
  SpinGuard g(fileLock_);
  if (filesGone_) return err(Errno::kEMFILE);  // `file` goes after the unlock
  int fd = 3;
  while (fds_.count(fd) != 0) ++fd;
  fds_.emplace(fd, std::move(file));
  return fd;
}

VfioDeviceFile* Process::deviceFile(int fd) {
  const Syscall in(*this);
  std::shared_ptr<FdEntry> e = fdEntry(fd);
  if (e == nullptr || e->kind != FdEntry::Kind::kDevice) return nullptr;
  return static_cast<VfioDeviceFile*>(e->file.get());
}

VfioContainer* Process::container(int fd) {
  const Syscall in(*this);
  std::shared_ptr<FdEntry> e = fdEntry(fd);
  if (e == nullptr || e->kind != FdEntry::Kind::kContainer) return nullptr;
  return e->container.get();
}

std::shared_ptr<DmaBuf> Process::dmaBuf(int fd) {
  const Syscall in(*this);
  std::shared_ptr<FdEntry> e = fdEntry(fd);
  if (e == nullptr || e->kind != FdEntry::Kind::kDmaBuf) return nullptr;
  return e->dmabuf;
}

namespace {

// FMODE_READ and FMODE_WRITE of an open with `flags`.
bool openForRead(int flags) { return (flags & O_ACCMODE) != O_WRONLY; }
bool openForWrite(int flags) { return (flags & O_ACCMODE) != O_RDONLY; }

// The file of an open that has no File of its own, in the mode `flags` ask.
std::shared_ptr<File> fileWithoutMmap(int flags) {
  return std::make_shared<FileWithoutMmap>(openForRead(flags), openForWrite(flags));
}

}  // namespace

long Process::open(const std::string& path, int flags) {
  const Syscall in(*this);
  // A dead task has no descriptor table to allocate from.
  if (exited()) return err(Errno::kEMFILE);
  if (path == "/dev/vfio/vfio") {
    FdEntry e{FdEntry::Kind::kContainer};
    e.file = fileWithoutMmap(flags);
    e.container = std::make_shared<VfioContainer>(kernel_.iommu(), kernel_.systemRam(),
                                                  kernel_.machine().log(), kernel_.profile().vfio,
                                                  kernel_.config().type1);
    return installFd(std::move(e));
  }
  if (path == "/proc/self/mem") {
    FdEntry e{FdEntry::Kind::kProcMem};
    e.file = fileWithoutMmap(flags);
    return installFd(std::move(e));
  }
  if (path == "/dev/iommu") {
    FdEntry e{FdEntry::Kind::kIommufd};
    e.file = kernel_.profile().iommufd.mmap
                 ? std::make_shared<IommufdFile>(openForRead(flags), openForWrite(flags))
                 : fileWithoutMmap(flags);
    // iommufd finds vfio-pci's dma-buf import at run time (symbol_get);
    // a kernel without CONFIG_VFIO_PCI_DMABUF has none.
    DmaBufIommufdMap dmabufMap;
    if (kernel_.profile().vfio.dmabufFeature) dmabufMap = &VfioPciDmaBuf::iommufdMap;
    e.iommufd =
        std::make_shared<IommufdCtx>(kernel_.nextIommufdId(), kernel_.iommu(), kernel_.systemRam(),
                                     kernel_.profile().iommufd.mapFile, std::move(dmabufMap));
    return installFd(std::move(e));
  }
  if (VfioGroup* g = kernel_.groupByPath(path)) {
    if (auto st = g->open(); !st) return err(st.error());
    FdEntry e{FdEntry::Kind::kGroup};
    e.group = g;  // an -EMFILE below releases the open again
    e.file = fileWithoutMmap(flags);
    return installFd(std::move(e));
  }
  if (VfioDevice* d = kernel_.deviceByCdevPath(path)) {
    if (!d->claimCdev()) return err(Errno::kEBUSY);
    FdEntry e{FdEntry::Kind::kDevice};
    e.file = std::make_shared<VfioDeviceFile>(*d, VfioOpenPath::kCdev, kernel_.cdevInode(*d),
                                              openForRead(flags), openForWrite(flags));
    return installFd(std::move(e));
  }
  return err(Errno::kENOENT);
}

long Process::close(int fd) {
  const Syscall in(*this);
  std::shared_ptr<FdEntry> gone;  // released after file_lock, as filp_close()
  SpinGuard g(fileLock_);
  auto it = fds_.find(fd);
  if (it == fds_.end()) return err(Errno::kEBADF);
  gone = std::move(it->second);
  fds_.erase(it);
  return 0;
}

// A null buffer with a non-zero count: the kernel's copy to or from user
// space faults (-EFAULT). Linux looks the region up and, for a read, makes
// the first device access before its copy fails; the model stops before
// the region, so an invalid region with a null buffer is -EFAULT here,
// -EINVAL there.
long Process::pread(int fd, void* buf, uint64_t count, uint64_t offset) {
  const Syscall in(*this);
  const std::shared_ptr<FdEntry> e = fdEntry(fd);
  if (e != nullptr && e->kind == FdEntry::Kind::kProcMem)
    return count == 0 ? 0 : procMemRead(offset);
  if (e == nullptr || e->kind != FdEntry::Kind::kDevice) return err(Errno::kEBADF);
  auto& f = static_cast<VfioDeviceFile&>(*e->file);
  if (!f.readable()) return err(Errno::kEBADF);  // vfs_read(), before vfio's own check
  if (!f.accessGranted()) return err(Errno::kEINVAL);
  if (buf == nullptr && count != 0) return err(Errno::kEFAULT);
  return toLong(f.device().pci().rw(static_cast<uint8_t*>(buf), count, offset, false));
}

// mem_rw() -> access_remote_vm(): GUP refuses VM_IO|VM_PFNMAP VMAs and vfio
// has no ->access, so nothing is copied and the read is -EIO (MADV-03), as
// for an unmapped address. Other memory has no contents in the model.
long Process::procMemRead(uint64_t addr) {
  ReadGuard mmap(mm_->mmapLock());
  const Vma* vma = mm_->findVma(VirtAddr(addr));
  if (vma == nullptr || (vma->flags() & (vm::kIo | vm::kPfnmap)) != 0) return err(Errno::kEIO);
  return err(Errno::kENOSYS);
}

long Process::pwrite(int fd, const void* buf, uint64_t count, uint64_t offset) {
  const Syscall in(*this);
  const std::shared_ptr<FdEntry> e = fdEntry(fd);
  if (e == nullptr || e->kind != FdEntry::Kind::kDevice) return err(Errno::kEBADF);
  auto& f = static_cast<VfioDeviceFile&>(*e->file);
  if (!f.writable()) return err(Errno::kEBADF);  // vfs_write(), before vfio's own check
  if (!f.accessGranted()) return err(Errno::kEINVAL);
  if (buf == nullptr && count != 0) return err(Errno::kEFAULT);  // see pread()
  // The kernel copies from the user buffer; the model's rw reads it in place.
  auto* bytes = const_cast<uint8_t*>(static_cast<const uint8_t*>(buf));
  return toLong(f.device().pci().rw(bytes, count, offset, true));
}

long Process::ioctl(int fd, unsigned long request, void* arg) {
  const Syscall in(*this);
  std::shared_ptr<FdEntry> e = fdEntry(fd);
  if (e == nullptr) return err(Errno::kEBADF);
  switch (e->kind) {
    case FdEntry::Kind::kContainer: return containerIoctl(*e, request, arg);
    case FdEntry::Kind::kGroup: return groupIoctl(*e, request, arg);
    case FdEntry::Kind::kDevice: return deviceIoctl(*e, request, arg);
    case FdEntry::Kind::kIommufd: return iommufdIoctl(*e, request, arg);
    case FdEntry::Kind::kProcMem:
    case FdEntry::Kind::kEventfd:
    case FdEntry::Kind::kMemfd:   // F_ADD_SEALS is fcntl(2), not an ioctl
    case FdEntry::Kind::kDmaBuf:  // DMA_BUF_IOCTL_SYNC and the like are not modelled
      return err(Errno::kENOTTY);
  }
  return err(Errno::kENOTTY);
}

// The container's ioctls; the argument of SET_IOMMU and CHECK_EXTENSION is
// the IOMMU type itself, not a pointer.
long Process::containerIoctl(FdEntry& e, unsigned long request, void* arg) {
  const uintptr_t type = reinterpret_cast<uintptr_t>(arg);
  switch (request) {
    case uapi::VFIO_GET_API_VERSION: return uapi::VFIO_API_VERSION;
    case uapi::VFIO_CHECK_EXTENSION: return e.container->checkExtension(type);
    case uapi::VFIO_SET_IOMMU: return toLong(e.container->setIommu(type));
    default: {
      // vfio_fops_unl_ioctl(): every other request is the driver's, and
      // -EINVAL while there is none.
      const MemlockRights rights = memlockRights();
      const Type1Caller caller{thread().task(), *mm_, rights.limitBytes, rights.capIpcLock};
      auto r = e.container->driverIoctl(request, arg, caller);
      return r ? *r : err(r.error());
    }
  }
}

long Process::groupIoctl(FdEntry& e, unsigned long request, void* arg) {
  if (request == uapi::VFIO_GROUP_GET_STATUS) {
    uapi::vfio_group_status status;
    if (auto st = copyFromUser(&status, arg, sizeof(status)); !st) return err(st.error());
    if (status.argsz < sizeof(status)) return err(Errno::kEINVAL);
    status.flags = uapi::VFIO_GROUP_FLAGS_VIABLE;
    if (e.group->hasContainer()) status.flags |= uapi::VFIO_GROUP_FLAGS_CONTAINER_SET;
    return toLong(copyToUser(arg, &status, sizeof(status)));
  }
  if (request == uapi::VFIO_GROUP_SET_CONTAINER) {
    int containerFd = -1;
    if (auto st = copyFromUser(&containerFd, arg, sizeof(containerFd)); !st) return err(st.error());
    std::shared_ptr<FdEntry> c = fdEntry(containerFd);
    if (c == nullptr) return err(Errno::kEBADF);
    return toLong(e.group->setContainer(c->container, c->iommufd));
  }
  if (request == uapi::VFIO_GROUP_UNSET_CONTAINER) return toLong(e.group->unsetContainer());
  if (request == uapi::VFIO_GROUP_GET_DEVICE_FD) {
    // The argument is the device's name, a C string (strndup_user).
    if (arg == nullptr) return err(Errno::kEFAULT);
    auto file = e.group->getDeviceFd(static_cast<const char*>(arg));
    if (!file) return err(file.error());
    FdEntry d{FdEntry::Kind::kDevice};
    d.file = *file;
    return installFd(std::move(d));
  }
  return err(Errno::kENOTTY);
}

long Process::bindIommufd(VfioDeviceFile& file, void* arg) {
  uapi::vfio_device_bind_iommufd bind{};
  constexpr size_t minsz = offsetof(uapi::vfio_device_bind_iommufd, out_devid);
  if (auto st = copyFromUser(&bind, arg, minsz); !st) return err(st.error());
  if (bind.argsz < minsz || bind.flags != 0 || bind.iommufd < 0) return err(Errno::kEINVAL);
  // Only an unbound cdev file binds, checked before the iommufd is looked up.
  if (file.path() != VfioOpenPath::kCdev || file.accessGranted()) return err(Errno::kEINVAL);
  // iommufd_ctx_from_fd(): no file, or a file that is not an iommufd.
  std::shared_ptr<FdEntry> i = fdEntry(bind.iommufd);
  if (i == nullptr) return err(Errno::kEBADF);
  if (i->kind != FdEntry::Kind::kIommufd) return err(Errno::kEBADFD);
  const uint32_t devid = i->iommufd->allocObjectId();
  if (auto st = file.bindIommufd(i->iommufd, devid); !st) return err(st.error());
  auto* out = static_cast<uint8_t*>(arg) + offsetof(uapi::vfio_device_bind_iommufd, out_devid);
  return toLong(copyToUser(out, &devid, sizeof(devid)));
}

long Process::iommufdIoctl(FdEntry& e, unsigned long request, void* arg) {
  // The pins of a map are charged to the one user every process runs as.
  const MemlockRights rights = memlockRights();
  const IoptSource source{*mm_, kernel_.user(), rights.limitBytes, rights.capIpcLock};
  if (IommufdVfioCompat::handles(request)) {
    auto r = IommufdVfioCompat(*e.iommufd, kernel_.profile().iommufd).ioctl(request, arg, source);
    return r ? *r : err(r.error());
  }
  IommufdCaller caller{source,
                       [this](int fd) -> Result<std::shared_ptr<DmaBuf>> {
                         std::shared_ptr<FdEntry> b = fdEntry(fd);
                         if (b == nullptr) return fail(Errno::kEBADF);
                         if (b->kind != FdEntry::Kind::kDmaBuf) return fail(Errno::kEINVAL);
                         return b->dmabuf;
                       },
                       [this](int fd) -> Result<std::shared_ptr<File>> {
                         std::shared_ptr<FdEntry> f = fdEntry(fd);
                         if (f == nullptr) return fail(Errno::kEBADF);
                         return f->file;
                       }};
  auto r = e.iommufd->ioctl(request, arg, caller);
  return r ? *r : err(r.error());
}

long Process::deviceIoctl(FdEntry& e, unsigned long request, void* arg) {
  auto& file = static_cast<VfioDeviceFile&>(*e.file);
  if (request == uapi::VFIO_DEVICE_BIND_IOMMUFD) return bindIommufd(file, arg);
  VfioIoctlCaller caller;
  caller.groupFromFd = [this](int fd) -> Result<const VfioGroup*> {
    std::shared_ptr<FdEntry> g = fdEntry(fd);
    if (g == nullptr) return fail(Errno::kEBADF);
    if (g->kind != FdEntry::Kind::kGroup) return fail(Errno::kEINVAL);
    return g->group;
  };
  caller.eventfdFromFd = [this](int fd) -> Result<std::shared_ptr<Eventfd>> {
    std::shared_ptr<FdEntry> ev = fdEntry(fd);
    if (ev == nullptr) return fail(Errno::kEBADF);
    if (ev->kind != FdEntry::Kind::kEventfd) return fail(Errno::kEINVAL);
    return ev->eventfd;
  };
  caller.dmaBufFromFd = [this](int fd) -> Result<std::shared_ptr<DmaBuf>> {
    std::shared_ptr<FdEntry> b = fdEntry(fd);
    if (b == nullptr) return fail(Errno::kEBADF);
    if (b->kind != FdEntry::Kind::kDmaBuf) return fail(Errno::kEINVAL);
    return b->dmabuf;
  };
  caller.dmaBufFd = [this](std::shared_ptr<DmaBuf> dmabuf) -> Result<int> {
    FdEntry b{FdEntry::Kind::kDmaBuf};
    b.dmabuf = std::move(dmabuf);
    const long fd = installFd(std::move(b));
    if (fd < 0) return fail(Errno::kEMFILE);
    return static_cast<int>(fd);
  };
  auto r = file.ioctl(request, arg, caller);
  return r ? *r : err(r.error());
}

long Process::eventfd(unsigned initval, int) {
  const Syscall in(*this);
  FdEntry e{FdEntry::Kind::kEventfd};
  e.eventfd = std::make_shared<Eventfd>(initval);
  e.file = fileWithoutMmap(O_RDWR);  // eventfd2() opens its anon inode O_RDWR
  return installFd(std::move(e));
}

long Process::read(int fd, void* buf, uint64_t count) {
  const Syscall in(*this);
  std::shared_ptr<FdEntry> e = fdEntry(fd);
  if (e == nullptr) return err(Errno::kEBADF);
  if (e->kind != FdEntry::Kind::kEventfd || count < sizeof(uint64_t)) return err(Errno::kEINVAL);
  const uint64_t value = e->eventfd->read();
  if (value == 0) return err(Errno::kEAGAIN);
  if (auto st = copyToUser(buf, &value, sizeof(value)); !st) return err(st.error());
  return sizeof(value);
}

// ---------------------------------------------------------------------------
// Memory

long Process::mmap(uint64_t addr, uint64_t length, int prot, int flags, int fd, uint64_t offset) {
  const Syscall in(*this);
  // x86-64's sys_mmap() refuses an offset that is not page aligned before
  // it looks at the fd.
  if (!isPageAligned(offset)) return err(Errno::kEINVAL);
  std::shared_ptr<File> file;
  if (!(flags & map::kAnonymous)) {
    const std::shared_ptr<FdEntry> e = fdEntry(fd);
    if (e == nullptr) return err(Errno::kEBADF);
    file = e->kind == FdEntry::Kind::kDmaBuf ? VfioPciDmaBuf::file(e->dmabuf) : e->file;
  } else if (flags & map::kHugetlb) {
    // ksys_mmap_pgoff(): anonymous huge pages are a mapping of an unlinked
    // hugetlbfs file of the requested size, the length rounded up to it.
    const uint64_t huge = HugetlbFile::sizeFromMapFlags(flags);
    if (huge == 0) return err(Errno::kEINVAL);
    if (length > ~uint64_t{0} - huge) return err(Errno::kENOMEM);
    length = (length + huge - 1) & ~(huge - 1);
    file = std::make_shared<HugetlbFile>(kernel_.systemRam(), huge, length);
    flags &= ~(map::kAnonymous | map::kHugetlb | (map::kHugeMask << map::kHugeShift));
  }
  auto r = mm_->mmap(VirtAddr(addr), length, prot, flags, std::move(file), offset, memlockRights());
  if (!r) return err(r.error());
  return static_cast<long>(r->value());
}

long Process::memfdCreate(const std::string& name, unsigned flags) {
  const Syscall in(*this);
  if ((flags & ~kMemfdFlags) != 0 || name.size() > kMemfdNameMax) return err(Errno::kEINVAL);
  FdEntry e{FdEntry::Kind::kMemfd};
  e.file = std::make_shared<ShmemFile>(kernel_.systemRam());
  return installFd(std::move(e));
}

long Process::ftruncate(int fd, uint64_t length) {
  const Syscall in(*this);
  const std::shared_ptr<FdEntry> e = fdEntry(fd);
  if (e == nullptr) return err(Errno::kEBADF);
  // Only a regular file has a size to set.
  if (e->kind != FdEntry::Kind::kMemfd) return err(Errno::kEINVAL);
  static_cast<ShmemFile&>(*e->file).setSize(length);
  return 0;
}

long Process::munmap(uint64_t addr, uint64_t length) {
  const Syscall in(*this);
  return toLong(mm_->munmap(VirtAddr(addr), length));
}

long Process::mprotect(uint64_t addr, uint64_t length, int prot) {
  const Syscall in(*this);
  return toLong(mm_->mprotect(VirtAddr(addr), length, prot));
}

long Process::mremap(uint64_t oldAddr, uint64_t oldLength, uint64_t newLength, int flags,
                     uint64_t newAddr) {
  const Syscall in(*this);
  auto r = mm_->mremap(VirtAddr(oldAddr), oldLength, newLength, flags, VirtAddr(newAddr),
                       memlockRights());
  if (!r) return err(r.error());
  return static_cast<long>(r->value());
}

long Process::madvise(uint64_t addr, uint64_t length, int advice) {
  const Syscall in(*this);
  return toLong(mm_->madvise(VirtAddr(addr), length, advice));
}

long Process::mlock(uint64_t addr, uint64_t length) {
  const Syscall in(*this);
  return toLong(mm_->mlock(VirtAddr(addr), length, memlockRights()));
}

long Process::mincore(uint64_t addr, uint64_t length, std::vector<uint8_t>* vec) {
  const Syscall in(*this);
  auto r = mm_->mincore(VirtAddr(addr), length);
  if (!r) return err(r.error());
  if (vec == nullptr) return err(Errno::kEFAULT);  // the copy to user space faults
  *vec = std::move(*r);
  return 0;
}

}  // namespace vfiomm
