package job

import (
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
)

// dictColumns returns the string columns of schema (a Parquet source's
// projection) that the source may hand over dictionary-encoded
// (parquet.Options.Dictionary): those the steps read only through
// expressions. Filters keep every column as it is (their expressions
// evaluate once per dictionary entry, arrowexec/expr); then a project, or
// an aggregate with a projection in front (AggregateSpec.Pre), decodes what
// it passes on, and an aggregate without one drops the columns it does not
// read. Any other step, or none (a sink), takes its columns as they are.
func dictColumns(steps []Step, schema *arrow.Schema) []string {
	var out []string
	for _, f := range schema.Fields() {
		if f.Type.ID() == arrow.STRING && readByExpressions(steps, f.Name) {
			out = append(out, f.Name)
		}
	}
	return out
}

// readByExpressions reports whether the steps reach column col only
// through expressions (dictColumns).
func readByExpressions(steps []Step, col string) bool {
	for _, st := range steps {
		switch {
		case st.Kind == StepFilter:
			continue
		case st.Kind == StepProject:
			return true
		case st.Kind == StepAggregate && st.Aggregate != nil:
			a := st.Aggregate
			if a.Pre != nil {
				return true
			}
			if slices.Contains(a.GroupBy, col) {
				return false
			}
			for _, g := range a.Aggs {
				if g.Column == col {
					return false
				}
			}
			return true
		}
		return false
	}
	return false
}
