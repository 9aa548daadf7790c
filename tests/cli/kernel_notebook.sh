#!/bin/sh
# experiments/notebook.ipynb runs top to bottom in usagi's kernel under
# `jupyter nbconvert --execute` (Debian's jupyter-nbconvert), and its output
# cells hold the pictures (image/png): the loss plot, the gradient flow and
# the attention heatmap. The notebook runs in a temporary folder beside
# links to the experiments, so its runs/ never lands in the source tree.
# Usage: kernel_notebook.sh path/to/usagi  (exits 77, a skip, without nbconvert)
usagi=$(readlink -f "$1")
src=$(cd "$(dirname "$0")/../.." && pwd)
if ! /usr/bin/python3 -c 'import nbconvert, nbclient, nbformat, jupyter_client' 2>/dev/null; then
  echo "skip: the notebook test needs jupyter-nbconvert and python3-nbclient"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$usagi" kernel install --prefix "$tmp/prefix" >/dev/null || exit 1
mkdir "$tmp/nb"
cp "$src/experiments/notebook.ipynb" "$tmp/nb/"
for f in "$src"/experiments/*.lua; do ln -s "$f" "$tmp/nb/"; done
cd "$tmp/nb" || exit 1
JUPYTER_PATH="$tmp/prefix/share/jupyter" JUPYTER_DATA_DIR="$tmp/data" \
  JUPYTER_RUNTIME_DIR="$tmp/runtime" HOME="$tmp" \
  /usr/bin/python3 -m nbconvert --to notebook --execute notebook.ipynb \
  --ExecutePreprocessor.timeout=120 --output out.ipynb >"$tmp/log" 2>&1 || {
  cat "$tmp/log"; echo "FAIL nbconvert --execute"; exit 1; }
exec /usr/bin/python3 - "$tmp/nb/out.ipynb" <<'PY'
import json, sys
nb = json.load(open(sys.argv[1]))
fails = 0
def check(cond, what):
    global fails
    print(("ok   " if cond else "FAIL ") + what)
    fails += not cond
code = [c for c in nb["cells"] if c["cell_type"] == "code"]
def outputs(i):
    return code[i].get("outputs", [])
def has_png(i):
    return any("image/png" in o.get("data", {}) for o in outputs(i))
check(all(o["output_type"] != "error" for c in code for o in c.get("outputs", [])), "no cell failed")
check(any("text/html" in o.get("data", {}) for o in outputs(0)), "a tensor shows as an HTML table")
check(any("text/html" in o.get("data", {}) for o in outputs(1)), "a run shows its metrics as a table")
check(has_png(2), "the loss plot is an inline PNG")
check(has_png(3), "the gradient flow is an inline PNG")
check(has_png(4), "the attention heatmap is an inline PNG")
sys.exit(1 if fails else 0)
PY
