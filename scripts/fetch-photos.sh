#!/usr/bin/env bash
# The photos of the INT8 fidelity measurement (bench/int8_fidelity.py): the
# natural photos and picture wallpapers that Debian packages ship, fetched
# with `apt-get download` and unpacked with `dpkg -x` (nothing is installed),
# plus the repository's own test photos. Safe to run again: a package already
# unpacked is not fetched again.
#
#   scripts/fetch-photos.sh [DIR]        (default: models/cache/photos)
#
# DIR/debs/ the .deb files, DIR/x/PACKAGE/ their contents, DIR/all/ one
# symlink per photo named PACKAGE--FILE (the set, in name order), and
# DIR/MANIFEST: package versions and the photo count. The list below picks
# photos by path: no logos, charts, text pages, icons, calibration
# chessboards, screenshots, or a second size or darkened copy of the same
# wallpaper. Needs apt-get (run `apt-get update` once first).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-models/cache/photos}
mkdir -p "$DIR/debs" "$DIR/x"
DIR=$(cd "$DIR" && pwd)

# package  path globs inside the package (relative to /)
LIST='
darknet usr/share/darknet/data/*.jpg
python3-skimage usr/lib/python3/dist-packages/skimage/data/{astronaut,brick,camera,cell,chelsea,clock_motion,coffee,coins,grass,gravel,horse,ihc,moon,motorcycle_left,motorcycle_right,page,retina,rocket,hubble_deep_field,microaneurysms}.*
python3-imageio usr/lib/python3/dist-packages/imageio/resources/images/newtonscradle.gif
python3-sklearn usr/lib/python3/dist-packages/sklearn/datasets/images/*.jpg
python-matplotlib-data usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg
imagemagick-6-doc usr/share/doc/imagemagick-6-common/html/images/{rose,bluebells_lin,wizard}.jpg
opencv-doc usr/share/doc/opencv-doc/examples/data/{HappyFish,aero1,aero3,aloeL,apple,baboon,basketball1,board,box_in_scene,building,butterfly,ela_original,fruits,graf1,home,leuvenA,licenseplate_motion,messi5,orange,rubberwhale1,smarties,squirrel_cls,starry_night,stuff,chicky_512,Blender_Suzanne1,pic1,pic3,pic5}.*
mate-backgrounds usr/share/backgrounds/mate/nature/*.jpg usr/share/backgrounds/mate/abstract/Elephants.jpg
lomiri-wallpapers-16.04 usr/share/backgrounds/*.jpg
lomiri-wallpapers-20.04 usr/share/backgrounds/*.jpg
ukui-wallpapers usr/share/backgrounds/*.jpg usr/share/backgrounds/*.png
plasma-workspace-wallpapers usr/share/wallpapers/*/contents/images/[1-9][0-9][0-9][0-9]x*.*
'

say() { echo "fetch-photos: $*" >&2; }

pkgs=$(printf '%s\n' "$LIST" | awk 'NF {print $1}')
for p in $pkgs; do
    [ -f "$DIR/x/$p/.unpacked" ] && continue
    say "apt-get download $p"
    (cd "$DIR/debs" && rm -f "${p}"_*.deb && apt-get download "$p" >/dev/null) ||
        { say "error: apt-get download $p failed (apt-get update first?)"; exit 1; }
    rm -rf "$DIR/x/$p"
    mkdir -p "$DIR/x/$p"
    dpkg -x "$DIR/debs/${p}"_*.deb "$DIR/x/$p"
    dpkg-deb -f "$DIR/debs/${p}"_*.deb Version >"$DIR/x/$p/.unpacked"
done

rm -rf "$DIR/all"
mkdir -p "$DIR/all"
shopt -s nullglob
printf '%s\n' "$LIST" | while read -r p globs; do
    [ -n "$p" ] || continue
    set -f # the patterns are expanded below, under the package's root, not here
    for g in $globs; do
        for f in $(cd "$DIR/x/$p" && set +f && eval "printf '%s\n' $g"); do
            [ -f "$DIR/x/$p/$f" ] || continue
            name=$(basename "$f")
            # plasma: the wallpaper's folder names it, one size per wallpaper (the first listed)
            case $p in plasma-workspace-wallpapers)
                name=$(echo "$f" | cut -d/ -f4).${f##*.}
                [ -e "$DIR/all/$p--$name" ] && continue ;;
            esac
            ln -sf "$DIR/x/$p/$f" "$DIR/all/$p--$name"
        done
    done
    set +f
done
for f in tests/fixtures/images/*.jpg tests/fixtures/images/*.png; do
    ln -sf "$PWD/$f" "$DIR/all/tests--$(basename "$f")"
done
{
    echo "# scripts/fetch-photos.sh: $(ls "$DIR/all" | wc -l) photos"
    for p in $pkgs; do
        echo "$p $(cat "$DIR/x/$p/.unpacked") $(ls "$DIR/all" | grep -c "^$p--")"
    done
    echo "tests/fixtures/images $(ls "$DIR/all" | grep -c '^tests--')"
} >"$DIR/MANIFEST"
cat "$DIR/MANIFEST" >&2
