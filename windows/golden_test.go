package windows

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/riffle-dev/riffle/arrowexec"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files in testdata/")

// TestGolden runs the step files in testdata/*.txt. A file is a sequence of
// blocks: a command, with input lines for ingest, then "----", then the
// expected output up to a blank line. Commands:
//
//	config kind=tumbling size=10ms [slide=..] [gap=..] [lateness=..] [top=N:column[:ties]] aggs=count(*) AS n|sum(v) AS s
//	ingest              one event per line: key t v u ("null" for a null key or v)
//	advance watermark W
//	finish              end of input (watermark MaxWatermark)
//	stats
//
// Outputs are the emitted rows ("emit ..."), the side output ("late ...")
// and stats. Run with -rewrite to regenerate the expected outputs.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { runGolden(t, f) })
	}
}

type goldenBlock struct {
	cmd    []string // command line and input lines
	want   []string
	actual []string
}

func parseGolden(t *testing.T, path string) []*goldenBlock {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []*goldenBlock
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		l := strings.TrimRight(lines[i], " ")
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		b := &goldenBlock{}
		for ; i < len(lines) && strings.TrimSpace(lines[i]) != "----"; i++ {
			b.cmd = append(b.cmd, strings.TrimSpace(lines[i]))
		}
		if i == len(lines) {
			t.Fatalf("%s: block %q has no ----", path, b.cmd[0])
		}
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != ""; i++ {
			b.want = append(b.want, strings.TrimSpace(lines[i]))
		}
		blocks = append(blocks, b)
	}
	return blocks
}

type goldenRun struct {
	t    *testing.T
	mem  memory.Allocator
	spec *Spec
	op   *operator
	top  arrowexec.Operator
	out  *[]string
	ctx  context.Context
}

// Emit formats the rows of a batch.
func (g *goldenRun) Emit(_ context.Context, b arrow.RecordBatch) error {
	defer b.Release()
	if g.top != nil && b.Schema().HasField("is_update") && !b.Schema().HasField("rank") {
		return g.top.Process(g.ctx, 0, b, topEmitter{g})
	}
	*g.out = append(*g.out, formatRows("emit", b)...)
	return nil
}

type topEmitter struct{ g *goldenRun }

func (e topEmitter) Emit(_ context.Context, b arrow.RecordBatch) error {
	defer b.Release()
	*e.g.out = append(*e.g.out, formatRows("emit", b)...)
	return nil
}

func formatValue(a arrow.Array, i int) string {
	if a.IsNull(i) {
		return "null"
	}
	switch c := a.(type) {
	case *array.Int64:
		return strconv.FormatInt(c.Value(i), 10)
	case *array.Float64:
		return strconv.FormatFloat(c.Value(i), 'g', 6, 64)
	case *array.String:
		return c.Value(i)
	case *array.Boolean:
		return strconv.FormatBool(c.Value(i))
	case *array.Timestamp:
		return strconv.FormatInt(int64(c.Value(i)), 10)
	}
	return a.ValueStr(i)
}

func formatRows(prefix string, b arrow.RecordBatch) []string {
	var out []string
	sc := b.Schema()
	for i := 0; i < int(b.NumRows()); i++ {
		parts := []string{prefix}
		for j, f := range sc.Fields() {
			v := formatValue(b.Column(j), i)
			switch f.Name {
			case "is_update":
				if v == "true" {
					parts = append(parts, "update")
				}
				continue
			case LateWatermark:
				continue
			}
			parts = append(parts, f.Name+"="+v)
		}
		out = append(out, strings.Join(parts, " "))
	}
	return out
}

