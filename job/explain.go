package job

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/sources/parquet"
)

// Explain writes the plan as text: the source and what was pushed into it
// (columns read, row-group predicates, row groups pruned), then every node
// of the graph in topological order with its parallelism, its inputs and
// how each is exchanged (forward, rebalance, broadcast, hash by keys),
// whether it is chained to its input (arrowexec.Node.Chained), and its
// output columns, then the chains of more than one node. `riffle explain`
// prints it.
func (p *Plan) Explain(w io.Writer) error {
	ew := &errWriter{w: w}
	kind := "unbounded"
	if p.Bounded {
		kind = "bounded"
	}
	ew.printf("job %q (%s), %s\n", p.Spec.Name, p.Spec.File, kind)
	switch {
	case p.Parquet != nil:
		files, groups, pruned, rows, bytes := p.Parquet.Stats()
		ew.printf("source: parquet, %d files, %d row groups, %d rows, %d bytes, decoder %s\n", files, groups, rows, bytes, p.Parquet.Decoder())
		full, read := p.Parquet.FileSchema(), p.Parquet.Schema()
		if read.NumFields() < full.NumFields() {
			ew.printf("  pushdown: reads %d of %d columns: %s\n", read.NumFields(), full.NumFields(), names(read.Fields()))
		} else {
			ew.printf("  pushdown: reads every column\n")
		}
		_, preds := pushdown(p.Spec.Steps)
		preds = slices.DeleteFunc(preds, func(pr parquet.Predicate) bool { return !full.HasField(pr.Column) })
		if len(preds) > 0 {
			var ps []string
			for _, pr := range preds {
				ps = append(ps, fmt.Sprintf("%s %s %v", pr.Column, pr.Op, pr.Value))
			}
			ew.printf("  pushdown: row groups skipped by %s: %d of %d pruned\n", strings.Join(ps, " AND "), pruned, groups)
		}
	case p.Kafka != nil:
		parts := p.Kafka.Partitions()
		ew.printf("source: kafka, %d partitions\n", len(parts))
	case p.Text != nil && p.Spec.Source.CSV != nil:
		ew.printf("source: csv files\n")
	case p.Text != nil:
		ew.printf("source: jsonl files\n")
	case p.Hybrid != nil:
		ew.printf("source: hybrid (Parquet history, then Kafka)\n")
	}
	ew.printf("graph (max parallelism %d):\n", p.Graph.MaxParallelism())
	width := 0
	for _, n := range p.Graph.Nodes() {
		width = max(width, len(n.Name()))
	}
	for _, n := range p.Graph.Nodes() {
		var ins []string
		for _, in := range n.Inputs() {
			e := in.Kind.String()
			if in.Kind == arrowexec.Hash {
				e += " by " + strings.Join(in.Keys, ", ")
			}
			ins = append(ins, fmt.Sprintf("%s (%s)", in.From.Name(), e))
		}
		from := "source"
		if len(ins) > 0 {
			from = "<- " + strings.Join(ins, ", ")
		}
		if n.Chained() {
			from += "  chained"
		}
		ew.printf("  %-*s  parallelism %d  %s\n", width, n.Name(), n.Parallelism(), from)
		if s := n.Schema(); s != nil {
			var cols []string
			for _, f := range s.Fields() {
				cols = append(cols, f.Name+" "+f.Type.String())
			}
			ew.printf("  %-*s  -> %s\n", width, "", strings.Join(cols, ", "))
		}
	}
	// Chains: a node chained to its input continues its input's chain.
	chains := map[string][]string{}
	var heads []string
	head := map[string]string{}
	for _, n := range p.Graph.Nodes() {
		h := n.Name()
		if n.Chained() {
			h = head[n.Inputs()[0].From.Name()]
		} else {
			heads = append(heads, h)
		}
		head[n.Name()] = h
		chains[h] = append(chains[h], n.Name())
	}
	for _, h := range heads {
		if c := chains[h]; len(c) > 1 {
			ew.printf("chain (one goroutine per subtask): %s\n", strings.Join(c, " -> "))
		}
	}
	return ew.err
}

func names(fs []arrow.Field) string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Name)
	}
	return strings.Join(out, ", ")
}

// errWriter keeps the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
