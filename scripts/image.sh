#!/usr/bin/env bash
# The container image without a container registry (make image).
#
#   scripts/image.sh base    make (or reuse) the local base image and print its name
#   scripts/image.sh build   podman build deploy/Containerfile FROM that base, as $IMAGE
#   scripts/image.sh flags   the podman run flags that work on this kind of machine
#
# The base is what debian:12-slim is, made here: mmdebstrap's minbase of
# bookworm from this machine's own Debian mirrors (apt's sources, so a local
# mirror or a snapshot works as well), with merged /usr set up by a hook
# rather than the usrmerge package (which would pull in perl), and without
# man pages, docs and locales as in the slim images. The tarball is cached as
# models/cache/image/base-DATE-HASH.tar, DATE the day (UTC) and HASH that of
# the sources, so the Debian updates of the day are taken once a day; podman
# keeps it imported as localhost/resnetd-base:DATE-HASH.
#
# Why the flags: podman's default runtime, crun, refuses the hybrid cgroup
# set-up of some machines; runc runs there. Without CAP_SYS_RESOURCE (as in a
# container or a restricted VM) neither may raise a resource limit, and
# podman asks for more open files and processes than such a host allows; on
# the machines seen even the host's own limits were refused, 4096 was not
# (ample for resnetd: 1024 connections at most by default). RUN steps of a
# build meet the same limits, so podman build gets the same flags.
set -eu
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
IMAGE=${IMAGE:-resnetd:latest}
CACHE=${IMAGE_CACHE:-models/cache/image}

flags() {
    local f=()
    command -v runc >/dev/null 2>&1 && f+=(--runtime runc)
    f+=(--ulimit nofile=4096:4096 --ulimit nproc=4096:4096)
    echo "${f[@]}"
}

# This machine's Debian sources for bookworm, one "deb URI SUITE main" a line.
sources() {
    apt-get indextargets --format '$(SITE) $(RELEASE) $(COMPONENT)' 'Created-By: Packages' \
        | awk '$2 ~ /^bookworm(-updates|-security)?$/ && $3 == "main" {print "deb " $1 " " $2 " main"}' \
        | sort -u
}

base() {
    local src key tar name
    src=$(sources)
    if [ -z "$src" ]; then
        # no index downloaded yet (apt-get update never ran): Debian's own
        src=$(printf 'deb http://deb.debian.org/debian %s main\n' bookworm bookworm-updates
              echo "deb http://deb.debian.org/debian-security bookworm-security main")
    fi
    key=$(date -u +%Y%m%d)-$(printf '%s\n' "$src" | sha256sum | cut -c1-12)
    tar=$CACHE/base-$key.tar
    name=localhost/resnetd-base:$key
    if podman image exists "$name"; then
        echo "$name"
        return
    fi
    if [ ! -s "$tar" ]; then
        mkdir -p "$CACHE"
        rm -f "$CACHE"/base-*.tar # yesterday's
        echo "image: a Debian 12 minbase from $(printf '%s\n' "$src" | awk '{print $2}' | sort -u | xargs)" >&2
        local mirrors=()
        while IFS= read -r line; do mirrors+=("$line"); done <<<"$src"
        mmdebstrap --variant=minbase --format=tar --quiet \
            --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
            --dpkgopt='path-exclude=/usr/share/man/*' \
            --dpkgopt='path-exclude=/usr/share/info/*' \
            --dpkgopt='path-exclude=/usr/share/locale/*' \
            --dpkgopt='path-exclude=/usr/share/doc/*' \
            --dpkgopt='path-include=/usr/share/doc/*/copyright' \
            bookworm "$tar.tmp" "${mirrors[@]}" >&2
        mv "$tar.tmp" "$tar"
    fi
    podman import --quiet "$tar" "$name" >/dev/null
    # yesterday's base, unless an image still stands on it
    podman images --format '{{.Repository}}:{{.Tag}}' localhost/resnetd-base |
        grep -vxF "$name" | xargs -r podman rmi >/dev/null 2>&1 || true
    echo "$name"
}

build() {
    local b
    b=$(base)
    # The build stage tagged too, so that it stays podman's cache of the
    # compile while the images of earlier builds (labelled resnetd.stage in
    # the Containerfile), untagged by this one, are removed: repeated builds
    # of a changing tree do not pile up 650 MB build stages.
    # shellcheck disable=SC2046 # flags() is a list of words
    podman build $(flags) --pull=never --format docker --build-arg BASE="$b" \
        -f deploy/Containerfile --target build -t localhost/resnetd-build:latest .
    # shellcheck disable=SC2046
    podman build $(flags) --pull=never --format docker --build-arg BASE="$b" \
        -f deploy/Containerfile -t "$IMAGE" .
    podman image prune -f --filter label=resnetd.stage >/dev/null
    podman image ls "$IMAGE"
}

case ${1:-} in
base) base ;;
build) build ;;
flags) flags ;;
*) echo "usage: $0 base|build|flags" >&2; exit 2 ;;
esac
