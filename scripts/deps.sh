#!/usr/bin/env bash
# Installs what v6matrix's tests, lab and demo need on Debian, when it is missing.
# Idempotent and quick when everything is there. Needs root (or sudo) to install.
# V6M_DEPS_ROOT (tests only) is prepended to the files checked; V6M_POLICY_RC_D (tests
# only) replaces /usr/sbin/policy-rc.d.
set -euo pipefail
root="${V6M_DEPS_ROOT:-}"
policy="${V6M_POLICY_RC_D:-/usr/sbin/policy-rc.d}"

# Debian package -> a file it installs (to tell whether it is there).
declare -A pkgs=(
  [dnsutils]=/usr/bin/dig                 # lab and test comparisons with dig
  [iputils-ping]=/usr/bin/ping            # ping comparisons
  [iputils-tracepath]=/usr/bin/tracepath  # path comparisons
  [iproute2]=/usr/sbin/ip                 # `ip netns` to inspect a lab by hand (the code uses netlink)
  [nftables]=/usr/sbin/nft                # lab faults (drops), path tests
  [ipv6toolkit]=/usr/bin/addr6            # address-type comparisons
  [mmdb-bin]=/usr/bin/mmdblookup          # GeoIP comparisons
  [nsd]=/usr/sbin/nsd                     # DNS benchmark server, zone checks
  [openssl]=/usr/bin/openssl              # TLS comparisons
  [tcpdump]=/usr/bin/tcpdump              # destination-port capture checks
  [netcat-openbsd]=/usr/bin/nc.openbsd    # TCP state comparisons
  [ca-certificates]=/etc/ssl/certs        # TLS verification
  [chromium]=/usr/bin/chromium            # the website's end-to-end tests (chromedp)
  # The PostgreSQL store's tests (internal/store/pgtest starts a throw-away cluster with
  # initdb/pg_ctl from /usr/lib/postgresql/N/bin). The metapackage's own file is
  # version-independent; the service it would start is kept off by policy-rc.d below.
  [postgresql]=/usr/share/doc/postgresql/copyright
)
missing=()
for p in "${!pkgs[@]}"; do
  [ -e "$root${pkgs[$p]}" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  # Packages with a service (nsd, postgresql) must not start it: the project runs its own. The
  # machine's own policy-rc.d, if it has one, is put back afterwards, whatever happens.
  saved=""
  if [ -e "$policy" ]; then
    saved="$(mktemp)"
    $sudo cp -p "$policy" "$saved"
  fi
  restore() {
    if [ -n "$saved" ]; then
      $sudo cp -p "$saved" "$policy" && rm -f "$saved"
    else
      $sudo rm -f "$policy"
    fi
  }
  trap restore EXIT
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod +x "$policy"
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  restore
  trap - EXIT
fi
if ! command -v go >/dev/null; then
  echo "Go 1.26 or newer is needed (https://go.dev/dl/); it is not on PATH" >&2
  exit 1
fi
go mod download
