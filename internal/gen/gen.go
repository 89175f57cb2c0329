package gen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Schema is the schema of generated data.
var Schema = arrow.NewSchema([]arrow.Field{
	{Name: "user_id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "item_id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "event_type", Type: arrow.BinaryTypes.String},
	{Name: "weight", Type: arrow.PrimitiveTypes.Float64},
	{Name: "event_time", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
}, nil)

// EventTypes are the values of event_type, in funnel order.
var EventTypes = [4]string{"view", "click", "cart", "purchase"}

// Defaults of Options.
var (
	DefaultRows         int64 = 1_000_000
	DefaultUsers        int64 = 100_000
	DefaultItems        int64 = 20_000
	DefaultStart              = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	DefaultSpan               = 7 * 24 * time.Hour
	DefaultDisorder           = 5 * time.Second
	DefaultZipfS              = 1.1
	DefaultUserZipfS          = 0.8
	DefaultDiurnal            = 0.5
	DefaultRowGroupRows       = 1 << 20
	// DefaultEventMix: most events are views; about 2% are purchases.
	DefaultEventMix = [4]float64{0.80, 0.14, 0.04, 0.02}
	DefaultWeights  = [4]float64{1, 2, 3, 5}
)

// NoDisorder as Options.Disorder makes event times non-decreasing.
const NoDisorder time.Duration = -1

// Options configure the generator. The zero value of every field selects its
// default.
type Options struct {
	// Rows to generate; default 1M. Tested from 1,000 to 100M.
	Rows int64
	// Users and Items are the numbers of distinct ids: user_id is in
	// [0, Users), item_id in [0, Items). Defaults 100,000 and 20,000.
	Users, Items int64
	// Seed selects the data; 0 is a seed like any other.
	Seed int64
	// Start and Span: arrival times cover [Start, Start+Span). Defaults
	// 2025-01-01T00:00:00Z and 7 days.
	Start time.Time
	Span  time.Duration
	// Disorder is the maximum out-of-orderness of event_time: for rows
	// i < j, event_time[j] >= event_time[i] - Disorder. Default 5s;
	// NoDisorder for none.
	Disorder time.Duration
	// ZipfS is the Zipf exponent of item popularity (P(rank k) ~ k^-s),
	// default 1.1; UserZipfS that of user activity, default 0.8. Any s > 0.
	ZipfS, UserZipfS float64
	// Diurnal is the amplitude in [0, 1) of the daily cycle of the event
	// rate (peak at 20:00 UTC); default 0.5, negative for a flat rate.
	Diurnal float64
	// EventMix are the proportions of view, click, cart, purchase; default
	// 80/14/4/2 %. Weights are the weight of each event type; default
	// 1, 2, 3, 5.
	EventMix, Weights [4]float64
	// RowGroupRows is the size of a chunk and of a Parquet row group;
	// default 1Mi.
	RowGroupRows int
	// Parallelism is the number of generating goroutines; default
	// GOMAXPROCS. It does not change the output.
	Parallelism int
	// Mem allocates the Arrow buffers; default memory.DefaultAllocator.
	Mem memory.Allocator

	// LatentFactors > 0 draws each event's item from a planted low-rank
	// preference model of that rank instead of from popularity alone (see
	// doc.go and Planted); 0 (default) is off. Users·LatentFactors and
	// Items·LatentFactors are at most 2^26.
	LatentFactors int
	// LatentNoise is the share of events whose item is uniform over all
	// items, default 0.05; LatentPopularity the share drawn from Zipf
	// popularity alone, default 0.2. Negative means 0; they sum to < 1.
	LatentNoise, LatentPopularity float64
	// LatentConcentration is the parameter of the symmetric Dirichlet
	// the user and item vectors are drawn from, default 0.1: small values
	// make users and items belong to few topics.
	LatentConcentration float64
}

// EnsureDefaults returns a copy of o with every unset field set to its default.
func (o Options) EnsureDefaults() Options {
	if o.Rows == 0 {
		o.Rows = DefaultRows
	}
	if o.Users == 0 {
		o.Users = DefaultUsers
	}
	if o.Items == 0 {
		o.Items = DefaultItems
	}
	if o.Start.IsZero() {
		o.Start = DefaultStart
	}
	if o.Span == 0 {
		o.Span = DefaultSpan
	}
	switch o.Disorder {
	case 0:
		o.Disorder = DefaultDisorder
	case NoDisorder:
		o.Disorder = 0
	}
	if o.ZipfS == 0 {
		o.ZipfS = DefaultZipfS
	}
	if o.UserZipfS == 0 {
		o.UserZipfS = DefaultUserZipfS
	}
	switch {
	case o.Diurnal == 0:
		o.Diurnal = DefaultDiurnal
	case o.Diurnal < 0:
		o.Diurnal = 0
	}
	if o.EventMix == ([4]float64{}) {
		o.EventMix = DefaultEventMix
	}
	if o.Weights == ([4]float64{}) {
		o.Weights = DefaultWeights
	}
	if o.RowGroupRows == 0 {
		o.RowGroupRows = DefaultRowGroupRows
	}
	if o.Parallelism == 0 {
		o.Parallelism = runtime.GOMAXPROCS(0)
	}
	if o.Mem == nil {
		o.Mem = memory.DefaultAllocator
	}
	if o.LatentFactors > 0 {
		switch {
		case o.LatentNoise == 0:
			o.LatentNoise = DefaultLatentNoise
		case o.LatentNoise < 0:
			o.LatentNoise = 0
		}
		switch {
		case o.LatentPopularity == 0:
			o.LatentPopularity = DefaultLatentPopularity
		case o.LatentPopularity < 0:
			o.LatentPopularity = 0
		}
		if o.LatentConcentration == 0 {
			o.LatentConcentration = DefaultLatentConcentration
		}
	}
	return o
}

// Validate reports invalid fields of o, which has its defaults applied.
func (o Options) Validate() error {
	var errs []error
	if o.Rows < 1 {
		errs = append(errs, fmt.Errorf("Rows %d must be positive", o.Rows))
	}
	if o.Users < 1 || o.Items < 1 {
		errs = append(errs, fmt.Errorf("Users %d and Items %d must be positive", o.Users, o.Items))
	}
	if o.Span <= 0 || o.Span/time.Millisecond < 1 {
		errs = append(errs, fmt.Errorf("Span %v must be at least 1ms", o.Span))
	}
	if o.Disorder < 0 {
		errs = append(errs, fmt.Errorf("Disorder %v must not be negative (use NoDisorder)", o.Disorder))
	}
	if !(o.ZipfS > 0) || !(o.UserZipfS > 0) || math.IsInf(o.ZipfS, 0) || math.IsInf(o.UserZipfS, 0) {
		errs = append(errs, fmt.Errorf("ZipfS %v and UserZipfS %v must be positive", o.ZipfS, o.UserZipfS))
	}
	if !(o.Diurnal >= 0 && o.Diurnal < 1) {
		errs = append(errs, fmt.Errorf("Diurnal %v must be in [0, 1)", o.Diurnal))
	}
	var sum float64
	for _, p := range o.EventMix {
		if !(p >= 0) || math.IsInf(p, 0) {
			errs = append(errs, fmt.Errorf("EventMix %v: proportions must be finite and non-negative", o.EventMix))
			break
		}
		sum += p
	}
	if !(sum > 0) {
		errs = append(errs, fmt.Errorf("EventMix %v sums to %v", o.EventMix, sum))
	}
	if o.RowGroupRows < 1 {
		errs = append(errs, fmt.Errorf("RowGroupRows %d must be positive", o.RowGroupRows))
	}
	if o.Parallelism < 1 {
		errs = append(errs, fmt.Errorf("Parallelism %d must be positive", o.Parallelism))
	}
	if o.LatentFactors < 0 {
		errs = append(errs, fmt.Errorf("LatentFactors %d must not be negative", o.LatentFactors))
	}
	if o.LatentFactors > 0 {
		if o.Users > maxLatentCells/int64(o.LatentFactors) || o.Items > maxLatentCells/int64(o.LatentFactors) {
			errs = append(errs, fmt.Errorf("LatentFactors %d with %d users and %d items: at most %d vector entries each", o.LatentFactors, o.Users, o.Items, maxLatentCells))
		}
		if !(o.LatentNoise >= 0) || !(o.LatentPopularity >= 0) || !(o.LatentNoise+o.LatentPopularity < 1) {
			errs = append(errs, fmt.Errorf("LatentNoise %v and LatentPopularity %v must be non-negative with a sum below 1", o.LatentNoise, o.LatentPopularity))
		}
		if !(o.LatentConcentration > 0) || math.IsInf(o.LatentConcentration, 0) {
			errs = append(errs, fmt.Errorf("LatentConcentration %v must be positive", o.LatentConcentration))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("gen: invalid Options: %w", err)
	}
	return nil
}

// Generator produces the chunks of one data set. It is safe for concurrent
// use.
type Generator struct {
	opts         Options
	users, items *idSampler
	latent       *latent    // nil unless Options.LatentFactors > 0
	cum          [4]float64 // cumulative EventMix, normalized
	startMs      int64
	spanMs       float64
	disorderMs   int64
	meanDelayMs  float64
	diurnalC     float64 // amplitude of the time warp, ms
	diurnalSin0  float64
}

const (
	dayMs       = 86_400_000.0
	peakPhaseMs = 20 * 3_600_000.0
)

// New returns a generator for opts (defaults applied).
func New(opts Options) (*Generator, error) {
	opts = opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	g := &Generator{
		opts:       opts,
		startMs:    opts.Start.UnixMilli(),
		spanMs:     float64(opts.Span.Milliseconds()),
		disorderMs: opts.Disorder.Milliseconds(),
	}
	pr := rand.New(rand.NewPCG(uint64(opts.Seed), math.MaxUint64))
	g.users = newIDSampler(opts.UserZipfS, opts.Users, newPerm(pr, opts.Users))
	g.items = newIDSampler(opts.ZipfS, opts.Items, newPerm(pr, opts.Items))
	if opts.LatentFactors > 0 {
		g.latent = newLatent(opts, g.items)
	}
	var sum float64
	for _, p := range opts.EventMix {
		sum += p
	}
	var acc float64
	for i, p := range opts.EventMix {
		acc += p / sum
		g.cum[i] = acc
	}
	g.cum[3] = 1
	// Most events arrive within an eighth of the bound; a few take up to
	// the bound itself.
	g.meanDelayMs = float64(g.disorderMs) / 8
	g.diurnalC = opts.Diurnal * dayMs / (2 * math.Pi)
	g.diurnalSin0 = math.Sin(2 * math.Pi * (-peakPhaseMs) / dayMs)
	return g, nil
}

// Planted returns the planted model, or nil when Options.LatentFactors is
// 0. It is shared: do not modify it.
func (g *Generator) Planted() *Planted {
	if g.latent == nil {
		return nil
	}
	return g.latent.p
}

// Options returns the options in effect.
func (g *Generator) Options() Options { return g.opts }

// NumChunks is the number of chunks (and Parquet row groups).
func (g *Generator) NumChunks() int {
	return int((g.opts.Rows + int64(g.opts.RowGroupRows) - 1) / int64(g.opts.RowGroupRows))
}

// anchorRows is the spacing of the rows at which arrivalMs evaluates the
// warp exactly; rows between are linearly interpolated, which keeps it
// monotone.
const anchorRows = 256

// arrivals computes arrival times of consecutive rows, evaluating the warp
// only at anchors.
type arrivals struct {
	g      *Generator
	anchor int64 // first row of the current anchor interval, or -1
	lo, hi float64
}

// at returns the arrival time of global row i, non-decreasing in i.
func (a *arrivals) at(i int64) int64 {
	if first := i / anchorRows * anchorRows; first != a.anchor {
		a.anchor = first
		a.lo, a.hi = a.g.warp(first), a.g.warp(first+anchorRows)
	}
	w := min(a.lo+(a.hi-a.lo)*float64(i-a.anchor)/anchorRows, a.hi) // min: no rounding past the next anchor
	return a.g.startMs + int64(w)
}

// warp is the arrival offset in ms of global row i, monotone in i, clamped
// to [0, Span).
func (g *Generator) warp(i int64) float64 {
	tau := float64(i) / float64(g.opts.Rows) * g.spanMs
	// Warp tau by a monotone function (derivative 1 - A cos >= 1 - A > 0)
	// so the event rate follows a daily cycle peaking at peakPhaseMs.
	w := tau - g.diurnalC*(math.Sin(2*math.Pi*(tau-peakPhaseMs)/dayMs)-g.diurnalSin0)
	if w < 0 {
		w = 0
	}
	if w > g.spanMs-1 {
		w = g.spanMs - 1
	}
	return w
}

// writeSchema is Schema with event_type dictionary-encoded: the Parquet
// writer takes dictionary indices as they are instead of hashing every
// string, and the file still holds a plain string column (the Arrow schema
// is not stored).
var (
	eventDictType = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}
	writeSchema   = arrow.NewSchema([]arrow.Field{
		Schema.Field(0), Schema.Field(1), {Name: "event_type", Type: eventDictType}, Schema.Field(3), Schema.Field(4),
	}, nil)
)

// Chunk generates chunk c, rows [c*RowGroupRows, min((c+1)*RowGroupRows,
// Rows)), with Schema. The batch is owned by the caller.
func (g *Generator) Chunk(c int) arrow.RecordBatch { return g.chunk(c, false) }

func (g *Generator) chunk(c int, dict bool) arrow.RecordBatch {
	mem := g.opts.Mem
	lo := int64(c) * int64(g.opts.RowGroupRows)
	n := int(min(int64(g.opts.RowGroupRows), g.opts.Rows-lo))
	rng := rand.New(rand.NewPCG(uint64(g.opts.Seed), uint64(c)*0x9e3779b97f4a7c15+1))

	users, userBuf := int64Buffer(mem, n)
	items, itemBuf := int64Buffer(mem, n)
	weights, weightBuf := float64Buffer(mem, n)
	times, timeBuf := int64Buffer(mem, n)
	kinds, kindBuf := int8Buffer(mem, n)
	arr := arrivals{g: g, anchor: -1}
	var strLen int
	for i := 0; i < n; i++ {
		users[i] = g.users.sample(rng)
		if g.latent != nil {
			items[i] = g.latent.sample(rng, users[i], g.items)
		} else {
			items[i] = g.items.sample(rng)
		}
		u := rng.Float64()
		k := int8(0)
		for k < 3 && u >= g.cum[k] {
			k++
		}
		kinds[i] = k
		strLen += len(EventTypes[k])
		weights[i] = g.opts.Weights[k]
		t := arr.at(lo + int64(i))
		if g.disorderMs > 0 {
			d := int64(rng.ExpFloat64() * g.meanDelayMs)
			t -= min(d, g.disorderMs)
		}
		times[i] = t
	}

	var events arrow.Array
	if dict {
		events = g.eventDict(kindBuf, n)
	} else {
		events = eventStrings(mem, kinds, strLen)
		kindBuf.Release()
	}
	cols := []arrow.Array{
		fixedArray(arrow.PrimitiveTypes.Int64, n, userBuf),
		fixedArray(arrow.PrimitiveTypes.Int64, n, itemBuf),
		events,
		fixedArray(arrow.PrimitiveTypes.Float64, n, weightBuf),
		fixedArray(Schema.Field(4).Type, n, timeBuf),
	}
	schema := Schema
	if dict {
		schema = writeSchema
	}
	rec := array.NewRecordBatch(schema, cols, int64(n))
	for _, a := range cols {
		a.Release()
	}
	return rec
}

// eventStrings builds the event_type strings of kinds.
func eventStrings(mem memory.Allocator, kinds []int8, strLen int) arrow.Array {
	n := len(kinds)
	offBuf := memory.NewResizableBuffer(mem)
	offBuf.Resize((n + 1) * 4)
	offsets := unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(offBuf.Bytes()))), n+1)
	dataBuf := memory.NewResizableBuffer(mem)
	dataBuf.Resize(strLen)
	data := dataBuf.Bytes()[:0]
	for i, k := range kinds {
		offsets[i] = int32(len(data))
		data = append(data, EventTypes[k]...)
	}
	offsets[n] = int32(len(data))
	d := array.NewData(arrow.BinaryTypes.String, n, []*memory.Buffer{nil, offBuf, dataBuf}, nil, 0, 0)
	offBuf.Release()
	dataBuf.Release()
	a := array.MakeFromData(d)
	d.Release()
	return a
}

