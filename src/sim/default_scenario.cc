// The built-in default scenario. scenarios/gpu-passthrough.yaml is the same
// text (tests/sim/scenario_test.cc checks that they parse to the same
// scenario), so `vfiomm compare` with no argument and with that file agree.
#include "sim/scenario.h"

namespace vfiomm::sim {

const std::string& defaultScenarioYaml() {
  static const std::string kYaml = R"yaml(# gpu-passthrough: the default scenario.
#
# A VMM (QEMU-like) passes a GPU through to a guest. The GPU has the BAR
# layout of a current data-centre card: BAR0 16 MiB of 32-bit registers,
# BAR1 a 32 GiB 64-bit prefetchable aperture (VRAM), BAR3 32 MiB 64-bit
# prefetchable. The VMM maps all three whole at addresses aligned to
# min(size, 1 GiB), as QEMU 9.2 does, so every design can use its largest
# entries. Then the guest touches every page, the VMM DMA-maps every BAR
# mapping into the IOMMU (as QEMU's vfio memory listener does, so that peers
# can reach the BARs), the guest's BAR sizing toggles memory decode,
# everything is touched again, the device is reset under a vCPU that keeps
# touching BAR1, and a last full touch shows what the reset left behind.
name: gpu-passthrough
description: GPU passthrough - 16M/32G/32M BARs, touch, DMA map, decode toggle, retouch, reset under load, final touch
cpus: 4
devices:
  - name: gpu
    bus: 1
    slot: 0
    bars:
      - {index: 0, size: 16M, type: mem32}
      - {index: 1, size: 32G, type: mem64, prefetchable: true}
      - {index: 3, size: 32M, type: mem64, prefetchable: true}
processes:
  - name: vmm
    open:
      - {device: gpu, via: group}
    mappings:
      - {name: bar0, device: gpu, bar: 0, align: natural}
      - {name: bar1, device: gpu, bar: 1, align: natural}
      - {name: bar3, device: gpu, bar: 3, align: natural}
phases:
  # (1) one thread reads one word in every 4 KiB page of every BAR once.
  - name: touch
    threads:
      - {name: vcpu0, process: vmm, cpu: 0, pattern: sequential, stride: 4K}
  # (2) VM boot: VFIO_IOMMU_MAP_DMA of every BAR mapping at its guest
  # physical address (IOVA = GPA, naturally aligned). The touch populated
  # the mappings, so the DMA map faults nothing here and only its lookups
  # differ by design and era (scenarios/dma-map-32g-bar.yaml maps
  # unpopulated ones); placed after the touch so that no other phase's
  # counts change. The IOPTEs outlive every zap below (type1, dma-mapping.md
  # §2.6).
  - name: dma-map
    events:
      - {type: dma-map, process: vmm, mapping: bar0, iova: 0xfc000000}
      - {type: dma-map, process: vmm, mapping: bar1, iova: 0x3800000000}
      - {type: dma-map, process: vmm, mapping: bar3, iova: 0x4000000000}
  # (3) memory decode off, then on (what a guest's BAR sizing does); no access.
  - name: toggle
    events:
      - {type: memory-disable, device: gpu}
      - {type: memory-enable, device: gpu}
  # (4) the same full touch.
  - name: retouch
    threads:
      - {name: vcpu0, process: vmm, cpu: 0, pattern: sequential, stride: 4K}
  # (5) a device reset while a second thread keeps touching BAR1.
  - name: reset
    threads:
      - {name: vcpu1, process: vmm, cpu: 1, pattern: sequential, stride: 4K,
         targets: [bar1], until_events_done: true}
    events:
      - {type: reset, device: gpu, after_accesses: 1024}
  # (6) a last full touch.
  - name: final
    threads:
      - {name: vcpu0, process: vmm, cpu: 0, pattern: sequential, stride: 4K}
)yaml";
  return kYaml;
}

Scenario defaultScenario() {
  return parseScenario(defaultScenarioYaml(), "<builtin:gpu-passthrough>");
}

}  // namespace vfiomm::sim
