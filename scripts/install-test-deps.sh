#!/usr/bin/env bash
# Installs what the test suite needs beyond Rust: moto's S3-compatible server (`moto_server`,
# from PyPI) for the S3 photo store tests. Safe to run again: it does nothing when the server
# is already there.
set -euo pipefail

PYTHON=${PYTHON:-python3}
MOTO_SPEC='moto[server]>=5,<6'

have_moto() {
    command -v moto_server >/dev/null 2>&1 && moto_server --help >/dev/null 2>&1
}

if have_moto; then
    echo "moto_server: already installed ($(command -v moto_server))"
    exit 0
fi

if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    echo "installing pip"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
fi

echo "installing $MOTO_SPEC"
# A distribution's own Python refuses pip installs (PEP 668) unless told otherwise.
"$PYTHON" -m pip install --quiet "$MOTO_SPEC" \
    || "$PYTHON" -m pip install --quiet --break-system-packages "$MOTO_SPEC"

# pyenv only exposes a new console script after a rehash.
if command -v pyenv >/dev/null 2>&1; then
    pyenv rehash
fi

if ! have_moto; then
    echo "moto_server is still not on PATH after installing $MOTO_SPEC" >&2
    exit 1
fi
echo "moto_server: installed ($(command -v moto_server))"
