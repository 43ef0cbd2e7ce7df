#!/usr/bin/env bash
# Installs the Debian packages the real-deployment tests need (tests/deployment.py, tests/test_deployment.py):
# PostgreSQL 15 (the metadata database) and headless Chromium with its WebDriver (the UI screenshots).
# Idempotent and quick when everything is present: `apt-get update` runs once, only when something is missing.
set -euo pipefail
packages=(postgresql-15 chromium chromium-driver)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if (( ${#missing[@]} == 0 )); then
  echo "Test services present: ${packages[*]}"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "missing Debian packages ${missing[*]}: run as root, or apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "Installing ${missing[*]} ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "Test services installed: ${missing[*]}"
