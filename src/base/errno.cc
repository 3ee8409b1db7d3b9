#include "base/errno.h"

namespace vfiomm {

std::string_view errnoName(Errno e) {
  switch (e) {
    case Errno::kEPERM: return "EPERM";
    case Errno::kENOENT: return "ENOENT";
    case Errno::kESRCH: return "ESRCH";
    case Errno::kEINTR: return "EINTR";
    case Errno::kEIO: return "EIO";
    case Errno::kENXIO: return "ENXIO";
    case Errno::kE2BIG: return "E2BIG";
    case Errno::kEBADF: return "EBADF";
    case Errno::kEAGAIN: return "EAGAIN";
    case Errno::kENOMEM: return "ENOMEM";
    case Errno::kEACCES: return "EACCES";
    case Errno::kEFAULT: return "EFAULT";
    case Errno::kEBUSY: return "EBUSY";
    case Errno::kEEXIST: return "EEXIST";
    case Errno::kENODEV: return "ENODEV";
    case Errno::kEINVAL: return "EINVAL";
    case Errno::kENFILE: return "ENFILE";
    case Errno::kEMFILE: return "EMFILE";
    case Errno::kENOTTY: return "ENOTTY";
    case Errno::kEFBIG: return "EFBIG";
    case Errno::kENOSPC: return "ENOSPC";
    case Errno::kESPIPE: return "ESPIPE";
    case Errno::kERANGE: return "ERANGE";
    case Errno::kENOSYS: return "ENOSYS";
    case Errno::kEOVERFLOW: return "EOVERFLOW";
    case Errno::kEBADFD: return "EBADFD";
    case Errno::kEOPNOTSUPP: return "EOPNOTSUPP";
    case Errno::kETIMEDOUT: return "ETIMEDOUT";
  }
  return "E?";
}

}  // namespace vfiomm
