#!/usr/bin/env bash
# Installs everything trunkgate's build and its real-peer integration tests need on Debian 12:
#   - build: a C toolchain, pkg-config, libopus-dev (system libopus for the `opus` crate),
#     cmake (for crates that build a bundled libopus instead) and libasound2-dev (ALSA, for the
#     agent client's `sound` feature);
#   - tests: SIPp (sip-tester), baresip, espeak-ng + sox (prompt generation and audio checks),
#     chromium + chromium-driver (the agent desk in a headless browser), libnss3-tools,
#     firefox-esr + geckodriver (crates.io, at target/geckodriver),
#     jackd2 + libasound2-plugins (a sound card without hardware for the agent's --sound test),
#     cargo-nextest, ITU-T P.862 PESQ (PyPI `pesq`, in a venv at target/pesq-venv), and an
#     S3-compatible server for the journal's s3 sink (npm `s3rver`, at target/s3rver), and
#     dnsmasq (a DNS server with NAPTR and SRV records for the SIP server location tests),
#     and age (the reference age tools, against which the recordings' encryption is tested),
#     libpri (a real ISDN stack, built into a small C test peer for the E1 tests) and tshark
#     (which must decode the gateway's D-channel pcaps).
# Idempotent: when everything is already present it touches nothing and finishes in well under a
# second. Run as root, or as a user with sudo.
#
#   scripts/setup-test-deps.sh            # install what is missing
#   scripts/setup-test-deps.sh --check    # only report; exit 1 if something is missing
set -euo pipefail

APT_PACKAGES=(
  sip-tester      # sipp: SIP scenarios with RTP from pcap files
  baresip-core    # baresip: a real softphone, headless
  espeak-ng       # prompt synthesis (scripts/make-prompts.sh)
  sox             # audio conversion
  libsox-fmt-all  # sox format handlers
  pkg-config      # lets the opus crate find the system libopus
  libopus-dev     # system libopus
  opus-tools      # opusinfo, opusdec: real readers of the call recordings' Ogg Opus
  age             # age, age-keygen: the standard tools open the recordings encrypted at rest
  cmake           # builds a bundled libopus when a crate asks for one
  libasound2-dev  # ALSA headers and libasound for cpal (trunkgate-agent's `sound` feature)
  jackd2          # a real-time clock for the test sound card (JACK's dummy driver)
  libasound2-plugins # ALSA's `jack` PCM, under the test card's `file` plugin
  build-essential # cc, make, libc headers
  ca-certificates # cargo talks to crates.io over TLS
  python3-venv    # a venv for the PESQ scorer (pip package `pesq`)
  python3-dev     # Python headers: `pesq` builds its C extension on install
  prometheus      # a real Prometheus server scrapes the gateway in tests; promtool checks
  libzstd-dev     # system libzstd for the zstd crate (the s3 sink's compression)
  chromium        # headless browser for the agent desk's tests (WebTransport)
  chromium-driver # WebDriver for it (chromedriver)
  libnss3-tools   # certutil: a test CA in the browser's certificate store (desk over HTTPS)
  firefox-esr     # the agent desk in Firefox too (driven by geckodriver, below)
  pulseaudio      # a sound server with a null sink: headless Firefox plays audio only through one
  kamailio        # a real registrar with digest auth for the trunk registration tests
  kamailio-tls-modules # its tls module: registering over TLS
  sipvicious      # svmap, svwar, svcrack: the scanners the scanner defence is tested against
  dnsmasq-base    # dnsmasq alone, no system service: NAPTR/SRV/A records on a loopback port (RFC 3263 tests)
  libpri-dev      # libpri: a real ISDN PRI stack as the far end of the E1 tests (a test peer only)
  tshark          # decodes the D-channel pcaps the gateway writes (LAPD, Q.931)
)

check_only=false
case "${1:-}" in
  --check) check_only=true ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

log() { printf 'setup-test-deps: %s\n' "$*"; }

missing_packages() {
  # One dpkg-query call for all packages keeps the fast path fast. Packages dpkg has never heard
  # of are reported on stderr and missing from the output; both count as not installed.
  local installed
  installed="$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${APT_PACKAGES[@]}" 2>/dev/null || true)"
  local pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    if ! grep -qx "${pkg} installed" <<<"${installed}"; then
      printf '%s\n' "${pkg}"
    fi
  done
}

as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    log "need root to run: $*  (run this script as root or install sudo)"
    exit 1
  fi
}

mapfile -t missing < <(missing_packages)
status=0

