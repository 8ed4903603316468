#!/usr/bin/env bash
# Install the Debian packages the test suite drives for real, only those that are missing.
# Each entry is "command-or-file:package": the package is installed when the command/file is absent.
set -euo pipefail
needs=(
  "pg_isready:postgresql-client"
  "/usr/bin/chromium:chromium"
  "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc:fonts-wqy-microhei"
  "sipp:sip-tester"
  "/usr/sbin/kamailio:kamailio"
  "espeak-ng:espeak-ng"
  "sox:sox"
  "pdftotext:poppler-utils"
  "socat:socat"
  "ip:iproute2"
)
missing=()
for entry in "${needs[@]}"; do
  what=${entry%%:*}; package=${entry#*:}
  if [[ $what == /* ]]; then [ -e "$what" ] || missing+=("$package")
  else command -v "$what" >/dev/null 2>&1 || missing+=("$package"); fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
