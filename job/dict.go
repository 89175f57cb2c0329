package job

import (
	"github.com/apache/arrow-go/v18/arrow"
)

// dictColumns returns the string columns of schema (a Parquet source's
// projection) that the source may hand over dictionary-encoded
// (parquet.Options.Dictionary): the steps must read them only through
// expressions. Filters keep the columns as they are (their expressions
// evaluate once per dictionary entry, arrowexec/expr); the first step after
// the filters must be a project or an aggregate with a projection in front
// (AggregateSpec.Pre), whose expressions decode what they pass on. Any
// other step, or none (a sink), and nothing is dictionary-encoded.
func dictColumns(steps []Step, schema *arrow.Schema) []string {
	ok := false
	for _, st := range steps {
		if st.Kind == StepFilter {
			continue
		}
		ok = st.Kind == StepProject || st.Kind == StepAggregate && st.Aggregate != nil && st.Aggregate.Pre != nil
		break
	}
	if !ok {
		return nil
	}
	var out []string
	for _, f := range schema.Fields() {
		if f.Type.ID() == arrow.STRING {
			out = append(out, f.Name)
		}
	}
	return out
}
