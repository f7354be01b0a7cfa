# Shared set-up for scripts/quickstart and scripts/test: installs what is missing.
# On Debian as root it installs with apt; elsewhere it says exactly what to install.
# shellcheck shell=bash

say() { printf '==> %s\n' "$*" >&2; }

is_debian_root() {
  [ "$(id -u)" -eq 0 ] && [ -r /etc/debian_version ] && command -v apt-get >/dev/null 2>&1
}

apt_updated=""
apt_install() {
  # Installs Debian packages without starting their services on this machine: a
  # policy-rc.d that denies starts is put in place for the install if none exists.
  local created_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    created_policy=yes
  fi
  if [ -z "$apt_updated" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=yes
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  if [ -n "$created_policy" ]; then
    rm -f /usr/sbin/policy-rc.d
  fi
}

# ensure_commands "package:command" ...: installs each package whose command is missing.
ensure_commands() {
  local missing=() pair package command
  for pair in "$@"; do
    package=${pair%%:*}
    command=${pair#*:}
    if ! command -v "$command" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$command" ] && [ ! -x "/sbin/$command" ]; then
      missing+=("$package")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if is_debian_root; then
    say "installing ${missing[*]}"
    apt_install "${missing[@]}"
  else
    say "missing: ${missing[*]}"
    say "install them (Debian/Ubuntu: sudo apt-get install ${missing[*]}) and run this again"
    exit 1
  fi
}

# The real config checkers the tests feed every rendered file to.
ensure_validators() {
  ensure_commands haproxy:haproxy keepalived:keepalived nginx:nginx nftables:nft mariadb-server:mariadbd \
    prometheus:promtool prometheus-blackbox-exporter:prometheus-blackbox-exporter
}

# Rust at least as new as Cargo.toml's `rust-version`. Debian 12's own cargo (1.65) is too old,
# so the advice is rustup, never `apt-get install cargo`.
ensure_rust() {
  local wanted have
  wanted=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
  if ! command -v cargo >/dev/null 2>&1; then
    say "cargo is missing: install Rust $wanted or newer with rustup (https://rustup.rs; Debian's own cargo is too old) and run this again"
    exit 1
  fi
  have=$(cargo --version | sed -n 's/^cargo \([0-9][0-9.]*\).*/\1/p')
  if [ "$(printf '%s\n%s\n' "$wanted" "$have" | sort -V | head -n 1)" != "$wanted" ]; then
    say "cargo $have is older than the Rust $wanted infra needs: update it with rustup (rustup update stable; https://rustup.rs) and run this again"
    exit 1
  fi
}

# A running Docker engine and debootstrap, for the lab. Installs docker.io when dockerd is
# missing (a docker client alone is not enough) and starts the engine when it does not answer.
ensure_docker() {
  ensure_commands docker.io:dockerd debootstrap:debootstrap openssh-client:ssh curl:curl
  if docker info >/dev/null 2>&1; then
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    say "the Docker engine is not running: start it (sudo systemctl start docker) and run this again"
    exit 1
  fi
  say "starting the Docker engine"
  if [ -d /run/systemd/system ]; then
    systemctl start docker
  else
    setsid nohup dockerd >/var/log/infra-dockerd.log 2>&1 < /dev/null &
  fi
  local waited=0
  until docker info >/dev/null 2>&1; do
    if [ "$waited" -ge 120 ]; then
      say "the Docker engine did not answer within 120 s; see /var/log/infra-dockerd.log"
      exit 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
}
