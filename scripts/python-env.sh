#!/usr/bin/env bash
# Creates or updates the Python virtual environment at .venv in the repo root
# with the pinned packages of requirements.txt (DuckDB, pyarrow, pandas), which
# internal/oracle uses to check riffle's output in tests, and matplotlib with
# nbclient/nbformat/ipykernel, which run the notebooks in notebooks/.
#
# Idempotent and quick when nothing changed: the hash of requirements.txt is
# recorded in .venv/.requirements.sha256 after a successful install, and the
# install is skipped while it matches and the packages import.
#
# Usage: scripts/python-env.sh [--force]
# Env:   PYTHON  interpreter to create the venv with (default python3)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
req="$root/requirements.txt"
stamp="$venv/.requirements.sha256"
python="${PYTHON:-python3}"
force=0
[[ "${1:-}" == "--force" ]] && force=1

if ! command -v "$python" >/dev/null 2>&1; then
	echo "python-env: $python not found" >&2
	exit 1
fi

want="$(sha256sum "$req" | cut -d' ' -f1)"

if [[ $force -eq 0 && -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] &&
	"$venv/bin/python" -c 'import duckdb, pyarrow, pandas, pytz, matplotlib, nbclient, nbformat, ipykernel' >/dev/null 2>&1; then
	echo "python-env: $venv up to date"
	exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
	echo "python-env: creating $venv"
	"$python" -m venv "$venv"
fi

rm -f "$stamp"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
"$venv/bin/python" -c 'import duckdb, pyarrow, pandas, pytz, matplotlib, nbclient, nbformat, ipykernel; print("python-env: duckdb", duckdb.__version__, "pyarrow", pyarrow.__version__, "pandas", pandas.__version__, "matplotlib", matplotlib.__version__, "nbclient", nbclient.__version__)'
echo "$want" >"$stamp"