// eventDict wraps the kinds buffer (taking over its reference) as dictionary
// indices into EventTypes.
func (g *Generator) eventDict(kindBuf *memory.Buffer, n int) arrow.Array {
	sb := array.NewStringBuilder(g.opts.Mem)
	defer sb.Release()
	sb.AppendValues(EventTypes[:], nil)
	dict := sb.NewArray()
	defer dict.Release()
	idx := fixedArray(arrow.PrimitiveTypes.Int8, n, kindBuf)
	defer idx.Release()
	return array.NewDictionaryArray(eventDictType, idx, dict)
}

func int8Buffer(mem memory.Allocator, n int) ([]int8, *memory.Buffer) {
	b := memory.NewResizableBuffer(mem)
	b.Resize(n)
	return unsafe.Slice((*int8)(unsafe.Pointer(unsafe.SliceData(b.Bytes()))), n), b
}

func int64Buffer(mem memory.Allocator, n int) ([]int64, *memory.Buffer) {
	b := memory.NewResizableBuffer(mem)
	b.Resize(n * 8)
	return unsafe.Slice((*int64)(unsafe.Pointer(unsafe.SliceData(b.Bytes()))), n), b
}

func float64Buffer(mem memory.Allocator, n int) ([]float64, *memory.Buffer) {
	b := memory.NewResizableBuffer(mem)
	b.Resize(n * 8)
	return unsafe.Slice((*float64)(unsafe.Pointer(unsafe.SliceData(b.Bytes()))), n), b
}

