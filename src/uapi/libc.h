// A C-compatible face of the model: the libc calls a VMM makes to set up a
// vfio device (open, ioctl, mmap, pread, ...), with libc's signatures and
// conventions — -1 and errno on failure, MAP_FAILED from mmap — bound to the
// current simulated task, plus <linux/vfio.h>'s structs and numbers. A C
// program written for a real kernel compiles against it with its memory
// accesses to mappings changed into peek()/poke() (docs/api.md, "Porting a
// C program"). Put the program inside `namespace vfiomm::libc` (or call
// through it): unqualified names then find these functions, not the host's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>

#include "abi/vfio.h"

namespace vfiomm {
class Process;
class Thread;
}  // namespace vfiomm

namespace vfiomm::libc {

using namespace vfiomm::uapi;

using ssize_t = long;
using off_t = long;
using pid_t = int;

// Linux's values (asm-generic), which the model's own constants share.
inline constexpr int O_RDONLY = 0;
inline constexpr int O_WRONLY = 1;
inline constexpr int O_RDWR = 2;
inline constexpr int O_CLOEXEC = 02000000;
inline constexpr int PROT_NONE = 0x0;
inline constexpr int PROT_READ = 0x1;
inline constexpr int PROT_WRITE = 0x2;
inline constexpr int PROT_EXEC = 0x4;
inline constexpr int MAP_SHARED = 0x01;
inline constexpr int MAP_PRIVATE = 0x02;
inline constexpr int MAP_FIXED = 0x10;
inline constexpr int MAP_ANONYMOUS = 0x20;
inline constexpr int MAP_NORESERVE = 0x4000;
inline constexpr int MAP_POPULATE = 0x8000;
inline void* const MAP_FAILED = reinterpret_cast<void*>(~uintptr_t{0});
inline constexpr int RUSAGE_SELF = 0;

struct rusage {  // NOLINT(readability-identifier-naming): libc's name
  long ru_minflt;
  long ru_majflt;
};

// The task the calls below act as: one simulated thread (its process's
// files and memory, its CPU for peek/poke), for the host thread that
// creates the Session, until it is destroyed. Sessions nest; the children
// fork() creates stay alive with the session that forked them.
class Session {
 public:
  explicit Session(Thread& thread);
  explicit Session(Process& process);  // its first thread
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  Thread& thread() const { return thread_; }
  // A child of fork(), by pid; nullptr if this session did not fork it.
  std::shared_ptr<Process> child(pid_t pid) const;

  // The session of the calling host thread; null outside any.
  static Session* current();

 private:
  friend pid_t fork();
  Thread& thread_;
  Session* const outer_;
  std::map<pid_t, std::shared_ptr<Process>> children_;
};

int open(const char* pathname, int flags, ...);
int close(int fd);
int ioctl(int fd, unsigned long request, ...);
ssize_t read(int fd, void* buf, size_t count);
ssize_t pread(int fd, void* buf, size_t count, off_t offset);
ssize_t pwrite(int fd, const void* buf, size_t count, off_t offset);
int eventfd(unsigned int initval, int flags);

void* mmap(void* addr, size_t length, int prot, int flags, int fd, off_t offset);
int munmap(void* addr, size_t length);
int mprotect(void* addr, size_t length, int prot);
int madvise(void* addr, size_t length, int advice);
int mincore(void* addr, size_t length, unsigned char* vec);

// The parent's view: the child's pid (the child, a copy of the current
// process, is Session::current()->child(pid)), or -1.
pid_t fork();
int getrusage(int who, struct rusage* usage);

// A load or store of 1, 2, 4 or 8 bytes at `addr` on the current thread's
// CPU, in place of `*(volatile uintN_t*)addr`: 0, or the number of the
// signal a real thread would have been killed by (x86-64's SIGBUS 7,
// SIGSEGV 11).
int peek(const void* addr, unsigned size, uint64_t* value);
int poke(void* addr, unsigned size, uint64_t value);

}  // namespace vfiomm::libc
