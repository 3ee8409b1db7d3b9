// OutputFile: one file vfiomm writes (--json, --report, --trace, --ftrace,
// --csv), opened before the run and, when the run ends, complete or not
// there at all (issue 17).
//
// A regular file (or a new one) is written under a temporary name in its
// own directory and renamed over the path only when everything was written
// and synced: an interrupted (report/interrupt.h) or failed run leaves the
// previous file, or none, and says so on stderr. What rename cannot replace
// — a device such as /dev/stdout or /dev/full, a FIFO — is written
// directly; there too every write is checked, so a full device is an error,
// never a silent success. A path naming a descriptor vfiomm has open
// (/dev/stdout, /dev/fd/N) writes to that descriptor, after what stdio
// buffered for it. A symbolic link is followed: the file it points to is
// replaced, the link stays.
#pragma once

#include <memory>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>

#include "report/interrupt.h"

namespace vfiomm::report {

// A file that cannot be written; the message is whole (exit status 2).
class OutputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class OutputFile {
 public:
  // Opens the file at `path`; `what` names it in messages ("JSON",
  // "report"). Throws OutputError when it cannot be written, so that a bad
  // path fails before minutes of simulation.
  OutputFile(std::string path, std::string what);
  // Not committed: removes the temporary file and says so on stderr.
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  const std::string& path() const { return path_; }
  std::ostream& stream() { return *stream_; }
  // Flushes, syncs and puts the file in place. Throws OutputError (having
  // removed the temporary file).
  void commit();

 private:
  class FdBuf;

  void discard();
  // What is under the name now, for messages.
  std::string fate() const;
  [[noreturn]] void failWriting(int err);

  std::string path_;
  std::string what_;
  std::string target_;     // path_ with a symbolic link resolved
  std::string temp_;       // empty: written directly
  bool replaces_ = false;  // a previous file is there
  int fd_ = -1;
  std::unique_ptr<FdBuf> buf_;
  std::unique_ptr<std::ostream> stream_;
  std::optional<RemoveOnInterrupt> removeOnInterrupt_;
  bool done_ = false;
};

}  // namespace vfiomm::report
