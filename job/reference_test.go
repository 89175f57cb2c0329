package job

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/doc/comment"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The job-file reference, docs/JOBS.md, is generated from the code: every
// key of every block is a yaml tag of the struct the block decodes into,
// described by that field's doc comment; the step kinds are the StepKind
// constants with their doc comments and the blocks stepBlocks names; the
// expression language, the aggregate functions, the window output columns
// and the output rules are sections of those packages' documentation.
// TestJobsReference fails when docs/JOBS.md differs from what the code
// says (go test ./job -run TestJobsReference -rewrite regenerates it) or
// when a key has no description.

const referencePath = "../docs/JOBS.md"

// referenceSections are the package documentation sections the reference
// carries after the blocks: package directory, section headings, the
// reference's title for them.
var referenceSections = []struct {
	dir, title string
	headings   []string
}{
	{"../arrowexec/expr", "Expressions", []string{"Grammar", "Functions", "Types", "NULL semantics"}},
	{"../arrowexec/agg", "Aggregate functions", []string{"Contract"}},
	{"../windows", "Window steps: output columns, firing and late rows", []string{"Contract", "Firing, lateness and late data"}},
	{"../sinks", "Outputs: files, atomic publication, exactly once", []string{"File sink", "Atomic output", "Exactly-once output (CommitOnCheckpoint)", "Published output never changes", "Text encodings"}},
}

// refGen builds the reference from the parsed job package.
type refGen struct {
	types   map[string]*ast.TypeSpec // job's type declarations by name
	typeDoc map[string]string        // their doc comments
	consts  map[string]string        // doc comments of constants by name
	out     bytes.Buffer
	done    map[string]string // type name -> the block path it was documented under
	queue   []pending
	missing []string // keys without a description
}

// pending is a block still to document.
type pending struct {
	path string
	typ  string          // a job type name, or ""
	st   *ast.StructType // an anonymous struct, when typ is ""
	doc  string
}

func parseJobPackage(t *testing.T) *refGen {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	g := &refGen{types: map[string]*ast.TypeSpec{}, typeDoc: map[string]string{}, consts: map[string]string{}, done: map[string]string{}}
	for _, f := range pkgs["job"].Files {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, s := range gd.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					g.types[s.Name.Name] = s
					doc := s.Doc
					if doc == nil && len(gd.Specs) == 1 {
						doc = gd.Doc
					}
					g.typeDoc[s.Name.Name] = doc.Text()
				case *ast.ValueSpec:
					for _, n := range s.Names {
						g.consts[n.Name] = s.Doc.Text() + s.Comment.Text()
					}
				}
			}
		}
	}
	return g
}

// typeName returns the job type an expression names through pointers,
// slices and maps ("" for others), and whether it is a list.
func typeName(e ast.Expr) (name string, list bool) {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.ArrayType:
			e, list = x.Elt, true
		case *ast.MapType:
			e = x.Value
		case *ast.Ident:
			return x.Name, list
		default:
			return "", list
		}
	}
}

// typeWord names a field's type in job-file words.
func typeWord(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.StarExpr:
		return typeWord(x.X)
	case *ast.ArrayType:
		return "list of " + plural(typeWord(x.Elt))
	case *ast.MapType:
		return "mapping"
	case *ast.SelectorExpr:
		switch fmt.Sprintf("%s.%s", x.X, x.Sel) {
		case "time.Duration":
			return "duration"
		case "time.Time":
			return "timestamp"
		case "yaml.Node":
			return "block"
		}
		return x.Sel.Name
	case *ast.StructType:
		return "block"
	case *ast.Ident:
		switch {
		case x.Name == "string":
			return "string"
		case x.Name == "bool":
			return "bool"
		case strings.HasPrefix(x.Name, "int") || strings.HasPrefix(x.Name, "uint"):
			return "integer"
		case strings.HasPrefix(x.Name, "float"):
			return "number"
		}
		return "block"
	}
	return "value"
}

func plural(w string) string {
	switch w {
	case "string", "integer", "number", "duration", "timestamp", "block":
		return w + "s"
	}
	return w
}

