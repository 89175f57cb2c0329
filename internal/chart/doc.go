// Package chart is riffle's one home for pictures: line charts (a metric
// over K, a loss over iterations, a rate over time) and grouped bar charts
// (engines side by side), drawn with gonum.org/v1/plot to PNG.
//
// Every chart is written together with the numbers it shows: Write puts
// NAME.png and NAME.csv side by side in a directory, both made from the same
// values, so a reader (a test, a notebook, DuckDB) can check a picture
// against its data and the data against where it came from. The CSV is in
// long form, one row per point:
//
//	lines: series,x,y
//	bars:  group,series,value
//
// with numbers printed in Go's shortest round-trip form, so ReadLines and
// ReadBars give back exactly the float64 values drawn.
//
// PNGs are small (about 640×400 pixels, best compression) so that the
// README can show committed ones (scripts/plots.sh regenerates them).
// Callers: `riffle eval --plot` (cmd/riffle) and the bench/ programs'
// --plot flag.
package chart
