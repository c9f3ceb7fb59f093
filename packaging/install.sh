#!/usr/bin/env bash
# Install localrag from this bundle with no network: a venv, the wheels, the default models
# (checked against the SHA-256 pinned in the manifest inside the localrag wheel).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
prefix="${1:-$HOME/.local/share/localrag/venv}"
python="${PYTHON:-python3}"

"$python" -m venv "$prefix"
"$prefix/bin/pip" install --disable-pip-version-check --no-index --find-links "$here/wheels" localrag
# Outside a checkout the models go to <home>/models; the home folder is the usual one.
"$prefix/bin/localrag" models pull --from "$here/models"
echo "installed: $prefix/bin/localrag"