// oneLine joins a doc comment's lines.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// block documents one struct: a table of its keys, and queues the blocks
// its fields lead to.
func (g *refGen) block(p pending) {
	st := p.st
	if st == nil {
		ts := g.types[p.typ]
		st = ts.Type.(*ast.StructType)
	}
	fmt.Fprintf(&g.out, "### `%s`\n\n", p.path)
	if d := strings.TrimSpace(p.doc); d != "" {
		g.out.WriteString(markdown(d, 4))
		g.out.WriteString("\n")
	}
	g.out.WriteString("| key | type | description |\n|---|---|---|\n")
	for _, f := range st.Fields.List {
		if f.Tag == nil || len(f.Names) == 0 {
			continue
		}
		tag, _ := strconv.Unquote(f.Tag.Value)
		key := strings.Split(reflect.StructTag(tag).Get("yaml"), ",")[0]
		if key == "" || key == "-" {
			continue
		}
		desc := oneLine(f.Doc.Text() + " " + f.Comment.Text())
		if desc == "" {
			g.missing = append(g.missing, p.path+"."+key)
		}
		word := typeWord(f.Type)
		child := p.path + "." + key
		if p.typ == "rawSpec" {
			child = key
		}
		if ref := reflect.StructTag(tag).Get("ref"); ref != "" {
			// A block decoded by hand (a yaml.Node field): ref names its type.
			word = "block"
			if _, list := typeName(f.Type); list {
				word = "list of blocks"
			}
			if ref == "Step" {
				word = "list of steps (Steps below)"
			} else if _, ok := g.types[ref]; ok {
				word += ": " + g.see(child, ref)
			} else {
				word += ": " + ref
			}
		} else if name, _ := typeName(f.Type); g.types[name] != nil {
			if _, isStruct := g.types[name].Type.(*ast.StructType); isStruct {
				word = strings.Replace(word, "block", "block", 1) + ": " + g.see(child, name)
			}
		} else if s, ok := structOf(f.Type); ok {
			g.queue = append(g.queue, pending{path: child, st: s})
			word += ": `" + child + "`"
		}
		fmt.Fprintf(&g.out, "| `%s` | %s | %s |\n", key, word, strings.ReplaceAll(desc, "|", "\\|"))
	}
	g.out.WriteString("\n")
}

// structOf returns the anonymous struct a field's type is (through a
// pointer or slice).
func structOf(e ast.Expr) (*ast.StructType, bool) {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.ArrayType:
			e = x.Elt
		case *ast.StructType:
			return x, true
		default:
			return nil, false
		}
	}
}

// see queues type name's block under path unless it was queued already,
// and returns how a table names it.
func (g *refGen) see(path, name string) string {
	if first, ok := g.done[name]; ok {
		return "as `" + first + "`"
	}
	g.done[name] = path
	g.queue = append(g.queue, pending{path: path, typ: name, doc: g.typeDoc[name]})
	return "`" + path + "`"
}

// drain documents the queued blocks, depth first in key order.
func (g *refGen) drain() {
	for len(g.queue) > 0 {
		p := g.queue[0]
		g.queue = g.queue[1:]
		before := g.queue
		g.queue = nil
		g.block(p)
		g.queue = append(g.queue, before...)
	}
}

// markdown renders a Go doc comment as Markdown, headings at level.
func markdown(text string, level int) string {
	var p comment.Parser
	d := p.Parse(text)
	pr := comment.Printer{HeadingLevel: level, DocLinkBaseURL: "https://pkg.go.dev"}
	return stripAnchors(string(pr.Markdown(d)))
}

// headingAnchor is the {#hdr-...} go/doc/comment appends to headings,
// which GitHub's Markdown shows as text.
var headingAnchor = regexp.MustCompile(` \{#hdr-[^}]*\}`)

func stripAnchors(md string) string { return headingAnchor.ReplaceAllString(md, "") }

