package parquet

import (
	"fmt"
	"math"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	pq "github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/schema"
)

// predKind says how a predicate compares with a column's statistics.
type predKind int

const (
	predNone   predKind = iota // never prunes (type without usable ordering)
	predInt                    // signed integer column, integer value
	predFloat                  // compare in float64 (float column, or float value on an int column)
	predString                 // byte-wise (UTF-8 and binary columns)
	predBool
)

// compiledPred is a Predicate resolved against the schema.
type compiledPred struct {
	Predicate
	leaf int
	kind predKind
	i    int64
	f    float64
	s    string
	b    bool
}

// compilePredicates checks every predicate's column and value type and
// converts the value to the column's physical representation.
func compilePredicates(preds []Predicate, full *arrow.Schema, f0 fileInfo) ([]compiledPred, error) {
	out := make([]compiledPred, 0, len(preds))
	for _, p := range preds {
		idx := full.FieldIndices(p.Column)
		if len(idx) == 0 {
			return nil, fmt.Errorf("parquet: predicate column %q not found in file %s (available: %s)", p.Column, f0.path, columnList(full))
		}
		leaf := f0.meta.Schema.ColumnIndexByName(p.Column)
		if leaf < 0 {
			return nil, fmt.Errorf("parquet: predicate column %q in file %s is not a primitive column", p.Column, f0.path)
		}
		cp := compiledPred{Predicate: p, leaf: leaf}
		if v, ok := p.Value.(int); ok {
			cp.Value = int64(v)
		}
		typ := full.Field(idx[0]).Type
		bad := func() error {
			return fmt.Errorf("parquet: predicate on column %q: %T value cannot be compared with %s", p.Column, p.Value, typ)
		}
		switch typ.ID() {
		case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64:
			switch v := cp.Value.(type) {
			case int64:
				cp.kind, cp.i = predInt, v
			case float64:
				cp.kind, cp.f = predFloat, v
			default:
				return nil, bad()
			}
		case arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
			// Unsigned statistics sort differently from their physical
			// signed type; stay conservative and never prune.
			switch cp.Value.(type) {
			case int64, float64:
			default:
				return nil, bad()
			}
		case arrow.FLOAT32, arrow.FLOAT64:
			switch v := cp.Value.(type) {
			case int64:
				cp.kind, cp.f = predFloat, float64(v)
			case float64:
				cp.kind, cp.f = predFloat, v
			default:
				return nil, bad()
			}
			if math.IsNaN(cp.f) {
				cp.kind = predNone
			}
		case arrow.STRING, arrow.BINARY, arrow.LARGE_STRING, arrow.LARGE_BINARY:
			v, ok := cp.Value.(string)
			if !ok {
				return nil, bad()
			}
			cp.kind, cp.s = predString, v
		case arrow.BOOL:
			v, ok := cp.Value.(bool)
			if !ok {
				return nil, bad()
			}
			cp.kind, cp.b = predBool, v
		case arrow.TIMESTAMP:
			v, ok := cp.Value.(time.Time)
			if !ok {
				return nil, bad()
			}
			cp.kind, cp.i = predNone, 0
			if n, ok := timestampIn(v, f0.meta.Schema.Column(leaf)); ok {
				cp.kind, cp.i = predInt, n
			}
		case arrow.DATE32:
			v, ok := cp.Value.(time.Time)
			if !ok {
				return nil, bad()
			}
			u := v.UTC()
			if u.Hour() == 0 && u.Minute() == 0 && u.Second() == 0 && u.Nanosecond() == 0 {
				cp.kind, cp.i = predInt, int64(math.Floor(float64(u.Unix())/86400))
			}
		default:
			// No pruning on other types; any value is accepted.
		}
		out = append(out, cp)
	}
	return out, nil
}

