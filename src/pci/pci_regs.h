// PCI configuration-space registers and bits, with the names of Linux's
// include/uapi/linux/pci_regs.h in C++ casing (PCI_COMMAND_MEMORY ->
// kPciCommandMemory), so the config-space code reads like the kernel's.
// Only what the model's devices implement is listed.
#pragma once

#include <cstdint>

namespace vfiomm {

// --- sizes ---------------------------------------------------------------------

inline constexpr uint32_t kPciCfgSpaceSize = 256;      // conventional PCI
inline constexpr uint32_t kPciCfgSpaceExpSize = 4096;  // PCI Express
inline constexpr unsigned kPciStdNumBars = 6;          // PCI_STD_NUM_BARS
inline constexpr unsigned kPciRomResource = 6;         // index of the ROM in pdev->resource[]

// --- type 0 header -------------------------------------------------------------

inline constexpr uint32_t kPciVendorId = 0x00;
inline constexpr uint32_t kPciDeviceId = 0x02;

inline constexpr uint32_t kPciCommand = 0x04;
inline constexpr uint16_t kPciCommandIo = 0x0001;      // I/O space decode
inline constexpr uint16_t kPciCommandMemory = 0x0002;  // memory space decode
inline constexpr uint16_t kPciCommandMaster = 0x0004;  // bus master (DMA)
inline constexpr uint16_t kPciCommandParity = 0x0040;
inline constexpr uint16_t kPciCommandSerr = 0x0100;
inline constexpr uint16_t kPciCommandIntxDisable = 0x0400;

inline constexpr uint32_t kPciStatus = 0x06;
inline constexpr uint16_t kPciStatusCapList = 0x0010;  // capability list present
// The write-1-to-clear error bits (parity, target/master aborts, SERR):
// clear at power-on whatever a dump caught.
inline constexpr uint16_t kPciStatusErrorBits = 0xf900;

inline constexpr uint32_t kPciClassRevision = 0x08;  // revision (low byte), class (upper 24 bits)
inline constexpr uint32_t kPciCacheLineSize = 0x0c;
inline constexpr uint32_t kPciLatencyTimer = 0x0d;
inline constexpr uint32_t kPciHeaderType = 0x0e;
inline constexpr uint32_t kPciBist = 0x0f;

inline constexpr uint32_t kPciBaseAddress0 = 0x10;
inline constexpr uint32_t kPciBaseAddress5 = 0x24;
inline constexpr uint32_t kPciBaseAddressSpaceIo = 0x01;
inline constexpr uint32_t kPciBaseAddressMemType64 = 0x04;
inline constexpr uint32_t kPciBaseAddressMemPrefetch = 0x08;
inline constexpr uint32_t kPciBaseAddressMemMask = ~uint32_t{0x0f};
inline constexpr uint32_t kPciBaseAddressIoMask = ~uint32_t{0x03};

inline constexpr uint32_t kPciSubsystemVendorId = 0x2c;
inline constexpr uint32_t kPciSubsystemId = 0x2e;

inline constexpr uint32_t kPciRomAddress = 0x30;
inline constexpr uint32_t kPciRomAddressEnable = 0x01;
inline constexpr uint32_t kPciRomAddressMask = ~uint32_t{0x7ff};

inline constexpr uint32_t kPciCapabilityList = 0x34;
inline constexpr uint32_t kPciInterruptLine = 0x3c;
inline constexpr uint32_t kPciInterruptPin = 0x3d;  // 0: none, 1..4: INTA..INTD
inline constexpr uint32_t kPciStdHeaderSizeof = 0x40;

// The base-address register of BAR `bar` (PCI_BASE_ADDRESS_0 + 4 * bar).
constexpr uint32_t pciBaseAddress(unsigned bar) { return kPciBaseAddress0 + 4 * bar; }

// --- capability list -----------------------------------------------------------

inline constexpr uint32_t kPciCapListId = 0;    // capability id
inline constexpr uint32_t kPciCapListNext = 1;  // offset of the next capability, 0 at the end
inline constexpr uint32_t kPciCapFlags = 2;     // the first byte after the header

inline constexpr uint8_t kPciCapIdPm = 0x01;
inline constexpr uint8_t kPciCapIdVpd = 0x03;
inline constexpr uint8_t kPciCapIdMsi = 0x05;
inline constexpr uint8_t kPciCapIdPcix = 0x07;
inline constexpr uint8_t kPciCapIdVndr = 0x09;
inline constexpr uint8_t kPciCapIdExp = 0x10;
inline constexpr uint8_t kPciCapIdMsix = 0x11;
inline constexpr uint8_t kPciCapIdAf = 0x13;  // PCI Advanced Features

// --- power management capability ----------------------------------------------

inline constexpr uint32_t kPciPmPmc = 2;              // PM capabilities
inline constexpr uint16_t kPciPmCapVer3 = 0x0003;     // PCI PM 1.2
inline constexpr uint16_t kPciPmCapD1 = 0x0200;       // D1 supported
inline constexpr uint16_t kPciPmCapD2 = 0x0400;       // D2 supported
inline constexpr uint16_t kPciPmCapPmeMask = 0xf800;  // PME_Support, per D-state
inline constexpr uint32_t kPciPmCtrl = 4;             // PMCSR
inline constexpr uint16_t kPciPmCtrlStateMask = 0x0003;
inline constexpr uint16_t kPciPmCtrlPmeEnable = 0x0100;
inline constexpr uint16_t kPciPmCtrlPmeStatus = 0x8000;  // RW1C
// Set: D3hot -> D0 keeps the function's state; clear: that transition is an
// internal reset (config space back to its power-on values).
inline constexpr uint16_t kPciPmCtrlNoSoftReset = 0x0008;
inline constexpr uint32_t kPciPmSizeof = 8;

// --- Vital Product Data capability -------------------------------------------------

inline constexpr uint32_t kPciVpdAddr = 2;  // 15-bit address and the F flag
// Software writes the address with F clear to read (the device sets F when
// the data is ready) or with F set to write (the device clears F when done).
inline constexpr uint16_t kPciVpdAddrF = 0x8000;
inline constexpr uint16_t kPciVpdAddrMask = 0x7fff;
inline constexpr uint32_t kPciVpdData = 4;

// --- PCI-X capability ----------------------------------------------------------------

inline constexpr uint32_t kPciXCmd = 2;
inline constexpr uint32_t kPciXEccCsr = 8;  // mode 2 only

// --- Advanced Features capability -------------------------------------------------------

inline constexpr uint32_t kPciAfCap = 3;
inline constexpr uint8_t kPciAfCapTp = 0x01;   // Transactions Pending supported
inline constexpr uint8_t kPciAfCapFlr = 0x02;  // function-level reset supported
inline constexpr uint32_t kPciAfCtrl = 4;
inline constexpr uint8_t kPciAfCtrlFlr = 0x01;  // initiate FLR; always reads 0

// --- PCI Express capability ------------------------------------------------------

inline constexpr uint32_t kPciExpFlags = 2;
inline constexpr uint16_t kPciExpFlagsVers2 = 0x0002;  // version 2, type 0 = endpoint
inline constexpr uint16_t kPciExpFlagsVers = 0x000f;
inline constexpr uint16_t kPciExpFlagsType = 0x00f0;
inline constexpr uint16_t kPciExpTypeRcEnd = 0x9;  // root complex integrated endpoint
inline constexpr uint32_t kPciExpDevcap = 4;
inline constexpr uint32_t kPciExpDevcapFlr = 0x1000'0000;  // function-level reset supported
inline constexpr uint32_t kPciExpDevctl = 8;
inline constexpr uint16_t kPciExpDevctlRelaxEn = 0x0010;
inline constexpr uint16_t kPciExpDevctlPayload = 0x00e0;  // Max_Payload_Size
inline constexpr uint16_t kPciExpDevctlPhantom = 0x0200;
inline constexpr uint16_t kPciExpDevctlReadrq = 0x7000;  // Max_Read_Request_Size
inline constexpr uint16_t kPciExpDevctlNosnoopEn = 0x0800;
inline constexpr uint16_t kPciExpDevctlReadrq512B = 0x2000;
inline constexpr uint16_t kPciExpDevctlBcrFlr = 0x8000;  // initiate FLR; always reads 0
inline constexpr uint32_t kPciExpDevcap2 = 0x24;
inline constexpr uint32_t kPciExpDevcap2AtomicRoute =
    0x0040;  // routes AtomicOps (switch/root ports)
inline constexpr uint32_t kPciExpDevcap2AtomicComp32 = 0x0080;
inline constexpr uint32_t kPciExpDevcap2AtomicComp64 = 0x0100;
inline constexpr uint32_t kPciExpDevcap2AtomicComp128 = 0x0200;
inline constexpr uint32_t kPciExpDevctl2 = 0x28;
inline constexpr uint16_t kPciExpDevctl2Ari = 0x0020;
inline constexpr uint16_t kPciExpDevctl2AtomicReq = 0x0040;  // AtomicOp Requester Enable
inline constexpr uint32_t kPciCapExpEndpointSizeofV1 = 0x14;
inline constexpr uint32_t kPciCapExpEndpointSizeofV2 = 0x3c;

// --- MSI capability --------------------------------------------------------------

inline constexpr uint32_t kPciMsiFlags = 2;  // message control
inline constexpr uint16_t kPciMsiFlagsEnable = 0x0001;
inline constexpr uint16_t kPciMsiFlagsQmask = 0x000e;  // Multiple Message Capable (log2)
inline constexpr uint16_t kPciMsiFlagsQsize = 0x0070;  // Multiple Message Enable (log2)
inline constexpr uint16_t kPciMsiFlags64Bit = 0x0080;
inline constexpr uint16_t kPciMsiFlagsMaskbit = 0x0100;  // per-vector masking
inline constexpr uint32_t kPciMsiAddressLo = 4;
inline constexpr uint32_t kPciMsiAddressHi = 8;  // 64-bit devices only
inline constexpr uint32_t kPciMsiData32 = 8;
inline constexpr uint32_t kPciMsiMask32 = 12;
inline constexpr uint32_t kPciMsiPending32 = 16;
inline constexpr uint32_t kPciMsiData64 = 12;
inline constexpr uint32_t kPciMsiMask64 = 16;
inline constexpr uint32_t kPciMsiPending64 = 20;
inline constexpr uint32_t kPciMsi64Sizeof = 14;  // 64-bit address, data, no mask bits
inline constexpr uint32_t kPciMsi32Sizeof = 10;

// --- extended capabilities (PCI Express, from 0x100) ------------------------------

inline constexpr uint32_t kPciExtCapStart = 0x100;
inline constexpr uint16_t kPciExtCapIdSriov = 0x0010;
inline constexpr uint32_t kPciExtCapSriovSizeof = 0x40;

// Advanced Error Reporting.
inline constexpr uint16_t kPciExtCapIdErr = 0x0001;
inline constexpr uint32_t kPciErrUncorStatus = 0x04;  // RW1C
inline constexpr uint32_t kPciErrUncorMask = 0x08;
inline constexpr uint32_t kPciErrUncorSever = 0x0c;
inline constexpr uint32_t kPciErrCorStatus = 0x10;  // RW1C
inline constexpr uint32_t kPciErrCorMask = 0x14;
inline constexpr uint32_t kPciErrCap = 0x18;
inline constexpr uint32_t kPciErrCapEcrcGene = 0x0000'0040;  // ECRC generation enable
inline constexpr uint32_t kPciErrCapEcrcChke = 0x0000'0100;  // ECRC check enable

// Power Budgeting: software selects the entry the Data register shows.
inline constexpr uint16_t kPciExtCapIdPwr = 0x0004;
inline constexpr uint32_t kPciPwrDataSelect = 0x04;

// --- MSI-X capability ------------------------------------------------------------

inline constexpr uint32_t kPciMsixFlags = 2;            // message control
inline constexpr uint16_t kPciMsixFlagsQsize = 0x07ff;  // table size - 1
inline constexpr uint16_t kPciMsixFlagsMaskall = 0x4000;
inline constexpr uint16_t kPciMsixFlagsEnable = 0x8000;
inline constexpr uint32_t kPciMsixTable = 4;  // table offset | BIR
inline constexpr uint32_t kPciMsixPba = 8;    // PBA offset | BIR
inline constexpr uint32_t kPciMsixTableBir = 0x0000'0007;
inline constexpr uint32_t kPciMsixTableOffset = 0xffff'fff8;
inline constexpr uint32_t kPciCapMsixSizeof = 12;
inline constexpr uint32_t kPciMsixEntrySize = 16;

// --- power states ----------------------------------------------------------------

// pci_power_t for the states a PMCSR write can reach; the values are the
// PMCSR PowerState field.
enum class PciPowerState : uint8_t { kD0 = 0, kD1 = 1, kD2 = 2, kD3hot = 3 };

}  // namespace vfiomm