func runGolden(t *testing.T, path string) {
	blocks := parseGolden(t, path)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	g := &goldenRun{t: t, mem: mem, ctx: context.Background()}
	defer func() {
		if g.op != nil {
			g.op.Close()
		}
		if g.top != nil {
			g.top.Close()
		}
	}()
	for _, b := range blocks {
		b.actual = []string{}
		g.out = &b.actual
		if err := g.exec(b.cmd); err != nil {
			b.actual = append(b.actual, "error: "+err.Error())
		}
	}
	if *rewrite {
		var sb strings.Builder
		data, _ := os.ReadFile(path)
		// Keep the leading comment.
		for _, l := range strings.Split(string(data), "\n") {
			if !strings.HasPrefix(l, "#") {
				break
			}
			sb.WriteString(l + "\n")
		}
		for _, b := range blocks {
			sb.WriteString("\n" + strings.Join(b.cmd, "\n") + "\n----\n")
			for _, l := range b.actual {
				sb.WriteString(l + "\n")
			}
		}
		if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	for _, b := range blocks {
		if strings.Join(b.actual, "\n") != strings.Join(b.want, "\n") {
			t.Errorf("%s: %s:\ngot:\n%s\nwant:\n%s", path, b.cmd[0], strings.Join(b.actual, "\n"), strings.Join(b.want, "\n"))
		}
	}
}

func (g *goldenRun) exec(cmd []string) error {
	f := strings.Fields(cmd[0])
	switch {
	case f[0] == "config":
		return g.config(strings.TrimPrefix(cmd[0], "config"))
	case f[0] == "ingest":
		var evs []ev
		for _, l := range cmd[1:] {
			p := strings.Fields(l)
			if len(p) != 4 {
				return fmt.Errorf("ingest: want key t v u, got %q", l)
			}
			e := ev{k: p[0], kNull: p[0] == "null", vNull: p[2] == "null"}
			var err error
			if e.t, err = strconv.ParseInt(p[1], 10, 64); err != nil {
				return err
			}
			if !e.vNull {
				if e.v, err = strconv.ParseInt(p[2], 10, 64); err != nil {
					return err
				}
			}
			if e.u, err = strconv.ParseInt(p[3], 10, 64); err != nil {
				return err
			}
			evs = append(evs, e)
		}
		bs := toBatches(g.mem, evs, len(evs))
		defer releaseBatches(bs)
		return g.op.Process(g.ctx, 0, bs[0], g)
	case f[0] == "advance" && len(f) == 3 && f[1] == "watermark":
		wm, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return err
		}
		return g.watermark(wm)
	case f[0] == "finish":
		if err := g.watermark(arrowexec.MaxWatermark); err != nil {
			return err
		}
		if err := g.op.Finish(g.ctx, g); err != nil {
			return err
		}
		if g.top != nil {
			return g.top.Finish(g.ctx, topEmitter{g})
		}
		return nil
	case f[0] == "stats":
		st := g.spec.Stats()
		*g.out = append(*g.out, fmt.Sprintf("rows=%d late=%d fired=%d updates=%d purged=%d open=%d timers=%d",
			st.Rows, st.LateRows, st.Fired, st.Updates, st.Purged, g.openWindows(), g.op.timers.len()+g.op.fixedN))
		return nil
	}
	return fmt.Errorf("unknown command %q", cmd[0])
}

func (g *goldenRun) openWindows() int {
	return g.op.openWindows()
}

func (g *goldenRun) watermark(wm int64) error {
	if err := g.op.OnWatermark(g.ctx, wm, g); err != nil {
		return err
	}
	if g.top != nil {
		if wh, ok := g.top.(arrowexec.WatermarkHandler); ok {
			return wh.OnWatermark(g.ctx, wm, topEmitter{g})
		}
	}
	return nil
}

func (g *goldenRun) config(args string) error {
	o := Options{Keys: []string{"k"}, Time: "t"}
	var top *TopN
	for _, kv := range splitConfig(args) {
		k, v, _ := strings.Cut(kv, "=")
		dur := func() time.Duration {
			d, err := time.ParseDuration(v)
			if err != nil {
				g.t.Fatalf("config %s: %v", kv, err)
			}
			return d
		}
		switch k {
		case "kind":
			o.Kind = Kind(v)
		case "size":
			o.Size = dur()
		case "slide":
			o.Slide = dur()
		case "gap":
			o.Gap = dur()
		case "lateness":
			o.AllowedLateness = dur()
		case "top":
			n, by, _ := strings.Cut(v, ":")
			by, ties := strings.CutSuffix(by, ":ties")
			c, err := strconv.Atoi(n)
			if err != nil {
				return err
			}
			top = &TopN{N: c, By: by, WithTies: ties}
		case "aggs":
			for _, s := range strings.Split(v, "|") {
				a, err := ParseAgg(s)
				if err != nil {
					return err
				}
				o.Aggs = append(o.Aggs, a)
			}
		default:
			return fmt.Errorf("unknown config %q", k)
		}
	}
	spec, err := New(o)
	if err != nil {
		return err
	}
	op, err := spec.New(&arrowexec.Task{Node: "w", Parallelism: 1, MaxParallelism: 128, Mem: g.mem, Inputs: []*arrow.Schema{evSchema}})
	if err != nil {
		return err
	}
	g.spec, g.op = spec, op.(*operator)
	g.op.lateHook = func(b arrow.RecordBatch) { *g.out = append(*g.out, formatRows("late", b)...) }
	if err := g.op.Open(g.ctx); err != nil {
		return err
	}
	if top != nil {
		ts, err := NewTopN(TopNOptions{TopN: *top, Keys: o.Keys, AllowedLateness: o.AllowedLateness.Milliseconds()})
		if err != nil {
			return err
		}
		out, _ := spec.Schema([]*arrow.Schema{evSchema})
		if g.top, err = ts.New(&arrowexec.Task{Node: "top", Parallelism: 1, MaxParallelism: 128, Mem: g.mem, Inputs: []*arrow.Schema{out}}); err != nil {
			return err
		}
		if err := g.top.Open(g.ctx); err != nil {
			return err
		}
	}
	return nil
}

// splitConfig splits "a=1 aggs=count(*) AS n|sum(v) AS s" on spaces,
// keeping everything after aggs= together.
func splitConfig(s string) []string {
	s = strings.TrimSpace(s)
	var out []string
	if i := strings.Index(s, "aggs="); i >= 0 {
		out = append(out, strings.TrimSpace(s[i:]))
		s = s[:i]
	}
	return append(strings.Fields(s), out...)
}
