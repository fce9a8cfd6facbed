#!/usr/bin/env bash
# Installs what the test suite needs beyond Rust, from PyPI:
# - moto's S3-compatible server (`moto_server`) for the S3 photo store tests;
# - schemathesis (`st`), which checks the running API against its OpenAPI document.
# Safe to run again: each tool already on PATH (and working) is left alone.
set -euo pipefail

PYTHON=${PYTHON:-python3}
MOTO_SPEC='moto[server]>=5,<6'
# The contract test passes v4 CLI flags (`--checks`, `--max-examples`, `--header`).
SCHEMATHESIS_SPEC='schemathesis>=4,<5'

have_moto() {
    command -v moto_server >/dev/null 2>&1 && moto_server --help >/dev/null 2>&1
}

have_schemathesis() {
    command -v st >/dev/null 2>&1 && st --version 2>/dev/null | grep -q 'version 4\.'
}

ensure_pip() {
    if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
        echo "installing pip"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
    fi
}

pip_install() {
    echo "installing $1"
    # A distribution's own Python refuses pip installs (PEP 668) unless told otherwise.
    "$PYTHON" -m pip install --quiet "$1" \
        || "$PYTHON" -m pip install --quiet --break-system-packages "$1"
    # pyenv only exposes a new console script after a rehash.
    if command -v pyenv >/dev/null 2>&1; then
        pyenv rehash
    fi
}

if have_moto; then
    echo "moto_server: already installed ($(command -v moto_server))"
else
    ensure_pip
    pip_install "$MOTO_SPEC"
    if ! have_moto; then
        echo "moto_server is still not on PATH after installing $MOTO_SPEC" >&2
        exit 1
    fi
    echo "moto_server: installed ($(command -v moto_server))"
fi

if have_schemathesis; then
    echo "st: already installed ($(command -v st), $(st --version))"
else
    ensure_pip
    pip_install "$SCHEMATHESIS_SPEC"
    if ! have_schemathesis; then
        echo "st (schemathesis 4) is still not on PATH after installing $SCHEMATHESIS_SPEC" >&2
        exit 1
    fi
    echo "st: installed ($(command -v st), $(st --version))"
fi

# axe-core is vendored (pinned) in tests/fixtures/axe.min.js: nothing to install.
