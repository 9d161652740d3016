#!/usr/bin/env bash
# Start Soundstage on the bundled demo under a virtual X server (Xvfb), wait until the demo is
# separated and placed by the placement model (as it opens: nothing placed by hand), play a couple
# of seconds (silently if there is no sound card), and save a picture of the window (Qt's grab() of
# the real window). With no arguments: the README's pictures, docs/screenshot-1920x1080.png,
# docs/screenshot-1280x720.png (a laptop screen) and docs/screenshot-1280x720-banner.png (the same
# with the banner of a failed Demucs separation shown). ARRANGE=1 spreads the sources by hand first;
# BANNER=1 shows that banner.
#
#   scripts/screenshot.sh [OUT.png [FILE [WxH]]]      (window size, default 1920x1080)
set -euo pipefail
SELF="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$SELF")/.."
if [ $# -eq 0 ]; then
    bash "$SELF" docs/screenshot-1920x1080.png "" 1920x1080
    bash "$SELF" docs/screenshot-1280x720.png "" 1280x720
    BANNER=1 exec bash "$SELF" docs/screenshot-1280x720-banner.png "" 1280x720
fi
OUT="$1"
FILE="${2:-}"
SIZE="${3:-1920x1080}"
W="${SIZE%x*}"; H="${SIZE#*x}"
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3

# Xvfb, and the X libraries Qt's xcb platform plugin loads (Qt >= 6.5 needs libxcb-cursor0)
PKGS=""
command -v xvfb-run >/dev/null 2>&1 || PKGS="xvfb"
for lib in libxcb-cursor.so.0:libxcb-cursor0 libxcb-icccm.so.4:libxcb-icccm4 libxcb-keysyms.so.1:libxcb-keysyms1 \
           libxcb-image.so.0:libxcb-image0 libxcb-render-util.so.0:libxcb-render-util0 \
           libxkbcommon-x11.so.0:libxkbcommon-x11-0 libxcb-xkb.so.1:libxcb-xkb1 libxcb-randr.so.0:libxcb-randr0 \
           libxcb-shape.so.0:libxcb-shape0 libxcb-xinerama.so.0:libxcb-xinerama0; do
    ldconfig -p 2>/dev/null | grep -q "${lib%%:*}" || PKGS="$PKGS ${lib##*:}"
done
if [ -n "$PKGS" ]; then
    echo "Installing:$PKGS"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $PKGS
fi

# the virtual screen is the window's size (a laptop's 1280x720 screen is exactly that)
unset QT_QPA_PLATFORM
ARRANGE_FLAG=""
[ "${ARRANGE:-0}" = 1 ] && ARRANGE_FLAG="--arrange"
BANNER_FLAG=""
[ "${BANNER:-0}" = 1 ] && BANNER_FLAG="--banner"
xvfb-run -a -s "-screen 0 ${W}x${H}x24" "$PY" -m ui.app ${FILE:+"$FILE"} --screenshot "$OUT" $ARRANGE_FLAG $BANNER_FLAG \
    --size "$SIZE"
echo "$OUT"
