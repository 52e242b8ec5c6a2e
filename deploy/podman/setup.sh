#!/usr/bin/env bash
# Make Podman usable for acmegate's container tests on a Debian machine that has no Docker engine
# and may reach no container registry, and build the local stand-in images those tests use.
#
#   deploy/podman/setup.sh          # idempotent; a cold run takes about 3 minutes, a warm one seconds
#
# What it does, and why:
# 1. Installs podman, runc, catatonit (the pause process of `podman kube play` pods) and
#    debootstrap from Debian if they are missing.
# 2. Where the machine forbids raising the open-files limit (a sandbox, a CI container), Podman's
#    default per-container ulimits make every `podman run` fail with "error setting rlimits";
#    a drop-in (/etc/containers/containers.conf.d/50-acmegate-ulimits.conf) lets containers
#    inherit the host's limits instead.
# 3. Builds images from Debian packages in place of the registry images the tests and the
#    Dockerfile name, tagged under localhost/ so nobody mistakes them for the official ones:
#      localhost/python:3.11-slim                 the Dockerfile's default base (python:3.11-slim);
#                                                 Podman resolves the short name to it locally
#      localhost/acmegate-standin/postgres:15     honours POSTGRES_USER/_PASSWORD/_DB, PGDATA, …
#      localhost/acmegate-standin/rabbitmq:3.10   honours RABBITMQ_DEFAULT_USER/_PASS/_VHOST, …
#    Each is labelled with a digest of its recipe under standins/ and rebuilt only when that
#    recipe changes; Podman's image store keeps them between runs.
#
# Builds run with --network host: on such a machine only the host's network reaches Debian's
# mirror. Set ACMEGATE_DEBIAN_MIRROR to use another mirror than the host's apt source.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export DEBIAN_FRONTEND=noninteractive
say() { printf 'podman-setup: %s\n' "$*"; }
started=$SECONDS

need=()
for tool in podman:podman runc:runc catatonit:catatonit debootstrap:debootstrap; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool##*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Podman asks for RLIMIT_NOFILE=1048576 in every container unless told otherwise.
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt 1048576 ]; then
  dropin=/etc/containers/containers.conf.d/50-acmegate-ulimits.conf
  if [ ! -f "$dropin" ]; then
    say "this machine caps open files at $(ulimit -Hn): containers inherit the host's limits ($dropin)"
    mkdir -p "$(dirname "$dropin")"
    printf '# Written by acmegate deploy/podman/setup.sh: the host forbids raising RLIMIT_NOFILE.\n[containers]\ndefault_ulimits = []\n' >"$dropin"
  fi
fi

label=io.acmegate.standin.digest
recipe_digest() { (cd "$here/standins" && find "$@" -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16); }
current_digest() { podman image inspect --format "{{ index .Config.Labels \"$label\" }}" "$1" 2>/dev/null || true; }

# The Debian base every stand-in starts from: debootstrap's minimal system, imported as an image.
base=localhost/acmegate-standin/debian:bookworm
base_digest=$(recipe_digest debian)
if [ "$(current_digest "$base")" != "$base_digest" ]; then
  mirror=${ACMEGATE_DEBIAN_MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
  mirror=${mirror:-http://deb.debian.org/debian}
  say "building $base with debootstrap from $mirror"
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
  sed "s#@MIRROR@#$mirror#" "$here/standins/debian/sources.list" >"$root/etc/apt/sources.list"
  cp "$here/standins/debian/apt-slim.conf" "$root/etc/apt/apt.conf.d/90acmegate-slim"
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
  tar -C "$root" -c . | podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["bash"]' \
    --change "LABEL $label=$base_digest" - "$base" >/dev/null
  rm -rf "$root"
  trap - EXIT
fi

standin() {  # standin NAME IMAGE: build standins/NAME/Containerfile unless its digest is current
  local digest
  digest=$(recipe_digest debian "$1")
  if [ "$(current_digest "$2")" != "$digest" ]; then
    say "building $2"
    podman build --quiet --network host --pull=never --label "$label=$digest" \
      --build-arg "BASE=$base" -t "$2" "$here/standins/$1" >/dev/null
  fi
}
standin python localhost/python:3.11-slim
standin postgres localhost/acmegate-standin/postgres:15
standin rabbitmq localhost/acmegate-standin/rabbitmq:3.10

podman run --rm --network host localhost/python:3.11-slim \
  python3 -c 'import sys; print("podman-setup: podman works; base image Python", sys.version.split()[0])'
say "ready in $((SECONDS - started)) s"
