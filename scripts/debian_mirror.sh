#!/usr/bin/env bash
# Print the Debian mirror this machine's apt uses (for debootstrap): the first non-security
# "deb" line of /etc/apt/sources.list, else the first non-security "URIs:" of a deb822 file in
# /etc/apt/sources.list.d/*.sources. $DEBIAN_MIRROR, when set, wins. No host name is built in:
# exit 1 with a message when no mirror is configured anywhere.
# Test overrides: APT_SOURCES_LIST (file), APT_SOURCES_DIR (folder).
set -euo pipefail

if [ -n "${DEBIAN_MIRROR:-}" ]; then
  printf '%s\n' "$DEBIAN_MIRROR"
  exit 0
fi
list="${APT_SOURCES_LIST:-/etc/apt/sources.list}"
dir="${APT_SOURCES_DIR:-/etc/apt/sources.list.d}"

# One-line format: deb [options] URI suite components...
if [ -r "$list" ]; then
  mirror=$(awk '$1 == "deb" {
      i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
      if ($(i + 1) !~ /-security/ && $i ~ /^https?:\/\//) { print $i; exit }
    }' "$list")
  if [ -n "$mirror" ]; then printf '%s\n' "${mirror%/}"; exit 0; fi
fi
# deb822 format: stanzas separated by blank lines, with "URIs:" and "Suites:" fields.
for file in "$dir"/*.sources; do
  [ -r "$file" ] || continue
  mirror=$(awk 'BEGIN { RS = ""; FS = "\n" } {
      uris = ""; suites = ""; enabled = 1
      for (n = 1; n <= NF; n++) {
        if ($n ~ /^URIs:/) { uris = $n; sub(/^URIs:[ \t]*/, "", uris) }
        if ($n ~ /^Suites:/) { suites = $n }
        if ($n ~ /^Enabled:[ \t]*no/) { enabled = 0 }
      }
      split(uris, first, /[ \t]+/)
      if (enabled && first[1] ~ /^https?:\/\// && suites !~ /-security/) { print first[1]; exit }
    }' "$file")
  if [ -n "$mirror" ]; then printf '%s\n' "${mirror%/}"; exit 0; fi
done
echo "no Debian mirror in $list or $dir/*.sources; set DEBIAN_MIRROR" >&2
exit 1
