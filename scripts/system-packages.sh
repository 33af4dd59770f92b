#!/usr/bin/env bash
# Debian packages the workbench uses: data sets, servers and the browser of the UI tests. Installed when we are root with
# apt-get; otherwise the exact command is printed and the workbench falls back to bundled data.
set -euo pipefail

PACKAGES=(dataset-fashion-mnist fortunes espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k
          festvox-us-slt-hts hedgewars-data postgresql chromium)

command -v dpkg-query >/dev/null 2>&1 || { echo "system packages: not a Debian system; using bundled data"; exit 0; }
missing=()
for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "system packages: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "system packages: missing ${missing[*]}; install them with:"
    echo "    sudo apt-get install ${missing[*]}"
    echo "continuing with bundled data (scikit-learn digits)"
fi