// packageSections returns the named sections of a package's doc comment.
func packageSections(t *testing.T, dir string, headings []string) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filepath.Join(dir, "doc.go"), nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	var p comment.Parser
	d := p.Parse(f.Doc.Text())
	out := map[string]string{}
	var cur string
	var blocks []comment.Block
	flush := func() {
		if cur != "" {
			pr := comment.Printer{HeadingLevel: 4, DocLinkBaseURL: "https://pkg.go.dev"}
			out[cur] = stripAnchors(string(pr.Markdown(&comment.Doc{Content: blocks, Links: d.Links})))
		}
	}
	for _, b := range d.Content {
		if h, ok := b.(*comment.Heading); ok {
			flush()
			cur, blocks = "", nil
			var sb strings.Builder
			for _, t := range h.Text {
				if p, ok := t.(comment.Plain); ok {
					sb.WriteString(string(p))
				}
			}
			for _, want := range headings {
				if sb.String() == want {
					cur = want
				}
			}
			continue
		}
		if cur != "" {
			blocks = append(blocks, b)
		}
	}
	flush()
	for _, h := range headings {
		if out[h] == "" {
			t.Errorf("%s/doc.go has no section %q for the job-file reference", dir, h)
		}
	}
	return out
}

func generateReference(t *testing.T) (string, []string) {
	g := parseJobPackage(t)
	g.out.WriteString("# Job file reference\n\n")
	g.out.WriteString("Generated from the code by `go test ./job -run TestJobsReference -rewrite` (job/reference_test.go): " +
		"the keys are the yaml tags of the structs each block decodes into, described by their doc comments, " +
		"and the later sections are the documentation of the packages that implement them. Do not edit by hand; " +
		"a test fails when this file and the code disagree. Durations are Go durations (`500ms`, `30s`, `5m`, `1h`); " +
		"timestamps are RFC 3339 (`2024-01-01T00:00:00Z`). Unknown keys are errors that name the nearest key.\n\n")

	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "doc.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	g.out.WriteString("## Overview\n\n")
	g.out.WriteString(markdown(f.Doc.Text(), 3))
	g.out.WriteString("\n## Blocks\n\n")

	// The top level, then everything it leads to; the step kinds between
	// the sources' blocks and the sinks' as a job file reads.
	g.done["rawSpec"] = "(top level)"
	g.block(pending{path: "(top level)", typ: "rawSpec", doc: "The keys of a job file."})
	g.drain()

	g.out.WriteString("## Steps\n\n")
	g.out.WriteString("Each item of steps: is a mapping with one of the keys below (the step's kind), " +
		"and in a DAG job name: and inputs: beside it.\n\n")
	g.block(pending{path: "steps[]", typ: "Step", doc: "The keys every step may have beside its kind's key."})
	for _, sb := range stepBlocks {
		doc := g.consts["Step"+strings.ToUpper(string(sb.kind[:1]))+string(sb.kind[1:])]
		if doc == "" {
			g.missing = append(g.missing, "step "+string(sb.kind))
		}
		if sb.block == nil {
			fmt.Fprintf(&g.out, "### `%s`\n\n%s\n", sb.kind, markdown(doc, 4))
			continue
		}
		name := reflect.TypeOf(sb.block).Name()
		g.done[name] = string(sb.kind)
		g.block(pending{path: string(sb.kind), typ: name, doc: doc})
		g.drain()
	}
	for _, s := range referenceSections {
		secs := packageSections(t, s.dir, s.headings)
		fmt.Fprintf(&g.out, "## %s\n\n", s.title)
		fmt.Fprintf(&g.out, "From the documentation of package `%s`.\n\n", strings.TrimPrefix(s.dir, "../"))
		for _, h := range s.headings {
			fmt.Fprintf(&g.out, "### %s\n\n%s\n", h, secs[h])
		}
	}
	sort.Strings(g.missing)
	return strings.TrimRight(g.out.String(), "\n") + "\n", g.missing
}

// TestJobsReference: docs/JOBS.md is what the code says, and every key of
// every block is described.
func TestJobsReference(t *testing.T) {
	got, missing := generateReference(t)
	if len(missing) > 0 {
		t.Errorf("keys without a doc comment (the reference needs one for each):\n  %s", strings.Join(missing, "\n  "))
	}
	if fl := flag.Lookup("rewrite"); fl != nil && fl.Value.String() == "true" {
		if err := os.WriteFile(referencePath, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(referencePath)
	if err != nil {
		t.Fatalf("%v (run go test ./job -run TestJobsReference -rewrite)", err)
	}
	if string(want) != got {
		t.Errorf("docs/JOBS.md is out of date with the code: run go test ./job -run TestJobsReference -rewrite and review the diff")
	}
}
