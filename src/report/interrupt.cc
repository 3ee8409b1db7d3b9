#include "report/interrupt.h"

#include <limits.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace vfiomm::report {

namespace {

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};

// A slot is free (0), being filled or emptied (1) or armed (2); the handler
// reads armed slots only.
constexpr int kFree = 0;
constexpr int kBusy = 1;
constexpr int kArmed = 2;

struct FileSlot {
  std::atomic<int> state{kFree};
  char path[PATH_MAX];
  char note[PATH_MAX + 128];
};

std::array<FileSlot, RemoveOnInterrupt::kSlots> files;
std::atomic<bool> interrupted{false};

template <typename Slots>
size_t claim(Slots& slots, const char* what) {
  for (size_t i = 0; i < slots.size(); ++i) {
    int expected = kFree;
    if (slots[i].state.compare_exchange_strong(expected, kBusy)) return i;
  }
  throw std::runtime_error(std::string("too many ") + what + " to clean up after a signal");
}

void writeAll(const char* s) {
  size_t len = std::strlen(s);
  while (len > 0) {
    const ssize_t n = ::write(STDERR_FILENO, s, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    s += n;
    len -= static_cast<size_t>(n);
  }
}

const char* signalName(int signo) {
  switch (signo) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGHUP: return "SIGHUP";
    default: return "a signal";
  }
}

extern "C" void onInterrupt(int signo) {
  // A second signal (or the same one on another thread) leaves the
  // clean-up to the first.
  if (interrupted.exchange(true)) return;
  writeAll("\nvfiomm: interrupted by ");
  writeAll(signalName(signo));
  writeAll("\n");
  for (FileSlot& f : files) {
    if (f.state.load() != kArmed) continue;
    ::unlink(f.path);
    writeAll(f.note);
  }
  ::_exit(128 + signo);
}

}  // namespace

void installInterruptHandlers() {
  struct sigaction sa {};
  sa.sa_handler = onInterrupt;
  sigemptyset(&sa.sa_mask);
  for (int s : kSignals) sigaddset(&sa.sa_mask, s);
  for (int s : kSignals) {
    // A signal ignored from the start stays ignored (nohup, a shell's
    // background job without job control): whoever started us asked so.
    struct sigaction old {};
    if (::sigaction(s, nullptr, &old) == 0 && old.sa_handler == SIG_IGN) continue;
    ::sigaction(s, &sa, nullptr);
  }
}

InterruptsBlocked::InterruptsBlocked() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : kSignals) sigaddset(&set, s);
  ::pthread_sigmask(SIG_BLOCK, &set, &old_);
}

InterruptsBlocked::~InterruptsBlocked() { ::pthread_sigmask(SIG_SETMASK, &old_, nullptr); }

RemoveOnInterrupt::RemoveOnInterrupt(const std::string& path, const std::string& note)
    : slot_(claim(files, "files")) {
  FileSlot& f = files[slot_];
  if (path.size() >= sizeof(f.path)) {
    f.state.store(kFree);
    throw std::runtime_error("a path longer than PATH_MAX");
  }
  std::memcpy(f.path, path.c_str(), path.size() + 1);
  const size_t n = std::min(note.size(), sizeof(f.note) - 1);
  std::memcpy(f.note, note.data(), n);
  f.note[n] = '\0';
  f.state.store(kArmed);
}

RemoveOnInterrupt::~RemoveOnInterrupt() { files[slot_].state.store(kFree); }

}  // namespace vfiomm::report