// timestampIn converts t to the unit of a Parquet INT64 timestamp column. ok
// is false when t is not a whole number of units (pruning with a rounded
// value could be wrong) or the column is not an INT64 timestamp.
func timestampIn(t time.Time, col *schema.Column) (int64, bool) {
	lt, ok := col.LogicalType().(schema.TimestampLogicalType)
	if !ok || col.PhysicalType() != pq.Types.Int64 {
		return 0, false
	}
	sec, nsec := t.Unix(), int64(t.Nanosecond())
	var per int64
	switch lt.TimeUnit() {
	case schema.TimeUnitMillis:
		per = 1e6
	case schema.TimeUnitMicros:
		per = 1e3
	case schema.TimeUnitNanos:
		per = 1
	default:
		return 0, false
	}
	if nsec%per != 0 {
		return 0, false
	}
	scale := int64(1e9) / per
	if sec > math.MaxInt64/scale || sec < math.MinInt64/scale {
		return 0, false
	}
	return sec*scale + nsec/per, true
}

// mayMatch reports whether some row of the row group may satisfy every
// predicate, judging by column chunk statistics. It is conservative: missing
// or unusable statistics mean "may match".
func mayMatch(preds []compiledPred, rgm *metadata.RowGroupMetaData) (bool, error) {
	if rgm.NumRows() == 0 {
		return true, nil
	}
	for i := range preds {
		p := &preds[i]
		cc, err := rgm.ColumnChunk(p.leaf)
		if err != nil {
			return false, err
		}
		st, err := cc.Statistics()
		if err != nil || st == nil {
			continue
		}
		// Comparisons never match null: a chunk of nulls only matches nothing.
		if st.HasNullCount() && st.NullCount() >= rgm.NumRows() {
			return false, nil
		}
		if !st.HasMinMax() || p.kind == predNone {
			continue
		}
		if !p.rangeMayMatch(st) {
			return false, nil
		}
	}
	return true, nil
}

// rangeMayMatch compares the predicate with the chunk's [min, max].
func (p *compiledPred) rangeMayMatch(st metadata.TypedStatistics) bool {
	switch p.kind {
	case predInt:
		var lo, hi int64
		switch s := st.(type) {
		case *metadata.Int32Statistics:
			lo, hi = int64(s.Min()), int64(s.Max())
		case *metadata.Int64Statistics:
			lo, hi = s.Min(), s.Max()
		default:
			return true
		}
		return cmpRange(p.Op, lo < p.i, lo <= p.i, hi > p.i, hi >= p.i)
	case predFloat:
		var lo, hi float64
		switch s := st.(type) {
		case *metadata.Int32Statistics:
			lo, hi = float64(s.Min()), float64(s.Max())
		case *metadata.Int64Statistics:
			lo, hi = float64(s.Min()), float64(s.Max())
		case *metadata.Float32Statistics:
			lo, hi = float64(s.Min()), float64(s.Max())
		case *metadata.Float64Statistics:
			lo, hi = s.Min(), s.Max()
		default:
			return true
		}
		if math.IsNaN(lo) || math.IsNaN(hi) {
			return true
		}
		return cmpRange(p.Op, lo < p.f, lo <= p.f, hi > p.f, hi >= p.f)
	case predString:
		s, ok := st.(*metadata.ByteArrayStatistics)
		if !ok {
			return true
		}
		lo, hi := string(s.Min()), string(s.Max())
		return cmpRange(p.Op, lo < p.s, lo <= p.s, hi > p.s, hi >= p.s)
	case predBool:
		s, ok := st.(*metadata.BooleanStatistics)
		if !ok {
			return true
		}
		lo, hi := s.Min(), s.Max()
		// false < true
		return cmpRange(p.Op, !lo && p.b, !lo || p.b, hi && !p.b, hi || !p.b)
	}
	return true
}

// cmpRange decides from min/max versus value v whether `x op v` can hold for
// some x in [min, max]. minLT is min < v, minLE min <= v, maxGT max > v,
// maxGE max >= v.
func cmpRange(op string, minLT, minLE, maxGT, maxGE bool) bool {
	switch op {
	case "=":
		return minLE && maxGE
	case "<":
		return minLT
	case "<=":
		return minLE
	case ">":
		return maxGT
	case ">=":
		return maxGE
	}
	return true
}
