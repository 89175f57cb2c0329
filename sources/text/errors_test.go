package text

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/internal/coerce"
)

var errCols = []Column{{Name: "a", Type: coerce.Int64, Required: true}, {Name: "b", Type: coerce.String}, {Name: "c", Type: coerce.Float64}}

// The body of bad.csv: line numbers count physical lines, so the quoted
// line break on line 3 moves every later row down by one.
const badBody = "a,b,c\n" + // 1
	"1,x,1.5\n" + // 2
	"2,\"two\nlines\",2.5\n" + // 3-4
	"3,y,oops\n" + // 5: c does not convert
	"4,\"z\"q,1\n" + // 6: text after a closing quote
	"5,w\n" + // 7: two fields
	",v,3\n" + // 8: a is required
	"\n" + // 9: blank, skipped
	"6,\"last\",6" // 10, no final line break

func writeBad(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bad.csv")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(badBody, "\n", "\r\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestErrorsNameFileLineColumn(t *testing.T) {
	p := writeBad(t)
	for _, split := range []int64{0, 16} {
		src, err := New(Options{Paths: []string{p}, Columns: errCols, Header: true, SplitSize: split})
		if err != nil {
			t.Fatal(err)
		}
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		_, err = readAll(t, src, 1, mem)
		mem.AssertSize(t, 0)
		want := `csv: file ` + p + `: line 5: column "c": cannot convert string "oops" to float64`
		var te *Error
		if err == nil || err.Error() != want || !errors.As(err, &te) || te.Line != 5 {
			t.Fatalf("split %d: error %v, want %s", split, err, want)
		}
	}
	for _, tc := range []struct{ body, want string }{
		{"a,b,c\n1,\"open,2\n", `line 2: malformed record: unterminated quoted field 2`},
		{"a,b,c\n1,x\"y,2\n", `line 2: malformed record: quote inside unquoted field 2`},
		{"a,b\n1,2\n", `line 1: column "c": not in the header (have a, b)`},
		{"a,b,c\n1,2,3,4\n", `line 2: malformed record: 4 fields, want 3`},
		{"a,b,c\n9999999999999999999,x,1\n", `line 2: column "a": cannot convert string "9999999999999999999" to int64`},
	} {
		f := filepath.Join(t.TempDir(), "e.csv")
		os.WriteFile(f, []byte(tc.body), 0o644)
		src, err := New(Options{Paths: []string{f}, Columns: errCols, Header: true})
		if err == nil {
			_, err = readAll(t, src, 1, memory.DefaultAllocator)
		}
		if want := "csv: file " + f + ": " + tc.want; err == nil || err.Error() != want {
			t.Errorf("%q: error %v, want %s", tc.body, err, want)
		}
	}
}

func TestDeadLetter(t *testing.T) {
	p := writeBad(t)
	dl := filepath.Join(t.TempDir(), "dead.jsonl")
	for _, policy := range []ErrorPolicy{OnErrorDeadLetter, OnErrorSkip} {
		src, err := New(Options{Paths: []string{p}, Columns: errCols, Header: true, OnError: policy, DeadLetterPath: dl, SplitSize: 20})
		if err != nil {
			t.Fatal(err)
		}
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		got, err := readAll(t, src, 2, mem)
		mem.AssertSize(t, 0)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, rows := range got {
			for _, r := range rows {
				ids = append(ids, r[0])
			}
		}
		slices.Sort(ids)
		if !slices.Equal(ids, []string{"1", "2", "6"}) {
			t.Fatalf("%s: rows %v, want ids 1, 2, 6", policy, ids)
		}
		st := src.Stats()
		if policy == OnErrorSkip && (st.Skipped != 4 || st.DeadLettered != 0) {
			t.Fatalf("skip: stats %+v", st)
		}
		if policy == OnErrorDeadLetter && (st.DeadLettered != 4 || st.Skipped != 0) {
			t.Fatalf("dead-letter: stats %+v", st)
		}
	}
	f, err := os.Open(dl)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []deadLetterRecord
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec deadLetterRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, rec)
	}
	slices.SortFunc(lines, func(a, b deadLetterRecord) int { return int(a.Line - b.Line) })
	want := []struct {
		line            int64
		reason, payload string
	}{
		{5, `column "c": cannot convert string "oops" to float64`, "3,y,oops"},
		{6, `malformed record: text after the closing quote of field 2`, `4,"z"q,1`},
		{7, `malformed record: 2 fields, want 3`, "5,w"},
		{8, `column "a": required value is empty`, ",v,3"},
	}
	if len(lines) != len(want) {
		t.Fatalf("dead letters %+v, want %d", lines, len(want))
	}
	for i, w := range want {
		l := lines[i]
		if l.File != p || l.Line != w.line || l.Reason != w.reason || l.Payload == nil || *l.Payload != w.payload {
			t.Errorf("dead letter %d = %+v (payload %q), want %+v", i, l, *l.Payload, w)
		}
	}
}
