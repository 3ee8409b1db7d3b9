// Process and Thread: the user side, shaped like Linux's system calls so a
// test written against a real kernel ports line by line (docs/api.md).
// Calls return what the raw syscall returns: a value >= 0, or -errno.
// Loads and stores run on the thread's simulated CPU and return the signal
// a real thread would get (SIGBUS/BUS_ADRERR, SIGSEGV/SEGV_MAPERR or
// SEGV_ACCERR) instead of crashing anything.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "abi/vfio.h"
#include "hw/cpu.h"
#include "mm/memlock_rights.h"
#include "mm/task.h"
#include "sync/kernel_context.h"
#include "sync/spin_lock.h"

namespace vfiomm {

class DmaBuf;
class Eventfd;
class File;
class IommufdCtx;
class Kernel;
class Mm;
class Process;
class VfioContainer;
class VfioDeviceFile;
class VfioGroup;

inline constexpr int O_RDONLY = 0;
inline constexpr int O_WRONLY = 1;
inline constexpr int O_RDWR = 2;
inline constexpr unsigned MFD_CLOEXEC = 0x1;
inline constexpr unsigned MFD_ALLOW_SEALING = 0x2;

struct Rusage {
  uint64_t ru_minflt = 0;
  uint64_t ru_majflt = 0;
};

class Thread {
 public:
  Thread(Process& process, unsigned cpu, int tid);
  Thread(const Thread&) = delete;
  Thread& operator=(const Thread&) = delete;

  // A load or store of 1, 2, 4 or 8 bytes at `va`, on this thread's CPU.
  AccessResult load(uint64_t va, unsigned size = 4);
  AccessResult store(uint64_t va, uint64_t value, unsigned size = 4);

  Task& task() { return task_; }
  unsigned cpu() const { return cpu_; }
  Process& process() { return process_; }

  // The thread holding its CPU across many accesses, as a real thread runs
  // until its timeslice ends: one context switch for the lot instead of one
  // per access (load() and store() are a timeslice of one). Another thread
  // of the same CPU runs when the slice ends; syscalls do not need the CPU.
  class Timeslice {
   public:
    explicit Timeslice(Thread& thread);
    Timeslice(const Timeslice&) = delete;
    Timeslice& operator=(const Timeslice&) = delete;

    AccessResult load(uint64_t va, unsigned size = 4) { return cpu_.load(VirtAddr(va), size); }
    AccessResult store(uint64_t va, uint64_t value, unsigned size = 4) {
      return cpu_.store(VirtAddr(va), size, value);
    }

   private:
    const KernelContext::Scope in_;  // a memory access enters the kernel
    std::lock_guard<std::mutex> run_;
    Cpu& cpu_;
  };

 private:
  Process& process_;
  const unsigned cpu_;
  Task task_;
};

// files_struct's file_lock: guards the descriptor table.
inline const LockClass kFileLockClass{"&newf->file_lock"};
// The thread list of a thread group (tasklist_lock in the kernel).
inline const LockClass kThreadListLockClass{"tasklist_lock"};

// Syscalls of one process may come from several host threads at once, as
// from several threads of a real process (docs/api.md, "Concurrency").
class Process : public std::enable_shared_from_this<Process> {
 public:
  // A new process of `kernel` with one thread on CPU 0.
  static std::shared_ptr<Process> spawn(Kernel& kernel, std::string comm);

  Process(Kernel& kernel, std::string comm);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  int pid() const { return pid_; }
  const std::string& comm() const { return comm_; }
  Kernel& kernel() { return kernel_; }
  Mm& mm() { return *mm_; }
  bool exited() const { return exited_.load(std::memory_order_acquire); }

  // Threads: thread 0 exists from the start, on CPU 0. addThread() refuses
  // (nullptr) a CPU the kernel does not have, and an exited process.
  Thread& thread(size_t i = 0) EXCLUDES(threadLock_);
  Thread* addThread(unsigned cpu) EXCLUDES(threadLock_);
  size_t threadCount() EXCLUDES(threadLock_);

