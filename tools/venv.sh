#!/usr/bin/env bash
# Create or refresh the virtual environment $VENV (default .venv) with skvidsage
# installed in editable mode plus the extras in $EXTRAS (default "test").
# A second run is a no-op unless pyproject.toml, the checkout path or the
# extras changed.
set -euo pipefail
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
EXTRAS=${EXTRAS:-test}

want="$(sha256sum pyproject.toml | cut -d' ' -f1) $(pwd) $EXTRAS"
stamp="$VENV/.skvidsage-stamp"
if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    exit 0
fi
start=$(date +%s)
if ! "$VENV/bin/python" -c "" 2>/dev/null; then
    echo "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
pins=$("$VENV/bin/python" tools/torch_pins.py)
echo "installing skvidsage[$EXTRAS] into $VENV ${pins:+(with $pins)}"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $pins -e ".[$EXTRAS]" 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
# pip's status is hidden by the filter above: check the install really worked.
"$VENV/bin/python" -W ignore -c "import skvidsage, torch, torchvision, torch_geometric, av" \
    || { echo "installation into $VENV failed" >&2; exit 1; }
echo "$want" > "$stamp"
echo "environment ready in $(( $(date +%s) - start )) s"
