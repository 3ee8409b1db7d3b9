#!/usr/bin/env bash
# Refuses an #include of a higher layer (docs/architecture.md): each layer of
# src/ may include only itself and the layers below it. src/CMakeLists.txt
# gives the same order to the linker.
# Usage: scripts/check_layers.sh [SRC_DIR]
set -euo pipefail
src=${1:-$(dirname "$0")/../src}

declare -A below=(
  [abi]=""
  [base]=""
  [trace]="base"
  [sync]="base trace"
  [hw]="base trace sync"
  [mm]="base trace sync hw"
  [fs]="base trace sync hw mm"
  [pci]="base trace sync hw"
  [iommu]="base trace sync hw pci"
  [dmabuf]="base trace sync"
  [iommufd]="base trace sync hw mm pci iommu dmabuf abi"
  [vfio]="base trace sync hw mm fs pci iommu dmabuf iommufd abi"
  [kernel]="base trace sync hw mm fs pci iommu dmabuf iommufd vfio abi"
  [uapi]="base trace sync hw mm fs pci iommu dmabuf iommufd vfio kernel abi"
  [sim]="base trace sync hw mm fs pci iommu dmabuf iommufd vfio kernel uapi abi"
  [check]="base trace sync hw mm fs pci iommu dmabuf iommufd vfio kernel uapi sim abi"
  [report]="base trace sync hw mm fs pci iommu dmabuf iommufd vfio kernel uapi sim abi"
  [tools]="base trace sync hw mm fs pci iommu dmabuf iommufd vfio kernel uapi sim check report abi"
)

bad=0
for dir in "$src"/*/; do
  layer=$(basename "$dir")
  if [[ -z ${below[$layer]+set} ]]; then
    echo "$layer/: a layer scripts/check_layers.sh does not know; add it in its place"
    bad=1
    continue
  fi
  allowed=" $layer ${below[$layer]} "
  while IFS=: read -r file line text; do
    target=$(sed -E 's/.*#include "([a-z_]+)\/.*/\1/' <<<"$text")
    if [[ $allowed != *" $target "* ]]; then
      echo "${file#"$src"/}:$line: $layer/ includes $target/, which is not below it"
      bad=1
    fi
  done < <(grep -rnE '^#include "[a-z_]+/' "$dir" || true)
done
exit $bad
