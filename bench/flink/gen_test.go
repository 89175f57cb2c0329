// Package flink holds the Apache Flink side of the Nexmark comparison (a
// Maven project; see README.md). This Go file only checks that its Java
// generator makes the same events as riffle's sources/nexmark.
package flink

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/riffle-dev/riffle/sources/nexmark"
)

// TestJavaGeneratorMatchesRiffle compiles the Java generator (javac, no
// Flink needed), prints 200,000 events with it and compares them with
// sources/nexmark's for the same seed: every number field, the names,
// cities, states and channels, and the bids' extra length must be equal
// (the Java side draws them with the same hash arithmetic). Strings cut from
// the random pools (e-mail, item names, descriptions, urls, and the extra
// that pads persons and auctions) differ by design, so their lengths are
// compared per column as distributions: the mean length must agree within
// 1% and the shortest and longest within 2 bytes (credit card numbers are
// always 19 bytes on both sides).
func TestJavaGeneratorMatchesRiffle(t *testing.T) {
	javac, err := exec.LookPath("javac")
	if err != nil {
		t.Skip("javac not installed")
	}
	dir := t.TempDir()
	src := filepath.Join("src", "main", "java", "dev", "riffle", "nexmark")
	args := []string{"-d", dir}
	for _, f := range []string{"Gen.java", "Bid.java", "Auction.java", "Person.java", "Dump.java"} {
		args = append(args, filepath.Join(src, f))
	}
	if out, err := exec.Command(javac, args...).CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	const events, seed = 200_000, 7
	out, err := exec.Command("java", "-cp", dir, "dev.riffle.nexmark.Dump", fmt.Sprint(events), fmt.Sprint(seed)).Output()
	if err != nil {
		t.Fatalf("java Dump: %v", err)
	}
	want, wantLens := riffleLines(t, events, seed)
	gotLens := lengths{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	n := 0
	for ; sc.Scan(); n++ {
		if n >= len(want) {
			t.Fatalf("Java printed more than %d events", len(want))
		}
		got := compared(t, sc.Text(), gotLens)
		if got != want[n] {
			t.Fatalf("event %d: Java %q, riffle %q", n, got, want[n])
		}
	}
	if n != len(want) {
		t.Fatalf("Java printed %d events, want %d", n, len(want))
	}
	if len(gotLens) != len(wantLens) {
		t.Fatalf("string columns: Java %d, riffle %d", len(gotLens), len(wantLens))
	}
	for col, w := range wantLens {
		g := gotLens[col]
		if g == nil || g.n != w.n {
			t.Fatalf("%s: Java %v rows, riffle %d", col, g, w.n)
		}
		gm, wm := g.mean(), w.mean()
		if math.Abs(gm-wm) > 0.01*wm || abs(g.min-w.min) > 2 || abs(g.max-w.max) > 2 {
			t.Errorf("%s lengths: Java mean %.2f in [%d, %d], riffle mean %.2f in [%d, %d]", col, gm, g.min, g.max, wm, w.min, w.max)
		}
		t.Logf("%s lengths: Java mean %.2f in [%d, %d], riffle mean %.2f in [%d, %d]", col, gm, g.min, g.max, wm, w.min, w.max)
	}
}

// lengths holds, per "table.column", the distribution of a string
// column's lengths.
type lengths map[string]*lengthStats

type lengthStats struct{ n, sum, min, max int }

func (l lengths) add(col string, n int) {
	s := l[col]
	if s == nil {
		s = &lengthStats{min: n, max: n}
		l[col] = s
	}
	s.n++
	s.sum += n
	s.min, s.max = min(s.min, n), max(s.max, n)
}

func (s *lengthStats) mean() float64 { return float64(s.sum) / float64(s.n) }

func abs(x int) int { return max(x, -x) }

// compared keeps the fields of a Dump line that both generators must agree
// on exactly and adds the string lengths compared as distributions to l.
func compared(t *testing.T, line string, l lengths) string {
	f := strings.Split(line, ",")
	atoi := func(i int) int {
		n, err := strconv.Atoi(f[i])
		if err != nil {
			t.Fatalf("Dump line %q: field %d: %v", line, i, err)
		}
		return n
	}
	switch f[0] {
	case "person": // table, id, name, city, state, date_time | email, card, extra
		l.add("person.email", atoi(6))
		l.add("person.credit_card", atoi(7))
		l.add("person.extra", atoi(8))
		return strings.Join(f[:6], ",")
	case "auction": // ..., initial_bid, reserve, date_time, expires, seller, category | item_name, description, extra
		l.add("auction.item_name", atoi(8))
		l.add("auction.description", atoi(9))
		l.add("auction.extra", atoi(10))
		return strings.Join(f[:8], ",")
	}
	// bids: every field, the extra as its length | url
	l.add("bid.url", atoi(7))
	return strings.Join(f[:7], ",")
}

// riffleLines returns riffle's events in Dump's compared form and the
// lengths of their string columns.
func riffleLines(t *testing.T, events, seed int64) ([]string, lengths) {
	g, err := nexmark.New(nexmark.Options{Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	lines := make([]string, events)
	lens := lengths{}
	for _, tb := range nexmark.Tables {
		rec, err := g.Batch(nil, tb, 0, events)
		if err != nil {
			t.Fatal(err)
		}
		i64 := func(k, i int) int64 {
			switch a := rec.Column(k).(type) {
			case *array.Int64:
				return a.Value(i)
			case *array.Timestamp:
				return int64(a.Value(i))
			}
			t.Fatalf("column %d is %s", k, rec.Column(k).DataType())
			return 0
		}
		str := func(k, i int) string { return rec.Column(k).(*array.String).Value(i) }
		i := 0
		for n := int64(0); n < events; n++ {
			if nexmark.Kind(n) != tb {
				continue
			}
			switch tb {
			case nexmark.Person:
				lines[n] = fmt.Sprintf("person,%d,%s,%s,%s,%d", i64(0, i), str(1, i), str(4, i), str(5, i), i64(6, i))
				lens.add("person.email", len(str(2, i)))
				lens.add("person.credit_card", len(str(3, i)))
				lens.add("person.extra", len(str(7, i)))
			case nexmark.Auction:
				lines[n] = fmt.Sprintf("auction,%d,%d,%d,%d,%d,%d,%d", i64(0, i), i64(3, i), i64(4, i), i64(5, i), i64(6, i), i64(7, i), i64(8, i))
				lens.add("auction.item_name", len(str(1, i)))
				lens.add("auction.description", len(str(2, i)))
				lens.add("auction.extra", len(str(9, i)))
			default:
				lines[n] = fmt.Sprintf("bid,%d,%d,%d,%s,%d,%d", i64(0, i), i64(1, i), i64(2, i), str(3, i), i64(5, i), len(str(6, i)))
				lens.add("bid.url", len(str(4, i)))
			}
			i++
		}
		if int64(i) != rec.NumRows() {
			t.Fatalf("%v: %d rows, counted %d", tb, rec.NumRows(), i)
		}
		rec.Release()
	}
	return lines, lens
}
