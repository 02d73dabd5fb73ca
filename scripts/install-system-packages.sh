#!/usr/bin/env bash
# Debian packages the tests and the local demo need: daemonless image builds (buildah), a real
# registry (docker-registry + htpasswd), a 2 MB test image (busybox-static) and a Python base
# rootfs (debootstrap, which checks the archive's signature with gpgv against Debian's archive
# keyring). Installs only what is missing, so a warm machine pays nothing.
set -euo pipefail
declare -A wanted=(
  [buildah]=buildah
  [docker-registry]=docker-registry
  [busybox]=busybox-static
  [htpasswd]=apache2-utils
  [debootstrap]=debootstrap
  [gpgv]=gpgv
)
missing=()
for cmd in "${!wanted[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${wanted[$cmd]}")
done
# Not a command: without it debootstrap cannot verify what it downloads (python_base refuses to run).
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing Debian packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
