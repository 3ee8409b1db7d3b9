#include "uapi/libc.h"

#include <cerrno>
#include <cstdarg>
#include <vector>

#include "base/assert.h"
#include "mm/vm_flags.h"
#include "uapi/process.h"

namespace vfiomm::libc {

static_assert(PROT_READ == prot::kRead && PROT_WRITE == prot::kWrite && PROT_EXEC == prot::kExec);
static_assert(MAP_SHARED == map::kShared && MAP_PRIVATE == map::kPrivate &&
              MAP_FIXED == map::kFixed && MAP_ANONYMOUS == map::kAnonymous &&
              MAP_NORESERVE == map::kNoReserve && MAP_POPULATE == map::kPopulate);
static_assert(O_RDONLY == vfiomm::O_RDONLY && O_RDWR == vfiomm::O_RDWR);

namespace {

thread_local Session* currentSession = nullptr;

Session& session() {
  VFIOMM_ASSERT_MSG(currentSession != nullptr, "a libc call outside any vfiomm::libc::Session");
  return *currentSession;
}

Process& process() { return session().thread().process(); }

// The raw syscall's result as libc returns it.
long sys(long rc) {
  if (rc >= 0) return rc;
  errno = static_cast<int>(-rc);
  return -1;
}

int sysInt(long rc) { return static_cast<int>(sys(rc)); }

uint64_t addr(const void* p) { return reinterpret_cast<uintptr_t>(p); }

int access(const AccessResult& r) { return r.sig.signo; }

}  // namespace

Session::Session(Thread& thread) : thread_(thread), outer_(currentSession) {
  currentSession = this;
}

Session::Session(Process& process) : Session(process.thread()) {}

Session::~Session() { currentSession = outer_; }

std::shared_ptr<Process> Session::child(pid_t pid) const {
  auto it = children_.find(pid);
  return it == children_.end() ? nullptr : it->second;
}

Session* Session::current() { return currentSession; }

int open(const char* pathname, int flags, ...) {
  if (pathname == nullptr) return sysInt(-EFAULT);
  return sysInt(process().open(pathname, flags));
}

int close(int fd) { return sysInt(process().close(fd)); }

int ioctl(int fd, unsigned long request, ...) {
  // As libc passes it on: one argument, a pointer or a value.
  va_list ap;
  va_start(ap, request);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return sysInt(process().ioctl(fd, request, arg));
}

ssize_t read(int fd, void* buf, size_t count) { return sys(process().read(fd, buf, count)); }

ssize_t pread(int fd, void* buf, size_t count, off_t offset) {
  if (offset < 0) return sys(-EINVAL);
  return sys(process().pread(fd, buf, count, static_cast<uint64_t>(offset)));
}

ssize_t pwrite(int fd, const void* buf, size_t count, off_t offset) {
  if (offset < 0) return sys(-EINVAL);
  return sys(process().pwrite(fd, buf, count, static_cast<uint64_t>(offset)));
}

int eventfd(unsigned int initval, int flags) { return sysInt(process().eventfd(initval, flags)); }

void* mmap(void* addr_, size_t length, int prot, int flags, int fd, off_t offset) {
  if (offset < 0) {
    errno = EINVAL;
    return MAP_FAILED;
  }
  const long rc =
      process().mmap(addr(addr_), length, prot, flags, fd, static_cast<uint64_t>(offset));
  if (rc < 0 && rc > -4096) {
    errno = static_cast<int>(-rc);
    return MAP_FAILED;
  }
  return reinterpret_cast<void*>(static_cast<uintptr_t>(rc));
}

int munmap(void* addr_, size_t length) { return sysInt(process().munmap(addr(addr_), length)); }

int mprotect(void* addr_, size_t length, int prot) {
  return sysInt(process().mprotect(addr(addr_), length, prot));
}

int madvise(void* addr_, size_t length, int advice) {
  return sysInt(process().madvise(addr(addr_), length, advice));
}

int mincore(void* addr_, size_t length, unsigned char* vec) {
  if (vec == nullptr) return sysInt(-EFAULT);
  std::vector<uint8_t> v;
  const long rc = process().mincore(addr(addr_), length, &v);
  if (rc < 0) return sysInt(rc);
  for (size_t i = 0; i < v.size(); ++i) vec[i] = v[i];
  return 0;
}

pid_t fork() {
  long rc = 0;
  std::shared_ptr<Process> child = process().fork(&rc);
  if (child == nullptr) return sysInt(rc);
  const pid_t pid = child->pid();
  session().children_[pid] = std::move(child);
  return pid;
}

int getrusage(int who, struct rusage* usage) {
  if (who != RUSAGE_SELF) return sysInt(-EINVAL);
  if (usage == nullptr) return sysInt(-EFAULT);
  const Rusage r = process().getrusage();
  usage->ru_minflt = static_cast<long>(r.ru_minflt);
  usage->ru_majflt = static_cast<long>(r.ru_majflt);
  return 0;
}

int peek(const void* addr_, unsigned size, uint64_t* value) {
  const AccessResult r = session().thread().load(addr(addr_), size);
  if (r.sig.signo == 0 && value != nullptr) *value = r.value;
  return access(r);
}

int poke(void* addr_, unsigned size, uint64_t value) {
  return access(session().thread().store(addr(addr_), value, size));
}

}  // namespace vfiomm::libc