if [[ ${#missing[@]} -eq 0 ]]; then
  log "apt packages: all present (${APT_PACKAGES[*]})"
elif $check_only; then
  log "apt packages missing: ${missing[*]}"
  status=1
else
  log "apt packages missing: ${missing[*]}; installing"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update
  as_root apt-get install -y --no-install-recommends "${missing[@]}"
  log "apt packages installed: ${missing[*]}"
fi

# Tools the tests invoke by name: a package can be installed yet its command absent (a broken
# install, a diverted binary), so check the commands themselves as well.
for cmd in sipp baresip espeak-ng sox pkg-config cmake cc jackd jack_wait prometheus promtool chromedriver certutil pulseaudio kamailio svmap svwar svcrack dnsmasq age age-keygen; do
  if ! command -v "${cmd}" >/dev/null 2>&1; then
    if $check_only; then
      log "command missing: ${cmd}"
      status=1
    else
      log "command still missing after install: ${cmd}"
      exit 1
    fi
  fi
done

if ! command -v cargo >/dev/null 2>&1; then
  # Installing a Rust toolchain is the user's choice (rustup, distro packages, a pinned image),
  # so say what to do instead of fetching an installer from the network.
  log "cargo not found: install Rust first (https://rustup.rs), then rerun this script"
  exit 1
fi

if cargo nextest --version >/dev/null 2>&1; then
  log "cargo-nextest: present ($(cargo nextest --version 2>/dev/null | head -n 1))"
elif $check_only; then
  log "cargo-nextest: missing"
  status=1
else
  log "cargo-nextest: missing; installing with cargo install --locked"
  cargo install --locked cargo-nextest
  log "cargo-nextest: installed"
fi

# PESQ scores what callers and agents hear. Debian has no package for it, so it comes from PyPI
# into a venv of its own (pip never touches the system Python); versions pinned for repeatable
# scores. TRUNKGATE_PESQ_PYTHON (read by the test harness) can name another interpreter instead.
pesq_venv="$(cd "$(dirname "$0")/.." && pwd)/target/pesq-venv"
if "${pesq_venv}/bin/python" -c 'import numpy, pesq' >/dev/null 2>&1; then
  log "pesq: present (${pesq_venv})"
elif $check_only; then
  log "pesq: missing (${pesq_venv})"
  status=1
else
  log "pesq: installing into ${pesq_venv}"
  python3 -m venv "${pesq_venv}"
  "${pesq_venv}/bin/pip" install --quiet --disable-pip-version-check 'numpy>=1.24,<3' 'pesq==0.0.4'
  log "pesq: installed"
fi

# The s3 sink's tests need an S3-compatible server that keeps its objects across a restart.
# Debian 12 has none; npm's s3rver does (Node.js from Debian when no node is installed).
s3rver_dir="$(cd "$(dirname "$0")/.." && pwd)/target/s3rver"
s3rver_version=3.7.1
if [[ -x "${s3rver_dir}/node_modules/.bin/s3rver" ]] && command -v node >/dev/null 2>&1; then
  log "s3rver: present (${s3rver_dir})"
elif $check_only; then
  log "s3rver: missing (${s3rver_dir})"
  status=1
else
  if ! command -v npm >/dev/null 2>&1; then
    log "npm: missing; installing nodejs and npm"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update
    as_root apt-get install -y --no-install-recommends nodejs npm
  fi
  log "s3rver: installing ${s3rver_version} into ${s3rver_dir}"
  mkdir -p "${s3rver_dir}"
  npm install --prefix "${s3rver_dir}" --no-audit --no-fund --loglevel=error "s3rver@${s3rver_version}"
  log "s3rver: installed"
fi

# WebDriver for Firefox: Debian 12 packages none, crates.io has Mozilla's own.
geckodriver_root="$(cd "$(dirname "$0")/.." && pwd)/target/geckodriver"
geckodriver_version=0.37.1
if [[ -x "${geckodriver_root}/bin/geckodriver" ]]; then
  log "geckodriver: present (${geckodriver_root})"
elif $check_only; then
  log "geckodriver: missing (${geckodriver_root})"
  status=1
else
  log "geckodriver: installing ${geckodriver_version} into ${geckodriver_root}"
  cargo install --locked --quiet --root "${geckodriver_root}" --version "${geckodriver_version}" geckodriver
  log "geckodriver: installed"
fi

if [[ ${status} -eq 0 ]]; then
  log "done: everything present"
fi
exit "${status}"
