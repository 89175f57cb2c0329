package text

import (
	"encoding/csv"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// parseDoc splits a whole document into records with recordEnd and
// splitCSV, as a reader does (blank lines skipped); ok is false when a
// record is malformed.
func parseDoc(doc []byte) (recs [][]string, ok bool) {
	for pos := 0; pos < len(doc); {
		nl, _, found := recordEnd(doc, pos, true)
		e := trimCR(doc, pos, nl)
		if e > pos {
			fields, arena, err := splitCSV(doc, pos, e, ',', nil, nil)
			if err != nil {
				return nil, false
			}
			rec := make([]string, len(fields))
			for i, f := range fields {
				rec[i] = string(fieldBytes(doc, arena, f))
			}
			recs = append(recs, rec)
		}
		if !found {
			break
		}
		pos = nl + 1
	}
	return recs, true
}

// checkAgainstEncodingCSV compares the records of doc with encoding/csv's:
// both accept it with the same records, or both reject it.
func checkAgainstEncodingCSV(t *testing.T, doc string) {
	t.Helper()
	if strings.Contains(doc, "\r") {
		return // encoding/csv rewrites \r\n inside quotes to \n; riffle keeps bytes as they are
	}
	r := csv.NewReader(strings.NewReader(doc))
	r.FieldsPerRecord = -1
	want, err := r.ReadAll()
	got, ok := parseDoc([]byte(doc))
	if (err == nil) != ok {
		t.Fatalf("%q: encoding/csv error %v, riffle ok %v (%q)", doc, err, ok, got)
	}
	if ok && !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("%q:\n riffle       %q\n encoding/csv %q", doc, got, want)
	}
}

func TestRecordsAgainstEncodingCSV(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	alphabet := []string{"a", "b", ",", `"`, `""`, "\n", "x y", "é"}
	for range 50000 {
		var b strings.Builder
		for j := rng.IntN(12); j >= 0; j-- {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		checkAgainstEncodingCSV(t, b.String())
	}
}

func FuzzRecords(f *testing.F) {
	for _, s := range []string{"a,b\n1,2\n", `"a""b",c` + "\n", "\"x\ny\",2", ",,\n", "a\"b\n", "\"a\"b\n", "\"open\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		checkAgainstEncodingCSV(t, doc)
	})
}