// fixedArray wraps buf (whose reference it takes over) as an array.
func fixedArray(t arrow.DataType, n int, buf *memory.Buffer) arrow.Array {
	d := array.NewData(t, n, []*memory.Buffer{nil, buf}, nil, 0, 0)
	buf.Release()
	a := array.MakeFromData(d)
	d.Release()
	return a
}

// WriteFile generates opts.Rows rows and writes them to path as Parquet (zstd,
// one row group per chunk), atomically: path appears complete or not at all.
// progress, if not nil, is called after each row group with the number of
// rows written so far, from one goroutine.
func WriteFile(ctx context.Context, path string, opts Options, progress func(rows int64)) (err error) {
	g, err := New(opts)
	if err != nil {
		return err
	}
	return g.WriteFile(ctx, path, progress)
}

// WriteFile is the package-level WriteFile for this generator.
func (g *Generator) WriteFile(ctx context.Context, path string, progress func(rows int64)) error {
	// Chosen for write speed at nearly the best size: no dictionary for
	// the high-cardinality ids and times (hashing every value costs twice
	// the time for 8% of the size).
	po := ParquetOptions{Mem: g.opts.Mem, RowGroupRows: g.opts.RowGroupRows,
		DictColumns: []string{"event_type", "weight"}, CreatedBy: "riffle internal/gen"}
	return WriteParquet(ctx, path, writeSchema, po, func(emit func(arrow.RecordBatch) error) error {
		return g.generate(ctx, true, emit, progress)
	})
}

