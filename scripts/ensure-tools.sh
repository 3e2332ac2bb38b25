#!/bin/sh
# System tools the tests need: LibreOffice (headless Calc, renders the finance workbook to PDF),
# poppler-utils (pdftotext reads the totals back), and Chromium with its ChromeDriver (the buyer's
# satisfaction page is used in a headless browser and the README's screenshots are taken with it;
# Debian's packages, as no browser CDN is reachable) with a Chinese font (fonts-wqy-zenhei). Idempotent: installs only what is
# missing, so `make install` may call it on every run. Without root or apt it says what to install
# and carries on (the rendering test then skips with the same hint).
set -eu

missing=""
command -v soffice >/dev/null 2>&1 || missing="$missing libreoffice-calc-nogui"
command -v pdftotext >/dev/null 2>&1 || missing="$missing poppler-utils"
[ -x /usr/bin/chromium ] || missing="$missing chromium"
[ -x /usr/bin/chromedriver ] || missing="$missing chromium-driver"
# a Chinese font: without one the screenshots of the forms and the case card show boxes for Chinese
[ -f /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] || missing="$missing fonts-wqy-zenhei"
[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-tools: please install:$missing (no apt-get here)" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "ensure-tools: please install (as root):$missing" >&2
        exit 0
    fi
fi
echo "ensure-tools: installing$missing"
$SUDO apt-get update -qq
# --no-install-recommends: Calc without the desktop (about 300 MB instead of 1 GB), Chromium without extras
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