  // --- files ---------------------------------------------------------------
  // /dev/vfio/vfio (container), /dev/vfio/<group>, /dev/vfio/devices/vfio<N>,
  // /dev/iommu, /proc/self/mem. -ENOENT for anything else.
  long open(const std::string& path, int flags);
  long close(int fd);
  long pread(int fd, void* buf, uint64_t count, uint64_t offset);
  long pwrite(int fd, const void* buf, uint64_t count, uint64_t offset);
  long ioctl(int fd, unsigned long request, void* arg);
  // eventfd(2) (flags are accepted and ignored) and read(2) of its count:
  // 8 bytes, -EAGAIN when it is 0 (the model never blocks), -EINVAL for a
  // shorter buffer; read(2) of any other file is -EINVAL.
  long eventfd(unsigned initval, int flags);
  long read(int fd, void* buf, uint64_t count);

  // memfd_create(2): a shmem file of size 0 (its name only checked: /proc
  // maps does not print it). MFD_CLOEXEC and
  // MFD_ALLOW_SEALING are accepted and ignored; MFD_HUGETLB and any other
  // flag, or a name longer than 249 bytes, is -EINVAL (hugetlb memfds are
  // not modelled).
  long memfdCreate(const std::string& name, unsigned flags);
  // ftruncate(2) of a memfd: its new size; -EINVAL for any other file.
  long ftruncate(int fd, uint64_t length);

  // --- memory ----------------------------------------------------------------
  // MAP_HUGETLB with MAP_ANONYMOUS maps huge pages of the MAP_HUGE_* size
  // (2 MiB or 1 GiB) from the hugetlb pool (HostMemory::hugepages2M/1G):
  // -ENOMEM when the pool cannot reserve them. A memfd maps as a file.
  long mmap(uint64_t addr, uint64_t length, int prot, int flags, int fd, uint64_t offset);
  long munmap(uint64_t addr, uint64_t length);
  long mprotect(uint64_t addr, uint64_t length, int prot);
  long mremap(uint64_t oldAddr, uint64_t oldLength, uint64_t newLength, int flags,
              uint64_t newAddr = 0);
  long madvise(uint64_t addr, uint64_t length, int advice);
  long mlock(uint64_t addr, uint64_t length);
  long mincore(uint64_t addr, uint64_t length, std::vector<uint8_t>* vec);
  // /proc/<pid>/maps and /proc/<pid>/smaps as text (vfio-uapi.md §9).
  std::string maps();
  std::string smaps();
  // PR_SET_THP_DISABLE.
  void prctlSetThpDisable(bool disable);

  // --- life --------------------------------------------------------------------
  // The child (sharing open files, with a copy of the address space), or -errno.
  std::shared_ptr<Process> fork(long* error = nullptr);
  // Closes every descriptor and unmaps everything. Afterwards the process is
  // a dead task: fd calls are -EBADF, open -EMFILE, memory calls and fork
  // -ENOMEM, munmap -EINVAL (docs/api.md, "After exit()").
  void exit();
  Rusage getrusage();  // RUSAGE_SELF: every thread

  // The device file behind `fd`, for tests and monitors; nullptr otherwise.
  VfioDeviceFile* deviceFile(int fd);
  // The container behind `fd`, for tests and monitors; nullptr otherwise.
  VfioContainer* container(int fd);
  // The dma-buf behind `fd`, for tests and monitors; nullptr otherwise.
  std::shared_ptr<DmaBuf> dmaBuf(int fd);

  // setrlimit(RLIMIT_MEMLOCK): what long-term pins may charge, in bytes:
  // type1's MAP_DMA to the mm's locked_vm, iommufd's to the user's
  // (Kernel::user()); and what MAP_LOCKED and mlock() may add to the mm's.
  // The default is the kernel's MLOCK_LIMIT (8 MiB since 5.16);
  // RLIM_INFINITY is UINT64_MAX.
  void setRlimitMemlock(uint64_t bytes) { memlockLimit_.store(bytes, std::memory_order_relaxed); }
  // Whether the process has CAP_IPC_LOCK (capable()): no memlock limit
  // refuses its pins. type1 still charges them to locked_vm; iommufd
  // charges no user's locked_vm (IOPT_PAGES_ACCOUNT_NONE). Default: no.
  void setCapIpcLock(bool has) { capIpcLock_.store(has, std::memory_order_relaxed); }
  // Both, as the calls above check them.
  MemlockRights memlockRights() const {
    return {memlockLimit_.load(std::memory_order_relaxed),
            capIpcLock_.load(std::memory_order_relaxed)};
  }

