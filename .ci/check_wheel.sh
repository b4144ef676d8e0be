#!/usr/bin/env bash
# Checks the wheel in dist/ as a user gets it: its platform tag, that the
# extension links nothing outside the manylinux policy (no libhdf5, libcurl,
# libssl, libjpeg, libz), and that it installs into a new virtual
# environment and runs the README's Python examples there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
wheel=$(ls dist/stokehold-*.whl)
tag=manylinux_2_28_x86_64
shown=$(.venv/bin/auditwheel show "$wheel")
if ! grep -q "platform tag: \"$tag\"" <<<"$shown"; then
    echo "$shown"
    echo "error: $wheel is not $tag" >&2
    exit 1
fi
case "$wheel" in *-cp39-abi3-"$tag".whl) ;; *) echo "error: $wheel is not an abi3 $tag wheel" >&2; exit 1 ;; esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unzip -q "$wheel" -d "$work/unpacked"
linked=$(ldd "$work/unpacked/stokehold/_native.abi3.so")
if grep -Ei "hdf5|curl|ssl|crypto|jpeg|turbo|libz\.|gssapi|ldap" <<<"$linked"; then
    echo "error: the extension links a library the wheel should bundle" >&2
    exit 1
fi
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check "$wheel[sample]"
# The README's examples, on the bundled dataset, from a folder with no source tree.
mkdir "$work/run"
cp README.md "$work/run/"
cd "$work/run"
"$work/venv/bin/python" - <<'PY'
import re
from pathlib import Path

import stokehold
from stokehold.datasets import make_shapes

assert "site-packages" in stokehold.__file__
make_shapes(Path("data/shapes"), n=24, seed=0)
blocks = re.findall(r"```python\n(.*?)```", Path("README.md").read_text(), flags=re.S)
for block in blocks:
    exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
print(f"wheel check: {len(blocks)} README examples ran with stokehold {stokehold.__version__} from {stokehold.__file__}")
PY
echo "wheel check: $(basename "$wheel") is $tag, links only: $(awk '{print $1}' <<<"$linked" | tr '\n' ' ')"
