#!/usr/bin/env bash
# Builds the .deb and the .rpm from stripped release binaries and checks the .deb the way a
# distribution would: what it installs, its conffile, lintian, and (as root, with --install) a
# real install that creates the service user and the unit, then a purge. The .rpm is checked
# with rpm's own queries: its files, its config file, its install script.
#
#   scripts/package.sh [--install]
#
# cargo-deb and cargo-generate-rpm are installed once into ~/.cargo/bin (cached afterwards);
# lintian and rpm come from apt.
set -euo pipefail
cd "$(dirname "$0")/.."
install_check=false
[[ "${1:-}" == "--install" ]] && install_check=true

log() { printf 'package: %s\n' "$*"; }

for tool in cargo-deb cargo-generate-rpm; do
  if ! command -v "${tool}" >/dev/null 2>&1; then
    log "installing ${tool} (once)"
    cargo install --locked "${tool}"
  fi
done
missing=()
command -v lintian >/dev/null 2>&1 || missing+=(lintian)
command -v rpm >/dev/null 2>&1 || missing+=(rpm)
if ((${#missing[@]})); then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

# The agent client with its sound device support, as agents want it.
cargo build --release --locked -p trunkgate --features sound --bin trunkgate --bin trunkgate-agent
mkdir -p target/package
for bin in trunkgate trunkgate-agent; do
  install -m 755 -s "target/release/${bin}" "target/package/${bin}"
done
# The unit, sysusers.d and tmpfiles.d files come from systemd/ (cargo-deb's systemd-units).
deb="$(cargo deb --no-build --no-strip --locked -p trunkgate | tail -n 1)"
rpm_out="$(cargo generate-rpm -p . 2>&1)" || { echo "${rpm_out}" >&2; exit 1; }
rpm="$(ls -t target/generate-rpm/trunkgate-*.rpm | head -n 1)"
log "built ${deb} and ${rpm}"

contents="$(dpkg-deb --contents "${deb}")"
for path in ./usr/bin/trunkgate ./usr/bin/trunkgate-agent ./etc/trunkgate/trunkgate.toml \
  ./usr/lib/systemd/system/trunkgate.service ./usr/lib/sysusers.d/trunkgate.conf \
  ./usr/lib/tmpfiles.d/trunkgate.conf ./usr/lib/sysctl.d/60-trunkgate.conf \
  ./usr/share/trunkgate/prompts/welcome.wav \
  ./usr/share/trunkgate/grafana/trunkgate.json ./usr/share/trunkgate/prometheus/alerts.yml \
  ./usr/share/doc/trunkgate/operations.md ./usr/share/doc/trunkgate/metrics.md \
  ./usr/share/man/man1/trunkgate.1.gz ./usr/share/man/man1/trunkgate-agent.1.gz; do
  if ! grep -q " ${path}\$" <<<"${contents}"; then
    log "the .deb lacks ${path}"
    exit 1
  fi
done
conffiles="$(dpkg-deb --ctrl-tarfile "${deb}" | tar -xO ./conffiles)"
grep -qx /etc/trunkgate/trunkgate.toml <<<"${conffiles}" || { log "conffiles: ${conffiles}"; exit 1; }
lintian --fail-on error "${deb}"
log "lintian: no errors"

rpm_files="$(rpm -qpl "${rpm}")"
for path in /usr/bin/trunkgate /usr/bin/trunkgate-agent /etc/trunkgate/trunkgate.toml \
  /usr/lib/systemd/system/trunkgate.service /usr/lib/sysusers.d/trunkgate.conf \
  /usr/lib/tmpfiles.d/trunkgate.conf /usr/lib/sysctl.d/60-trunkgate.conf \
  /usr/share/trunkgate/prompts/welcome.wav \
  /usr/share/trunkgate/grafana/trunkgate.json /usr/share/trunkgate/prometheus/alerts.yml \
  /usr/share/doc/trunkgate/operations.md /usr/share/man/man1/trunkgate.1; do
  grep -qx "${path}" <<<"${rpm_files}" || { log "the .rpm lacks ${path}"; exit 1; }
done
rpm -qpc "${rpm}" | grep -qx /etc/trunkgate/trunkgate.toml || { log "the .rpm's config files: $(rpm -qpc "${rpm}")"; exit 1; }
rpm_scripts="$(rpm -qp --scripts "${rpm}")"
for step in systemd-sysusers "chgrp trunkgate" "sysctl -q -p" "systemctl enable trunkgate.service"; do
  grep -q "${step}" <<<"${rpm_scripts}" || { log "the .rpm's install script lacks ${step}"; exit 1; }
done
log "rpm: files, config file and install script as promised"

if $install_check; then
  dpkg -i "${deb}"
  id trunkgate >/dev/null
  test -f /usr/lib/systemd/system/trunkgate.service
  test -f /usr/lib/sysctl.d/60-trunkgate.conf
  trunkgate check-config /etc/trunkgate/trunkgate.toml
  dpkg --purge trunkgate
  log "installed, checked (user, unit, config) and purged"
fi
