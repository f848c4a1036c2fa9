#!/bin/bash
# Install every Debian package the build and the tests need.
# Lists live in tests/deps/*.txt (one package per line, '#' comments),
# one file per component so that each part of the tree declares its own.
# Usage: tests/install-deps.sh [list ...]   (default: every list)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
lists=("$@")
[ ${#lists[@]} -gt 0 ] || lists=("$here"/deps/*.txt)
pkgs=$(sed -e 's/#.*//' "${lists[@]}" | tr -s ' \t\n' '\n' | sort -u | grep -v '^$' || true)
missing=()
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all packages present"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: need root to install: ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# --no-install-recommends: xen-utils-4.17 would otherwise pull in the
# hypervisor, QEMU and GRUB.
apt-get install -y -q --no-install-recommends "${missing[@]}"
