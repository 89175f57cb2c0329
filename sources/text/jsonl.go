package text

import (
	"fmt"

	"github.com/riffle-dev/riffle/internal/coerce"
	"github.com/riffle-dev/riffle/internal/jsonscan"
)

// jsonRow decodes JSONL records with the Kafka source's scanner
// (internal/jsonscan): members are matched to declared columns by name
// (the last of duplicate keys wins), others are validated and skipped.
type jsonRow struct {
	sc     jsonscan.Scanner
	names  []string
	byName map[string]int
}

func (j *jsonRow) init(cols []Column) {
	j.byName = make(map[string]int, len(cols))
	for i, c := range cols {
		j.names = append(j.names, c.Name)
		j.byName[c.Name] = i
	}
}

// addJSON decodes the record buf[s:e] into one row of cells: every declared
// column starts missing (null) and takes the value of its member.
func (b *batch) addJSON(r *Reader, s, e int, line int64) error {
	j := &b.json
	row := len(b.line)
	for c := range b.cells {
		cl := &b.cells[c]
		cl.off, cl.n = append(cl.off, 0), append(cl.n, -1)
		cl.kind, cl.isInt = append(cl.kind, coerce.Null), append(cl.isInt, false)
	}
	if err := j.scan(b, r.buf[s:e], s, row); err != nil {
		for c := range b.cells {
			cl := &b.cells[c]
			cl.off, cl.n, cl.kind, cl.isInt = cl.off[:row], cl.n[:row], cl.kind[:row], cl.isInt[:row]
		}
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	b.line = append(b.line, line)
	b.span = append(b.span, [2]int32{int32(s), int32(e)})
	return nil
}

func (j *jsonRow) scan(b *batch, data []byte, base, row int) error {
	sc := &j.sc
	if err := sc.Reset(data); err != nil {
		return err
	}
	guess := 0
	for sc.Next() {
		idx := -1
		if guess < len(j.names) && string(sc.Key) == j.names[guess] {
			idx = guess
		} else if i, ok := j.byName[string(sc.Key)]; ok {
			idx = i
		}
		if idx < 0 {
			continue
		}
		guess = idx + 1
		cl := &b.cells[idx]
		cl.kind[row], cl.isInt[row] = sc.Kind, sc.IsInt
		var text []byte
		switch sc.Kind {
		case coerce.Null:
			cl.n[row] = -1
			continue
		case coerce.True:
			text = []byte(coerce.Literal[:4])
		case coerce.False:
			text = []byte(coerce.Literal[4:])
		case coerce.Number, coerce.Str:
			if !sc.ValInBuf {
				cl.off[row], cl.n[row] = int32(base+sc.ValOff), int32(len(sc.Val))
				continue
			}
			text = sc.Val
		default: // object, array: kept for messages only
			text = sc.Val
		}
		o := len(b.arena)
		b.arena = append(b.arena, text...)
		cl.off[row], cl.n[row] = int32(-1-o), int32(len(text))
	}
	return sc.Err
}
