#!/usr/bin/env bash
# Install the system libraries Soundstage needs when they are missing (Debian/Ubuntu, apt-get).
# PortAudio for playback; the GL/EGL/xkb/fontconfig libraries Qt's platform plugins load.
# Without apt-get or without root, prints what is missing and goes on: the app still runs
# (no audio device -> a clear message; no Qt libraries -> the headless commands).
set -u
need=()
have_lib() { ldconfig -p 2>/dev/null | grep -q "$1"; }
have_lib libportaudio.so.2 || need+=(libportaudio2)
have_lib libEGL.so.1 || need+=(libegl1)
have_lib libGL.so.1 || need+=(libgl1)
have_lib libxkbcommon.so.0 || need+=(libxkbcommon0)
have_lib libxkbcommon-x11.so.0 || need+=(libxkbcommon-x11-0)
have_lib libfontconfig.so.1 || need+=(libfontconfig1)
have_lib libdbus-1.so.3 || need+=(libdbus-1-3)
have_lib libglib-2.0.so.0 || need+=(libglib2.0-0)
have_lib libxcb-cursor.so.0 || need+=(libxcb-cursor0)
# Qt's xcb platform plugin (a real X display)
have_lib libxcb-icccm.so.4 || need+=(libxcb-icccm4)
have_lib libxcb-keysyms.so.1 || need+=(libxcb-keysyms1)
have_lib libxcb-image.so.0 || need+=(libxcb-image0)
have_lib libxcb-render-util.so.0 || need+=(libxcb-render-util0)
have_lib libxcb-xkb.so.1 || need+=(libxcb-xkb1)
have_lib libxcb-randr.so.0 || need+=(libxcb-randr0)
have_lib libxcb-shape.so.0 || need+=(libxcb-shape0)
have_lib libxcb-xinerama.so.0 || need+=(libxcb-xinerama0)
[ ${#need[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: missing ${need[*]} and no apt-get here; install them with your package manager" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "system-deps: missing ${need[*]}; run: sudo apt-get install ${need[*]}" >&2
    exit 0
  fi
fi
echo "system-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
  || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null; } \
  || echo "system-deps: could not install ${need[*]} (continuing)" >&2
exit 0
