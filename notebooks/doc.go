// Package notebooks holds riffle's Jupyter notebooks and the Go test that
// runs them. Each notebook (*.ipynb beside this file) drives the riffle
// binary on generated data and reads its outputs with pyarrow, pandas,
// DuckDB and matplotlib, asserting its key facts in cells (an output equal
// to DuckDB's recomputation, recommendations consistent with the exported
// embeddings), so a notebook is a test as well as a walkthrough:
//
//	01-backfill      a backfill over generated data and its outputs
//	02-continuous    a continuous job against the embedded broker, followed
//	                 through /status and /metrics, stopped with SIGINT
//	03-recommend     training, exporting and inspecting recommendations
//	04-eval          riffle eval against the baselines
//
// TestNotebooks builds riffle and executes every notebook headless with
// run.py (nbclient, the Python environment of scripts/python-env.sh),
// failing on any error; TestNotebooksStripped fails when a committed
// notebook holds outputs (run.py --strip removes them).
package notebooks
