// Every policy the designs are composed of, for the factory
// (mapping_design.cc).
#pragma once

#include "vfio/design/address_space_tracking.h"
#include "vfio/design/fill_vma_fault.h"
#include "vfio/design/huge_fault.h"
#include "vfio/design/per_page_fault.h"
#include "vfio/design/prefault_walk.h"
#include "vfio/design/refill_policy.h"
#include "vfio/design/remap_vma_fault.h"
#include "vfio/design/vma_list_tracking.h"
