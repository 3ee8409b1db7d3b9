// Every design, for the factory (mapping_design.cc).
#pragma once

#include "vfio/address_space_design.h"
#include "vfio/fill_vma_design.h"
#include "vfio/huge_fault_design.h"
#include "vfio/prefault_design.h"
#include "vfio/vma_list_design.h"
