#!/usr/bin/env bash
# Unpacks Mesa 25's lavapipe (Debian bookworm-backports) into a private folder and prints the
# environment that selects it, never touching the system's driver or apt configuration:
#   eval "$(tools/fetch_mesa25.sh)"     # sets VK_ICD_FILENAMES and LD_LIBRARY_PATH
# The folder (default $HOME/.cache/wgconv/mesa25, or $WGCONV_MESA25) is reused when present.
# Dawn (Chrome's WebGPU) refuses Mesa 22's lavapipe, so the Dawn rows need this driver.
set -euo pipefail
dest="${WGCONV_MESA25:-$HOME/.cache/wgconv/mesa25}"
icd="$dest/lvp_icd.json"
if [ ! -f "$icd" ]; then
    work="$(mktemp -d)"
    mkdir -p "$work/lists/partial" "$work/archives/partial" "$dest"
    cat >"$work/sources.list" <<SRC
deb http://deb.debian.org/debian bookworm-backports main
SRC
    # a private apt state: its own source list and package lists, the system's left alone
    apt_opts=(-o "Dir::Etc::sourcelist=$work/sources.list" -o "Dir::Etc::sourceparts=-"
              -o "Dir::State::Lists=$work/lists" -o "Dir::Cache::archives=$work/archives"
              -o "APT::Get::List-Cleanup=0" -o "Debug::NoLocking=1")
    apt-get "${apt_opts[@]}" update -qq >&2
    (cd "$work" && apt-get "${apt_opts[@]}" download -qq \
        mesa-vulkan-drivers/bookworm-backports libdrm2/bookworm-backports libdrm-amdgpu1/bookworm-backports >&2)
    for deb in "$work"/*.deb; do dpkg -x "$deb" "$dest/root"; done
    lib="$(find "$dest/root" -name libvulkan_lvp.so | head -1)"
    [ -n "$lib" ] || { echo "fetch_mesa25: libvulkan_lvp.so not found in the packages" >&2; exit 1; }
    cat >"$icd" <<JSON
{ "file_format_version": "1.0.0", "ICD": { "library_path": "$lib", "api_version": "1.4.0" } }
JSON
    ls "$work"/*.deb | xargs -n1 basename >"$dest/packages.txt"
    rm -rf "$work"
fi
libdir="$(dirname "$(find "$dest/root" -name libvulkan_lvp.so | head -1)")"
echo "export VK_ICD_FILENAMES='$icd'"
echo "export LD_LIBRARY_PATH='$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}'"
