// Package flink holds the Apache Flink side of the Nexmark comparison (a
// Maven project; see README.md). This Go file only checks that its Java
// generator makes the same events as riffle's sources/nexmark.
package flink

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
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
// the random pools (e-mail, item names, descriptions, and the extra that pads
// them) differ by design and are not compared.
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
	want := riffleLines(t, events, seed)
	sc := bufio.NewScanner(bytes.NewReader(out))
	n := 0
	for ; sc.Scan(); n++ {
		if n >= len(want) {
			t.Fatalf("Java printed more than %d events", len(want))
		}
		got := compared(sc.Text())
		if got != want[n] {
			t.Fatalf("event %d: Java %q, riffle %q", n, got, want[n])
		}
	}
	if n != len(want) {
		t.Fatalf("Java printed %d events, want %d", n, len(want))
	}
}

// compared keeps the fields of a Dump line that both generators must agree on.
func compared(line string) string {
	f := strings.Split(line, ",")
	switch f[0] {
	case "person": // table, id, name, city, state, date_time
		return strings.Join(f[:6], ",")
	case "auction": // ..., initial_bid, reserve, date_time, expires, seller, category
		return strings.Join(f[:8], ",")
	}
	return line // bids: every field, the extra as its length
}

func riffleLines(t *testing.T, events, seed int64) []string {
	g, err := nexmark.New(nexmark.Options{Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	lines := make([]string, events)
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
			case nexmark.Auction:
				lines[n] = fmt.Sprintf("auction,%d,%d,%d,%d,%d,%d,%d", i64(0, i), i64(3, i), i64(4, i), i64(5, i), i64(6, i), i64(7, i), i64(8, i))
			default:
				lines[n] = fmt.Sprintf("bid,%d,%d,%d,%s,%d,%d", i64(0, i), i64(1, i), i64(2, i), str(3, i), i64(5, i), len(str(6, i)))
			}
			i++
		}
		if int64(i) != rec.NumRows() {
			t.Fatalf("%v: %d rows, counted %d", tb, rec.NumRows(), i)
		}
		rec.Release()
	}
	return lines
}