 private:
  // A call of this process into the kernel: bound to the process's kernel,
  // and its task is what lockdep names in a splat (comm and pid; the
  // model's syscalls run on no CPU, so "CPU: ?").
  class Syscall {
   public:
    explicit Syscall(Process& process);

   private:
    const KernelContext::Scope in_;
  };

  // An open file (struct file): shared by every descriptor and every
  // process that has it (fork), alive while one of them holds it.
  struct FdEntry {
    enum class Kind { kContainer, kGroup, kDevice, kIommufd, kProcMem, kEventfd, kDmaBuf, kMemfd };
    explicit FdEntry(Kind k) : kind(k) {}
    FdEntry(FdEntry&& other) noexcept
        : kind(other.kind),
          file(std::move(other.file)),
          group(std::exchange(other.group, nullptr)),
          container(std::move(other.container)),
          iommufd(std::move(other.iommufd)),
          eventfd(std::move(other.eventfd)),
          dmabuf(std::move(other.dmabuf)) {}
    // The last reference to an open group file: vfio_group_fops_release()
    // once no device file holds the group file either.
    ~FdEntry();
    FdEntry(const FdEntry&) = delete;
    FdEntry& operator=(const FdEntry&) = delete;
    FdEntry& operator=(FdEntry&&) = delete;
    Kind kind;
    // What mmap(2) maps: a VfioDeviceFile, a ShmemFile, or a
    // FileWithoutMmap; a dma-buf's is VfioPciDmaBuf::file().
    std::shared_ptr<File> file;
    VfioGroup* group = nullptr;                // kGroup: an open of the group (VfioGroup::open)
    std::shared_ptr<VfioContainer> container;  // kContainer
    std::shared_ptr<IommufdCtx> iommufd;       // kIommufd
    std::shared_ptr<Eventfd> eventfd;          // kEventfd
    std::shared_ptr<DmaBuf> dmabuf;            // kDmaBuf: an exported buffer's file
  };
  using FdTable = std::map<int, std::shared_ptr<FdEntry>>;

  Process(Kernel& kernel, std::string comm, std::shared_ptr<Mm> mm);
  // fget(): the open file behind `fd`, held by the caller (a concurrent
  // close cannot free it), or nullptr.
  std::shared_ptr<FdEntry> fdEntry(int fd) EXCLUDES(fileLock_);
  // fd_install() at the lowest free number; -EMFILE once the process has
  // exited (its table is gone), and the entry is released.
  long installFd(FdEntry entry) EXCLUDES(fileLock_);
  long containerIoctl(FdEntry& e, unsigned long request, void* arg);
  long groupIoctl(FdEntry& e, unsigned long request, void* arg);
  long deviceIoctl(FdEntry& e, unsigned long request, void* arg);
  long bindIommufd(VfioDeviceFile& file, void* arg);
  long iommufdIoctl(FdEntry& e, unsigned long request, void* arg);
  // pread of /proc/self/mem (access_remote_vm through GUP).
  long procMemRead(uint64_t addr);

  Kernel& kernel_;
  const std::string comm_;
  const int pid_;
  std::shared_ptr<Mm> mm_;
  SpinLock threadLock_{kThreadListLockClass};
  std::vector<std::unique_ptr<Thread>> threads_ GUARDED_BY(threadLock_);
  SpinLock fileLock_{kFileLockClass};
  FdTable fds_ GUARDED_BY(fileLock_);
  bool filesGone_ GUARDED_BY(fileLock_) = false;  // exit_files() ran
  std::atomic<uint64_t> memlockLimit_{uint64_t{8} << 20};
  std::atomic<bool> capIpcLock_{false};
  // Atomic: monitors and tests ask from other threads while exit() runs.
  std::atomic<bool> exited_{false};
};

}  // namespace vfiomm
