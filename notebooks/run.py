"""Executes, checks or strips riffle's notebooks.

    run.py [--out DIR] [NOTEBOOK...]   execute top to bottom, headless (nbclient, the
                                       python3 kernel of this interpreter's environment);
                                       exit 1 on the first cell that raises
    run.py --check [NOTEBOOK...]       exit 1 if a notebook holds outputs or execution counts
    run.py --strip [NOTEBOOK...]       remove outputs and execution counts in place

Without NOTEBOOK arguments: every *.ipynb beside this file. Executed copies (with their
outputs) go to --out when given; the notebooks themselves are never rewritten by a run.
Each notebook runs with this directory as its working directory, so `import riffle_nb`
works; riffle is $RIFFLE_BIN, or built from the checkout (riffle_nb.binary).
"""

import argparse
import pathlib
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

HERE = pathlib.Path(__file__).resolve().parent


def dirty(nb) -> list:
    """The indices of code cells with outputs or an execution count."""
    return [i for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--strip", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--timeout", type=int, default=600, help="seconds a cell may run")
    ap.add_argument("notebooks", nargs="*")
    a = ap.parse_args()
    paths = [pathlib.Path(p) for p in a.notebooks] or sorted(HERE.glob("*.ipynb"))
    if not paths:
        print("no notebooks", file=sys.stderr)
        return 1
    failed = 0
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if a.check:
            if d := dirty(nb):
                print(f"{path}: outputs in code cells {d} (strip with notebooks/run.py --strip)", file=sys.stderr)
                failed += 1
            continue
        if a.strip:
            for c in nb.cells:
                if c.cell_type == "code":
                    c.outputs, c.execution_count = [], None
                c.metadata.pop("execution", None)
            nbformat.write(nb, path)
            continue
        start = time.monotonic()
        client = NotebookClient(nb, timeout=a.timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(HERE)}})
        try:
            client.execute()
        except CellExecutionError as e:
            print(f"FAIL {path.name} after {time.monotonic() - start:.1f}s:\n{e}", file=sys.stderr)
            failed += 1
        else:
            print(f"ok   {path.name} {time.monotonic() - start:.1f}s")
        if a.out:
            out = pathlib.Path(a.out)
            out.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, out / path.name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
