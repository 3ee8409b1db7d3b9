#include "report/output_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <streambuf>
#include <vector>

namespace vfiomm::report {

// A stream buffer over a file descriptor that keeps the first error's
// errno (std::ofstream loses it).
class OutputFile::FdBuf : public std::streambuf {
 public:
  // sharesStdio: the descriptor is a copy of stdout's or stderr's, whose
  // buffered text must come out first.
  FdBuf(int fd, bool sharesStdio) : fd_(fd), sharesStdio_(sharesStdio), buf_(1 << 16) {
    setp(buf_.data(), buf_.data() + buf_.size());
  }
  int error() const { return error_; }

 protected:
  int_type overflow(int_type c) override {
    if (!drain()) return traits_type::eof();
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(c);
      pbump(1);
    }
    return traits_type::not_eof(c);
  }
  int sync() override { return drain() ? 0 : -1; }

 private:
  bool drain() {
    if (sharesStdio_) {
      std::fflush(stdout);
      std::fflush(stderr);
    }
    const char* p = pbase();
    size_t left = static_cast<size_t>(pptr() - pbase());
    while (left > 0 && error_ == 0) {
      const ssize_t n = ::write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0)
        error_ = errno;
      else if (n == 0)
        error_ = EIO;
      else {
        p += n;
        left -= static_cast<size_t>(n);
      }
    }
    setp(buf_.data(), buf_.data() + buf_.size());
    return error_ == 0;
  }

  int fd_;
  bool sharesStdio_;
  std::vector<char> buf_;
  int error_ = 0;
};

namespace {

std::string dirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// The descriptor a path names that is already open here: /dev/stdout,
// /dev/stderr, /dev/fd/N, /proc/self/fd/N. Opening such a path anew would
// start a second file description at offset 0 (over what stdout wrote to a
// file) or, resolved, replace the file under the shell's redirection.
std::optional<int> openDescriptorOf(const std::string& path) {
  if (path == "/dev/stdout") return STDOUT_FILENO;
  if (path == "/dev/stderr") return STDERR_FILENO;
  for (const char* prefix : {"/dev/fd/", "/proc/self/fd/"}) {
    const std::string p(prefix);
    if (path.size() <= p.size() || path.compare(0, p.size(), p) != 0 || path.size() - p.size() > 9)
      continue;
    const std::string digits = path.substr(p.size());
    if (digits.find_first_not_of("0123456789") == std::string::npos) return std::stoi(digits);
  }
  return std::nullopt;
}

std::string baseOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

OutputFile::OutputFile(std::string path, std::string what)
    : path_(std::move(path)), what_(std::move(what)) {
  auto cannot = [&](int err) {
    return OutputError(
        fmt::format("vfiomm: cannot write the {} {}: {}", what_, path_, std::strerror(err)));
  };
  if (path_.empty()) throw OutputError(fmt::format("vfiomm: the {} needs a file name", what_));
  if (path_.back() == '/') throw cannot(EISDIR);  // a directory's name, existing or not
  if (const std::optional<int> open = openDescriptorOf(path_)) {
    fd_ = ::fcntl(*open, F_DUPFD_CLOEXEC, 3);
    if (fd_ < 0) throw cannot(errno);
    buf_ = std::make_unique<FdBuf>(fd_, *open == STDOUT_FILENO || *open == STDERR_FILENO);
    stream_ = std::make_unique<std::ostream>(buf_.get());
    return;
  }
  target_ = path_;
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    char resolved[PATH_MAX];
    if (::realpath(path_.c_str(), resolved) != nullptr) target_ = resolved;
  }
  const bool exists = ::stat(target_.c_str(), &st) == 0;
  if (!exists && errno != ENOENT) throw cannot(errno);
  if (exists && S_ISDIR(st.st_mode)) throw cannot(EISDIR);
  if (exists && !S_ISREG(st.st_mode)) {
    fd_ = ::open(target_.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY);
    if (fd_ < 0) throw cannot(errno);
  } else {
    if (exists && ::access(target_.c_str(), W_OK) != 0) throw cannot(errno);
    // Blocked, so that no signal comes between creating the file and
    // registering it for removal.
    InterruptsBlocked blocked;
    const std::string stem = fmt::format("{}/.{}.{}", dirOf(target_), baseOf(target_), ::getpid());
    for (unsigned n = 0; fd_ < 0; ++n) {
      temp_ = fmt::format("{}.{}.tmp", stem, n);
      fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      const int err = fd_ < 0 ? errno : 0;
      if (err == 0 || err == EEXIST) continue;
      if (!exists) throw cannot(err);
      throw OutputError(fmt::format(
          "vfiomm: cannot write the {} {}: no file can be created beside it in {} ({}); "
          "it is written there under a temporary name and renamed when complete",
          what_, path_, dirOf(target_), std::strerror(err)));
    }
    // The replacement keeps the replaced file's permissions.
    if (exists) ::fchmod(fd_, st.st_mode & 07777);
    replaces_ = exists;
    try {
      removeOnInterrupt_.emplace(
          temp_, fmt::format("vfiomm: the {} {} was not written{}\n", what_, path_, fate()));
    } catch (...) {
      ::close(fd_);
      ::unlink(temp_.c_str());
      throw;
    }
  }
  buf_ = std::make_unique<FdBuf>(fd_, false);
  stream_ = std::make_unique<std::ostream>(buf_.get());
}

OutputFile::~OutputFile() {
  if (done_) return;
  discard();
  try {
    fmt::print(stderr, "vfiomm: the {} {} was not written{}\n", what_, path_, fate());
  } catch (...) {  // stderr is gone: nobody to tell
  }
}

std::string OutputFile::fate() const {
  if (temp_.empty()) return "";
  return replaces_ ? "; the previous one is left as it was" : "; there is none";
}

void OutputFile::discard() {
  done_ = true;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!temp_.empty()) {
    InterruptsBlocked blocked;
    ::unlink(temp_.c_str());
    removeOnInterrupt_.reset();
  }
}

void OutputFile::failWriting(int err) {
  discard();
  throw OutputError(fmt::format("vfiomm: writing the {} {} failed: {}{}", what_, path_,
                                std::strerror(err), fate()));
}

void OutputFile::commit() {
  if (done_) return;
  stream_->flush();
  if (buf_->error() != 0) failWriting(buf_->error());
  if (!*stream_) failWriting(EIO);
  // fsync only what rename will publish: a device or FIFO may refuse it.
  if (!temp_.empty() && ::fsync(fd_) != 0) failWriting(errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0 && errno != EINTR) failWriting(errno);
  if (!temp_.empty()) {
    InterruptsBlocked blocked;
    if (::rename(temp_.c_str(), target_.c_str()) != 0) failWriting(errno);
    removeOnInterrupt_.reset();
  }
  done_ = true;
}

}  // namespace vfiomm::report