// ParquetOptions configure WriteParquet.
type ParquetOptions struct {
	// Mem allocates the writer's buffers; default memory.DefaultAllocator.
	Mem memory.Allocator
	// RowGroupRows bounds the rows of a row group; default DefaultRowGroupRows.
	// Every batch written starts a new row group.
	RowGroupRows int
	// DictColumns are dictionary-encoded; the other columns are plain.
	DictColumns []string
	// CreatedBy is recorded in the footer; default "riffle".
	CreatedBy string
}

// WriteParquet writes the batches that write hands to its emit function to
// path as one Parquet file of the given schema (zstd level 1, statistics),
// atomically: it writes to a hidden temporary file in the target directory,
// fsyncs it and renames it into place, so path appears complete or not at
// all. emit borrows its batch. internal/gen and the Nexmark generator
// (sources/nexmark) write their files through it.
func WriteParquet(ctx context.Context, path string, schema *arrow.Schema, o ParquetOptions, write func(emit func(arrow.RecordBatch) error) error) (err error) {
	if o.Mem == nil {
		o.Mem = memory.DefaultAllocator
	}
	if o.RowGroupRows <= 0 {
		o.RowGroupRows = DefaultRowGroupRows
	}
	if o.CreatedBy == "" {
		o.CreatedBy = "riffle"
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("gen: mkdir %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return fmt.Errorf("gen: create %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 4<<20)
	// zstd level 1 for write speed at nearly the best size. Not
	// DELTA_BINARY_PACKED for times, though smaller: arrow-go v18.8's
	// decoder leaks 64 bytes per column chunk, which fails readers'
	// checked-allocator tests.
	props := []parquet.WriterProperty{
		parquet.WithAllocator(o.Mem),
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithCompressionLevel(1),
		parquet.WithMaxRowGroupLength(int64(o.RowGroupRows)),
		parquet.WithDictionaryDefault(false),
		parquet.WithStats(true),
		parquet.WithCreatedBy(o.CreatedBy),
	}
	for _, c := range o.DictColumns {
		props = append(props, parquet.WithDictionaryFor(c, true))
	}
	fw, err := pqarrow.NewFileWriter(schema, bw, parquet.NewWriterProperties(props...), pqarrow.NewArrowWriterProperties(pqarrow.WithAllocator(o.Mem)))
	if err != nil {
		return fmt.Errorf("gen: write %s: %w", path, err)
	}
	if err := write(func(rec arrow.RecordBatch) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fw.Write(rec)
	}); err != nil {
		_ = fw.Close()
		return fmt.Errorf("gen: write %s: %w", path, err)
	}
	if err := fw.Close(); err != nil {
		return fmt.Errorf("gen: write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("gen: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("gen: fsync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("gen: close %s: %w", path, err)
	}
	// CreateTemp makes the file private (0600); data files are for sharing
	// with pyarrow, pandas, DuckDB and other users, like the sinks' output.
	if err := os.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("gen: chmod %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("gen: rename to %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// Generate calls emit with every chunk in order, generating up to
// Parallelism chunks ahead in parallel. emit borrows the batch. progress, if
// not nil, is called after each emit with the rows emitted so far.
func (g *Generator) Generate(ctx context.Context, emit func(arrow.RecordBatch) error, progress func(rows int64)) error {
	return g.generate(ctx, false, emit, progress)
}

func (g *Generator) generate(ctx context.Context, dict bool, emit func(arrow.RecordBatch) error, progress func(rows int64)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := g.NumChunks()
	par := g.opts.Parallelism
	slots := make([]chan arrow.RecordBatch, n)
	for i := range slots {
		slots[i] = make(chan arrow.RecordBatch, 1)
	}
	tokens := make(chan struct{}, par+1) // chunks generated, not yet emitted
	jobs := make(chan int)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(jobs)
		for c := 0; c < n; c++ {
			select {
			case tokens <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	for w := 0; w < par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range jobs {
				slots[c] <- g.chunk(c, dict)
			}
		}()
	}
	defer func() {
		cancel()
		wg.Wait()
		for _, s := range slots {
			select {
			case rec := <-s:
				rec.Release()
			default:
			}
		}
	}()
	var rows int64
	for c := 0; c < n; c++ {
		var rec arrow.RecordBatch
		select {
		case rec = <-slots[c]:
		case <-ctx.Done():
			return ctx.Err()
		}
		err := emit(rec)
		rows += rec.NumRows()
		rec.Release()
		<-tokens
		if err != nil {
			return err
		}
		if progress != nil {
			progress(rows)
		}
	}
	return nil
}
