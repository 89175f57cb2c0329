package text

import (
	"errors"

	"github.com/riffle-dev/riffle/internal/coerce"
)

// jsonRow is the JSONL record decoder (not built yet).
type jsonRow struct{}

func (j *jsonRow) init(cols []Column) {}

func (b *batch) addJSON(r *Reader, s, e int, line int64) error {
	_ = coerce.Str
	return errors.New("jsonl: not implemented")
}
