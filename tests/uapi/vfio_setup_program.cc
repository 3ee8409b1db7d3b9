// Written as a C program for a real kernel would be, against <linux/vfio.h>
// and libc: only its accesses to mapped BARs go through peek() (the porting
// rule of docs/api.md). It is inside namespace vfiomm::libc so that open(),
// ioctl() and mmap() are the model's.
#include "vfio_setup_program.h"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "uapi/libc.h"

namespace vfiomm::libc {

// C names, as the program would have them.
// NOLINTBEGIN(readability-identifier-naming)
namespace {

// Where the MSI-X table is, from the config space's MSI-X capability.
struct msix_table {
  int present = 0;
  unsigned bar = 0;
  uint64_t offset = 0;
  uint64_t size = 0;
};

struct device {
  struct msix_table msix;
  int container = -1;
  int group = -1;
  int iommufd = -1;
  int fd = -1;
  struct vfio_device_info info;
  char* err = nullptr;
  size_t errlen = 0;
};

int fail(struct device* d, const char* what, long got) {
  snprintf(d->err, d->errlen, "%s: got %ld (errno %d)", what, got, errno);
  return -1;
}

int open_group_path(struct device* d, const struct vfio_setup_options* o) {
  d->container = open("/dev/vfio/vfio", O_RDWR);
  if (d->container < 0) return fail(d, "open /dev/vfio/vfio", d->container);
  int rc = ioctl(d->container, VFIO_GET_API_VERSION);
  if (rc != VFIO_API_VERSION) return fail(d, "VFIO_GET_API_VERSION", rc);
  rc = ioctl(d->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU);
  if (rc != 1) return fail(d, "VFIO_CHECK_EXTENSION(TYPE1v2)", rc);
  d->group = open(o->group_path, O_RDWR);
  if (d->group < 0) return fail(d, "open group", d->group);
  struct vfio_group_status status = {.argsz = sizeof(status)};
  rc = ioctl(d->group, VFIO_GROUP_GET_STATUS, &status);
  if (rc != 0 || !(status.flags & VFIO_GROUP_FLAGS_VIABLE) ||
      (status.flags & VFIO_GROUP_FLAGS_CONTAINER_SET))
    return fail(d, "VFIO_GROUP_GET_STATUS before SET_CONTAINER", status.flags);
  rc = ioctl(d->group, VFIO_GROUP_SET_CONTAINER, &d->container);
  if (rc != 0) return fail(d, "VFIO_GROUP_SET_CONTAINER", rc);
  rc = ioctl(d->group, VFIO_GROUP_GET_STATUS, &status);
  if (rc != 0 || !(status.flags & VFIO_GROUP_FLAGS_CONTAINER_SET))
    return fail(d, "VFIO_GROUP_GET_STATUS after SET_CONTAINER", status.flags);
  rc = ioctl(d->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
  if (rc != 0) return fail(d, "VFIO_SET_IOMMU", rc);
  d->fd = ioctl(d->group, VFIO_GROUP_GET_DEVICE_FD, o->bdf);
  if (d->fd < 0) return fail(d, "VFIO_GROUP_GET_DEVICE_FD", d->fd);
  return 0;
}

int open_cdev_path(struct device* d, const struct vfio_setup_options* o) {
  d->fd = open(o->cdev_path, O_RDWR);
  if (d->fd < 0) return fail(d, "open cdev", d->fd);
  struct vfio_device_info info = {.argsz = sizeof(info)};
  int rc = ioctl(d->fd, VFIO_DEVICE_GET_INFO, &info);
  if (rc != -1 || errno != EINVAL) return fail(d, "GET_INFO before BIND_IOMMUFD", rc);
  d->iommufd = open("/dev/iommu", O_RDWR);
  if (d->iommufd < 0) return fail(d, "open /dev/iommu", d->iommufd);
  struct vfio_device_bind_iommufd bind = {.argsz = sizeof(bind), .iommufd = d->iommufd};
  rc = ioctl(d->fd, VFIO_DEVICE_BIND_IOMMUFD, &bind);
  if (rc != 0) return fail(d, "VFIO_DEVICE_BIND_IOMMUFD", rc);
  if (bind.out_devid == 0) return fail(d, "BIND_IOMMUFD out_devid", bind.out_devid);
  return 0;
}

// A capability chain inside `buf` of `argsz` bytes starting at `offset`:
// every header inside the buffer, links moving forward, known ids.
int check_chain(struct device* d, const char* what, const unsigned char* buf, unsigned argsz,
                unsigned offset, unsigned max_id) {
  unsigned seen = 0;
  while (offset != 0) {
    if (offset + sizeof(struct vfio_info_cap_header) > argsz) return fail(d, what, offset);
    struct vfio_info_cap_header h;
    memcpy(&h, buf + offset, sizeof(h));
    if (h.id == 0 || h.id > max_id || h.version == 0) return fail(d, what, h.id);
    if (h.next != 0 && h.next <= offset) return fail(d, what, h.next);
    offset = h.next;
    if (++seen > 16) return fail(d, what, seen);
  }
  return 0;
}

int get_device_info(struct device* d) {
  struct vfio_device_info* info = &d->info;
  *info = vfio_device_info{.argsz = sizeof(*info)};
  int rc = ioctl(d->fd, VFIO_DEVICE_GET_INFO, info);
  if (rc != 0) return fail(d, "VFIO_DEVICE_GET_INFO", rc);
  if (!(info->flags & VFIO_DEVICE_FLAGS_PCI)) return fail(d, "GET_INFO flags", info->flags);
  if (info->num_regions < VFIO_PCI_NUM_REGIONS) return fail(d, "num_regions", info->num_regions);
  if (info->num_irqs != VFIO_PCI_NUM_IRQS) return fail(d, "num_irqs", info->num_irqs);
  if (!(info->flags & VFIO_DEVICE_FLAGS_CAPS)) return 0;
  // The chain did not fit: argsz says how much it needs.
  if (info->argsz <= sizeof(*info) || info->cap_offset != 0)
    return fail(d, "GET_INFO argsz for the chain", info->argsz);
  unsigned char* buf = static_cast<unsigned char*>(calloc(1, info->argsz));
  memcpy(buf, info, sizeof(*info));
  rc = ioctl(d->fd, VFIO_DEVICE_GET_INFO, buf);
  struct vfio_device_info full;
  memcpy(&full, buf, sizeof(full));
  int ret = rc != 0 || full.cap_offset != sizeof(full)
                ? fail(d, "GET_INFO with room for the chain", full.cap_offset)
                : check_chain(d, "device info chain", buf, full.argsz, full.cap_offset,
                              VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP);
  free(buf);
  return ret;
}

int check_region(struct device* d, unsigned index, struct vfio_region_info* out) {
  struct vfio_region_info info = {.argsz = sizeof(info), .index = index};
  int rc = ioctl(d->fd, VFIO_DEVICE_GET_REGION_INFO, &info);
  if (index == VFIO_PCI_VGA_REGION_INDEX) {
    // Not a VGA device: the region does not exist.
    if (rc != -1 || errno != EINVAL) return fail(d, "VGA region info", rc);
    *out = vfio_region_info{};
    return 0;
  }
  if (rc != 0) return fail(d, "VFIO_DEVICE_GET_REGION_INFO", index);
  if (index < VFIO_PCI_NUM_REGIONS && info.offset != VFIO_PCI_INDEX_TO_OFFSET(index))
    return fail(d, "region offset", static_cast<long>(info.offset >> 40));
  if (info.size == 0 && (info.flags & ~VFIO_REGION_INFO_FLAG_CAPS) != 0)
    return fail(d, "flags of an empty region", info.flags);
  if ((info.flags & VFIO_REGION_INFO_FLAG_MMAP) && !(info.flags & VFIO_REGION_INFO_FLAG_READ))
    return fail(d, "MMAP without READ", info.flags);
  if (index == VFIO_PCI_CONFIG_REGION_INDEX &&
      (info.size < 256 || info.flags != (VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE)))
    return fail(d, "config region", static_cast<long>(info.size));
  if (info.flags & VFIO_REGION_INFO_FLAG_CAPS) {
    if (info.argsz <= sizeof(info) || info.cap_offset != 0)
      return fail(d, "region argsz for the chain", info.argsz);
    unsigned char* buf = static_cast<unsigned char*>(calloc(1, info.argsz));
    const unsigned argsz = info.argsz;
    memcpy(buf, &info, sizeof(info));
    rc = ioctl(d->fd, VFIO_DEVICE_GET_REGION_INFO, buf);
    memcpy(&info, buf, sizeof(info));
    int ret = rc != 0 || info.cap_offset != sizeof(info) || info.argsz != argsz
                  ? fail(d, "region info with room for the chain", info.cap_offset)
                  : check_chain(d, "region chain", buf, argsz, info.cap_offset,
                                VFIO_REGION_INFO_CAP_MSIX_MAPPABLE);
    free(buf);
    if (ret != 0) return ret;
  }
  *out = info;
  return 0;
}

int check_irqs(struct device* d) {
  for (unsigned i = 0; i < d->info.num_irqs; i++) {
    struct vfio_irq_info irq = {.argsz = sizeof(irq), .index = i};
    int rc = ioctl(d->fd, VFIO_DEVICE_GET_IRQ_INFO, &irq);
    if (i == VFIO_PCI_ERR_IRQ_INDEX && rc == -1 && errno == EINVAL) continue;  // not PCIe
    if (rc != 0) return fail(d, "VFIO_DEVICE_GET_IRQ_INFO", i);
    if (!(irq.flags & VFIO_IRQ_INFO_EVENTFD)) return fail(d, "IRQ without EVENTFD", i);
    if (i == VFIO_PCI_INTX_IRQ_INDEX &&
        irq.flags != (VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED))
      return fail(d, "INTx flags", irq.flags);
    if (i >= VFIO_PCI_ERR_IRQ_INDEX && irq.count != 1) return fail(d, "ERR/REQ count", irq.count);
    if (i == VFIO_PCI_INTX_IRQ_INDEX && irq.count > 1) return fail(d, "INTx count", irq.count);
  }
  struct vfio_irq_info bad = {.argsz = sizeof(bad), .index = d->info.num_irqs};
  if (ioctl(d->fd, VFIO_DEVICE_GET_IRQ_INFO, &bad) != -1 || errno != EINVAL)
    return fail(d, "IRQ index past num_irqs", bad.index);
  return 0;
}

// Walks the capability list through the config region for MSI-X (id 0x11):
// its table's BAR and range, which a pread of the BAR does not show.
int find_msix(struct device* d) {
  const off_t config = static_cast<off_t>(VFIO_PCI_INDEX_TO_OFFSET(VFIO_PCI_CONFIG_REGION_INDEX));
  uint16_t status = 0;
  uint8_t pos = 0;
  if (pread(d->fd, &status, 2, config + 0x06) != 2) return fail(d, "pread STATUS", 0);
  if (!(status & 0x10)) return 0;  // no capability list
  if (pread(d->fd, &pos, 1, config + 0x34) != 1) return fail(d, "pread CAPABILITY_LIST", 0);
  for (int ttl = 48; pos >= 0x40 && ttl > 0; ttl--) {
    uint8_t header[2];
    if (pread(d->fd, header, 2, config + (pos & ~3)) != 2) return fail(d, "pread capability", pos);
    if (header[0] == 0x11) {
      uint16_t control = 0;
      uint32_t table = 0;
      if (pread(d->fd, &control, 2, config + pos + 2) != 2 ||
          pread(d->fd, &table, 4, config + pos + 4) != 4)
        return fail(d, "pread MSI-X capability", pos);
      d->msix = msix_table{1, table & 7, table & ~7U, ((control & 0x7ffU) + 1) * 16ULL};
      return 0;
    }
    pos = header[1];
  }
  return 0;
}

// Every mappable BAR: mapped whole, its first word read through the mapping.
int map_bar(struct device* d, unsigned index, const struct vfio_region_info* bar) {
  if (!(bar->flags & VFIO_REGION_INFO_FLAG_MMAP)) return 0;
  const size_t len = (bar->size + 4095) & ~size_t{4095};
  void* va = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd,
                  static_cast<off_t>(bar->offset));
  if (va == MAP_FAILED) return fail(d, "mmap BAR", index);
  uint64_t value = 0;
  int sig = peek(va, 4, &value);
  if (sig != 0) return fail(d, "load from the mapped BAR", sig);
  uint32_t through_fd = 0;
  if (pread(d->fd, &through_fd, 4, static_cast<off_t>(bar->offset)) != 4)
    return fail(d, "pread of the BAR", index);
  // vfio keeps the MSI-X table to itself through the fd: all ones there.
  const int in_table = d->msix.present && d->msix.bar == index && d->msix.offset < 4;
  if (in_table ? through_fd != 0xffffffffU : through_fd != static_cast<uint32_t>(value))
    return fail(d, "mapping vs pread", index);
  if (munmap(va, len) != 0) return fail(d, "munmap BAR", index);
  return 0;
}

int check_config(struct device* d, const struct vfio_region_info* config) {
  const off_t base = static_cast<off_t>(config->offset);
  uint32_t id = 0;
  uint16_t vendor = 0;
  if (pread(d->fd, &id, 4, base) != 4 || pread(d->fd, &vendor, 2, base) != 2)
    return fail(d, "pread of the IDs", 0);
  if (vendor != (id & 0xffff) || vendor == 0xffff || vendor == 0)
    return fail(d, "vendor id", vendor);
  uint16_t cmd = 0;
  if (pread(d->fd, &cmd, 2, base + 4) != 2) return fail(d, "pread COMMAND", 0);
  if (!(cmd & 0x2)) return fail(d, "COMMAND.MEMORY after open", cmd);
  const uint16_t master = static_cast<uint16_t>(cmd | 0x4);
  if (pwrite(d->fd, &master, 2, base + 4) != 2) return fail(d, "pwrite COMMAND", 0);
  uint16_t readback = 0;
  if (pread(d->fd, &readback, 2, base + 4) != 2 || readback != master)
    return fail(d, "COMMAND.MASTER read back", readback);
  if (pwrite(d->fd, &cmd, 2, base + 4) != 2) return fail(d, "restore COMMAND", 0);
  uint32_t past_end = 0;
  if (pread(d->fd, &past_end, 4, base + static_cast<off_t>(config->size) - 2) != -1 ||
      errno != EFAULT)
    return fail(d, "pread across the end of config space", 0);
  return 0;
}

}  // namespace

int vfio_setup_program(const struct vfio_setup_options* opts, char* err, size_t errlen) {
  struct device d;
  d.err = err;
  d.errlen = errlen;
  int rc = opts->use_cdev ? open_cdev_path(&d, opts) : open_group_path(&d, opts);
  if (rc == 0) rc = get_device_info(&d);
  if (rc == 0) rc = find_msix(&d);
  struct vfio_region_info config = {};
  for (unsigned i = 0; rc == 0 && i < d.info.num_regions; i++) {
    struct vfio_region_info region;
    rc = check_region(&d, i, &region);
    if (rc == 0 && i <= VFIO_PCI_BAR5_REGION_INDEX) rc = map_bar(&d, i, &region);
    if (i == VFIO_PCI_CONFIG_REGION_INDEX) config = region;
  }
  if (rc == 0) rc = check_irqs(&d);
  if (rc == 0) rc = check_config(&d, &config);
  for (int fd : {d.fd, d.group, d.container, d.iommufd})
    if (fd >= 0) close(fd);
  return rc;
}

// NOLINTEND(readability-identifier-naming)

}  // namespace vfiomm::libc
