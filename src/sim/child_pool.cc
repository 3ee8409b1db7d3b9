#include "sim/child_pool.h"

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>

#include <fmt/format.h>

#include "sim/interrupt.h"
#include "sim/output_file.h"
#include "sim/scenario.h"

namespace vfiomm::sim {

namespace {

// A child's exit status when its work threw ScenarioError or OutputError.
constexpr int kExitScenarioError = 2;

struct Child {
  pid_t pid = -1;
  int fd = -1;
  size_t index = 0;
  std::unique_ptr<KillOnInterrupt> killOnInterrupt;  // SIGINT/SIGTERM to the parent kills it
};

void reap(Child& c, int* status) {
  InterruptsBlocked blocked;  // a reaped pid must not stay armed for the handler
  while (::waitpid(c.pid, status, 0) < 0 && errno == EINTR) {
  }
  c.killOnInterrupt.reset();
}

// The children still running when runInChildren leaves early (a child
// failed, or the parent's work threw): killed and reaped, none outlives it.
struct Running {
  std::vector<Child> children;
  ~Running() {
    for (Child& c : children) {
      ::kill(c.pid, SIGKILL);
      ::close(c.fd);
      reap(c, nullptr);
    }
  }
};

[[noreturn]] void childMain(int fd, size_t index, const std::function<std::string(size_t)>& work) {
  int rc = 0;
  try {
    const std::string out = work(index);
    size_t done = 0;
    while (done < out.size()) {
      const ssize_t n = ::write(fd, out.data() + done, out.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
  } catch (const ScenarioError& e) {
    fmt::print(stderr, "{}\n", e.what());
    rc = kExitScenarioError;
  } catch (const OutputError& e) {
    fmt::print(stderr, "{}\n", e.what());
    rc = kExitScenarioError;
  } catch (const std::exception& e) {
    fmt::print(stderr, "{}\n", e.what());
    rc = 1;
  } catch (...) {
    rc = 1;
  }
  ::close(fd);
  ::_exit(rc);
}

Child start(size_t index, const std::function<std::string(size_t)>& work) {
  int p[2];
  if (::pipe(p) != 0) throw std::runtime_error("pipe failed");
  std::fflush(stderr);
  std::fflush(stdout);
  // Blocked from before fork until the child is registered, so that a
  // signal can never leave it running unknown to the handler.
  InterruptsBlocked blocked;
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(p[0]);
    ::close(p[1]);
    throw std::runtime_error("fork failed");
  }
  if (pid == 0) {
    resetInterruptHandlersInChild();
    ::close(p[0]);
    childMain(p[1], index, work);
  }
  ::close(p[1]);
  return Child{pid, p[0], index, std::make_unique<KillOnInterrupt>(pid)};
}

}  // namespace

std::vector<std::string> runInChildren(size_t n, unsigned jobs,
                                       const std::function<std::string(size_t)>& work,
                                       const std::function<void(size_t)>& started,
                                       const std::function<void()>& tick) {
  std::vector<std::string> out(n);
  Running pool;
  std::vector<Child>& running = pool.children;
  size_t next = 0;
  const size_t slots = std::min<size_t>(jobs == 0 ? 1 : jobs, KillOnInterrupt::kSlots);
  while (next < n || !running.empty()) {
    while (next < n && running.size() < slots) {
      if (started) started(next);
      running.push_back(start(next, work));
      ++next;
    }
    // Read from whichever child has output; a child whose pipe reached
    // EOF has exited (or is about to), and its slot frees up.
    std::vector<pollfd> fds;
    for (const Child& c : running) fds.push_back(pollfd{c.fd, POLLIN, 0});
    const int ready = ::poll(fds.data(), fds.size(), tick ? kTickMilliseconds : -1);
    if (tick) tick();
    if (ready <= 0) continue;
    for (size_t i = running.size(); i-- > 0;) {
      if (fds[i].revents == 0) continue;
      Child& c = running[i];
      char buf[65536];
      const ssize_t got = ::read(c.fd, buf, sizeof(buf));
      if (got < 0 && errno == EINTR) continue;
      if (got > 0) {
        out[c.index].append(buf, static_cast<size_t>(got));
        continue;
      }
      ::close(c.fd);
      int status = 0;
      reap(c, &status);
      const size_t index = c.index;
      running.erase(running.begin() + static_cast<std::ptrdiff_t>(i));
      if (WIFEXITED(status) && WEXITSTATUS(status) == kExitScenarioError)
        throw ScenarioError(fmt::format("run {} refused its input or could not write a file (the message above)",
                                        index));
      if (WIFSIGNALED(status))
        throw std::runtime_error(fmt::format("the child process of run {} was killed by signal {} ({})", index,
                                             WTERMSIG(status), strsignal(WTERMSIG(status))));
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw std::runtime_error(fmt::format("the child process of run {} died (exit status {})", index,
                                             WEXITSTATUS(status)));
    }
  }
  return out;
}

}  // namespace vfiomm::sim
