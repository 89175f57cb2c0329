package kafka

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/internal/jsonscan"
)

// scanAll runs the scanner over data and returns the members (last one wins
// for duplicate keys, like encoding/json into a map) or the error.
func scanAll(data []byte) (map[string]member, error) {
	var sc jsonscan.Scanner
	if err := sc.Reset(data); err != nil {
		return nil, err
	}
	out := map[string]member{}
	for sc.Next() {
		out[string(sc.Key)] = member{sc.Kind, string(sc.Val)}
	}
	if sc.Err != nil {
		return nil, sc.Err
	}
	return out, nil
}

type member struct {
	kind valKind
	val  string
}

// oracle decodes data with encoding/json into the same shape.
func oracle(data []byte) (map[string]member, bool) {
	if !json.Valid(data) {
		return nil, false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		return nil, false // valid JSON but not an object
	}
	out := map[string]member{}
	for k, raw := range m {
		raw = bytes.TrimSpace(raw)
		var mb member
		switch raw[0] {
		case 'n':
			mb.kind = kindNull
		case 't':
			mb.kind = kindTrue
		case 'f':
			mb.kind = kindFalse
		case '"':
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				panic(err)
			}
			mb.kind, mb.val = kindString, s
		case '{':
			mb.kind, mb.val = kindObject, string(raw)
		case '[':
			mb.kind, mb.val = kindArray, string(raw)
		default:
			mb.kind, mb.val = kindNumber, string(raw)
		}
		out[k] = mb
	}
	return out, true
}

func checkAgainstOracle(t *testing.T, data []byte) {
	t.Helper()
	got, err := scanAll(data)
	want, ok := oracle(data)
	switch {
	case ok && err != nil:
		t.Fatalf("scanner rejected %q (encoding/json accepts it): %v", data, err)
	case !ok && err == nil:
		t.Fatalf("scanner accepted %q (encoding/json rejects it): %v", data, got)
	case ok:
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("input %q\nscanner  %v\noracle   %v", data, got, want)
		}
		checkTyped(t, data, want)
	}
}

var stringFields = []Field{{Name: "k0", Type: String}, {Name: "k1", Type: String}, {Name: "k2", Type: String}, {Name: "k3", Type: String}}

// checkTyped decodes data into string fields k0..k3 and compares the
// builders' contents with the oracle's members.
func checkTyped(t *testing.T, data []byte, want map[string]member) {
	t.Helper()
	o := Options{Format: FormatJSON, Fields: stringFields}
	d := newDecoder(o, o.schema(), memory.DefaultAllocator)
	defer d.release()
	err := d.add(&record{value: data}, "t", 0)
	b := d.finish()
	defer b.Release()
	wantErr := false
	for _, f := range stringFields {
		if m, ok := want[f.Name]; ok && (m.kind == kindObject || m.kind == kindArray) {
			wantErr = true
		}
	}
	if wantErr != (err != nil) {
		t.Fatalf("input %q: typed decode error %v, want error %v", data, err, wantErr)
	}
	if err != nil {
		return
	}
	for i, f := range stringFields {
		col := b.Column(i).(*array.String)
		m, ok := want[f.Name]
		var exp string
		switch {
		case !ok || m.kind == kindNull:
			if col.IsValid(0) {
				t.Fatalf("input %q: field %s = %q, want null", data, f.Name, col.Value(0))
			}
			continue
		case m.kind == kindTrue:
			exp = "true"
		case m.kind == kindFalse:
			exp = "false"
		default:
			exp = m.val
		}
		if col.IsNull(0) || col.Value(0) != exp {
			t.Fatalf("input %q: field %s = %q, want %q", data, f.Name, col.Value(0), exp)
		}
	}
}

var pieces = []string{
	`a`, `\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`, `\u00e9`, `\u20AC`, `\ud83d\ude00`, `\ud800`, `\udc00x`,
	`\ud83dz`, "é", "€", "😀", "\xff", "\xc3", "\xe2\x82", " ", "'", "<>&", "\u2028", `\u0000`,
}

