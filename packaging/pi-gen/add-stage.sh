#!/usr/bin/env bash
# Add the nexfield stage to a pi-gen checkout:
#   packaging/pi-gen/add-stage.sh PI_GEN_DIR
# Copies stage-nexfield/ next to pi-gen's stages, puts the .deb packages from
# dist/ (make deb) into its files/, and prints the config lines to add.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
pigen="${1:?usage: packaging/pi-gen/add-stage.sh PI_GEN_DIR}"
[ -x "$pigen/build.sh" ] || { echo "add-stage: $pigen has no build.sh; not a pi-gen checkout" >&2; exit 1; }
shopt -s nullglob
debs=("$root"/dist/nexfield_*_armhf.deb "$root"/dist/nexfield_*_arm64.deb)
[ ${#debs[@]} -gt 0 ] || { echo "add-stage: no dist/nexfield_*_{armhf,arm64}.deb; run make deb" >&2; exit 1; }
rm -rf "$pigen/stage-nexfield"
cp -a "$here/stage-nexfield" "$pigen/"
rm -f "$pigen"/stage-nexfield/00-install-nexfield/files/*.deb
cp "${debs[@]}" "$pigen/stage-nexfield/00-install-nexfield/files/"
# A Lite image with nexfield: no desktop stages, export only ours.
touch "$pigen/stage2/SKIP_IMAGES"
cat <<MSG
stage-nexfield added to $pigen with: $(cd "$pigen/stage-nexfield/00-install-nexfield/files" && echo *.deb)
Add to $pigen/config:
  STAGE_LIST="stage0 stage1 stage2 stage-nexfield"
  export NEXFIELD_UNIT=peer      # or agent, or none
then run ./build.sh there (as root).
MSG
