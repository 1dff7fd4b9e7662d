#!/usr/bin/env bash
# Everything aiconform's build and tests need beyond the Rust and Go toolchains.
# Idempotent: skips what is already installed.
set -euo pipefail
need=()
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
# The embedded cluster's real node (ci/testcluster/internal/realnode): its own containerd
# instance with runc and the CNI bridge/host-local/portmap/loopback plugins.
for pkg in containerd runc containernetworking-plugins iproute2 iptables; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# xmllint checks junit.xml against the Jenkins xunit schema; headless Chromium and
# pdftotext read report.html as a browser shows it (tests/report.rs).
command -v xmllint >/dev/null 2>&1 || need+=(libxml2-utils)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v pdftotext >/dev/null 2>&1 || need+=(poppler-utils)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true
command -v go >/dev/null || { echo "go toolchain is required (ci/testcluster)" >&2; exit 1; }