func randString(r *rand.Rand) string {
	var b strings.Builder
	b.WriteByte('"')
	for range r.IntN(6) {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	b.WriteByte('"')
	return b.String()
}

func randNumber(r *rand.Rand) string {
	var b strings.Builder
	if r.IntN(3) == 0 {
		b.WriteByte('-')
	}
	switch r.IntN(4) {
	case 0:
		b.WriteByte('0')
	case 1:
		b.WriteString(strconv.FormatInt(r.Int64N(1<<62), 10))
	default:
		b.WriteString(strconv.Itoa(1 + r.IntN(100000)))
	}
	if r.IntN(3) == 0 {
		b.WriteString("." + strconv.Itoa(r.IntN(1000)))
	}
	if r.IntN(4) == 0 {
		b.WriteString([]string{"e", "E", "e+", "e-", "E-"}[r.IntN(5)] + strconv.Itoa(r.IntN(400)))
	}
	return b.String()
}

func randValue(r *rand.Rand, depth int) string {
	switch k := r.IntN(9); {
	case k == 0:
		return "null"
	case k == 1:
		return "true"
	case k == 2:
		return "false"
	case k <= 4:
		return randNumber(r)
	case k <= 6 || depth > 3:
		return randString(r)
	case k == 7:
		return randObject(r, depth+1)
	default:
		var parts []string
		for range r.IntN(4) {
			parts = append(parts, randValue(r, depth+1))
		}
		return "[" + strings.Join(parts, ws(r)+","+ws(r)) + "]"
	}
}

func ws(r *rand.Rand) string {
	return []string{"", "", "", " ", "\n\t", "\r "}[r.IntN(6)]
}

func randObject(r *rand.Rand, depth int) string {
	var parts []string
	for range r.IntN(7) {
		key := randString(r)
		if r.IntN(3) == 0 {
			key = `"k` + strconv.Itoa(r.IntN(4)) + `"` // duplicates
		}
		parts = append(parts, ws(r)+key+ws(r)+":"+ws(r)+randValue(r, depth)+ws(r))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// corrupt breaks a valid document in one random place.
func corrupt(r *rand.Rand, s string) string {
	if len(s) == 0 {
		return s
	}
	i := r.IntN(len(s))
	switch r.IntN(4) {
	case 0:
		return s[:i] + s[i+1:]
	case 1:
		return s[:i]
	case 2:
		return s[:i] + func() string { const c = "{}[]\",:\\ 0e-.tfn"; return string(c[r.IntN(len(c))]) }() + s[i:]
	default:
		return s[:i] + "\x01" + s[i:]
	}
}

func TestScannerAgainstEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		doc := ws(r) + randObject(r, 0) + ws(r)
		checkAgainstOracle(t, []byte(doc))
		checkAgainstOracle(t, []byte(corrupt(r, doc)))
	}
	for _, s := range []string{
		``, ` `, `{`, `}`, `{}`, ` {} `, `{} {}`, `[]`, `"x"`, `1`, `null`, `{"a":}`, `{"a" 1}`, `{"a":1,}`, `{,}`,
		`{"a":01}`, `{"a":-}`, `{"a":1.}`, `{"a":.5}`, `{"a":1e}`, `{"a":+1}`, `{"a":tru}`, `{"a":nul}`, `{"a":"\x"}`,
		`{"a":"\u12"}`, "{\"a\":\"\t\"}", `{"a":[1,]}`, `{"a":{"b":1,}}`, `{"a":[}`, `{a:1}`, `{"a":1}x`, `{"a":"x`,
		`{"\ud800":1}`, `{"a":"\udfff\ud800"}`, `{"":""}`, `{"a":-0}`, `{"a":-0.0e+00}`, `{"a":1E400}`,
		`{"a":[[[[[]]]]],"b":{"c":{"d":[{}]}}}`,
	} {
		checkAgainstOracle(t, []byte(s))
	}
}

func FuzzScanner(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 50 {
		f.Add([]byte(randObject(r, 0)))
	}
	f.Add([]byte(`{"a":"\ud83d\ude00","b":[1,{"c":null}],"d":-1.5e-3}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAgainstOracle(t, data)
		// The typed decoder must never panic, whatever the input.
		d := newDecoder(Options{Format: FormatJSON, Fields: allTypes}, Options{Format: FormatJSON, Fields: allTypes}.schema(), memory.DefaultAllocator)
		defer d.release()
		_ = d.add(&record{value: data}, "t", 0)
		d.finish().Release()
	})
}

var allTypes = []Field{
	{Name: "i", Type: Int64}, {Name: "i32", Type: Int32}, {Name: "f", Type: Float64}, {Name: "s", Type: String},
	{Name: "b", Type: Bool}, {Name: "ts", Type: Timestamp}, {Name: "bin", Type: Binary},
}

// TestCoercions checks every field type against every kind of JSON value.
func TestCoercions(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ts := time.Date(2026, 3, 4, 5, 6, 7, 891_000_000, time.UTC)
	tsStr := "2026-03-04T05:06:07.891Z"
	cases := []struct {
		field Field
		in    string // JSON value
		want  string // ValueStr of the decoded value, or "error"
	}{
		{Field{Type: Int64}, `12`, "12"},
		{Field{Type: Int64}, `"12"`, "12"},
		{Field{Type: Int64}, `" -12 "`, "-12"},
		{Field{Type: Int64}, `-9223372036854775808`, "-9223372036854775808"},
		{Field{Type: Int64}, `9223372036854775808`, "error"},
		{Field{Type: Int64}, `12.0`, "12"},
		{Field{Type: Int64}, `1.2e3`, "1200"},
		{Field{Type: Int64}, `12.5`, "error"},
		{Field{Type: Int64}, `"12.5"`, "error"},
		{Field{Type: Int64}, `true`, "error"},
		{Field{Type: Int64}, `{}`, "error"},
		{Field{Type: Int64}, `null`, "(null)"},
		{Field{Type: Int32}, `2147483647`, "2147483647"},
		{Field{Type: Int32}, `2147483648`, "error"},
		{Field{Type: Float64}, `12`, "12"},
		{Field{Type: Float64}, `-0.5e-3`, "-0.0005"},
		{Field{Type: Float64}, `"2.5"`, "2.5"},
		{Field{Type: Float64}, `123456789012345678901234567890`, "1.2345678901234568e+29"},
		{Field{Type: Float64}, `1e400`, "+Inf"},
		{Field{Type: Float64}, `"x"`, "error"},
		{Field{Type: Float64}, `[1]`, "error"},
		{Field{Type: String}, `"a\nb"`, "a\nb"},
		{Field{Type: String}, `12.50`, "12.50"},
		{Field{Type: String}, `true`, "true"},
		{Field{Type: String}, `[1]`, "error"},
		{Field{Type: Bool}, `true`, "true"},
		{Field{Type: Bool}, `"false"`, "false"},
		{Field{Type: Bool}, `1`, "error"},
		{Field{Type: Timestamp}, `"2026-03-04T05:06:07.891Z"`, tsStr},
		{Field{Type: Timestamp}, `"2026-03-04T06:06:07.891+01:00"`, tsStr},
		{Field{Type: Timestamp}, strconv.FormatInt(ts.UnixMilli(), 10), tsStr},
		{Field{Type: Timestamp}, `"` + strconv.FormatInt(ts.UnixMilli(), 10) + `"`, tsStr},
		{Field{Type: Timestamp}, `"yesterday"`, "error"},
		{Field{Type: Binary}, `"\u00e9"`, "w6k="},
		{Field{Type: Binary}, `1`, "error"},
	}
	for _, c := range cases {
		c.field.Name = "x"
		o := Options{Format: FormatJSON, Fields: []Field{c.field}}
		d := newDecoder(o, o.schema(), mem)
		err := d.add(&record{value: []byte(`{"x":` + c.in + `}`)}, "t", 0)
		b := d.finish()
		got := "error"
		if err == nil {
			got = b.Column(0).ValueStr(0)
		}
		if got != c.want {
			t.Errorf("%s from %s: got %q (err %v), want %q", c.field.Type, c.in, got, err, c.want)
		}
		b.Release()
		d.release()
	}
}
