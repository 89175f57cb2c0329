package parquet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/filelist"
)

// DefaultBatchSize is the number of rows per batch when Options.BatchSize is 0.
const DefaultBatchSize = 65536

// Decoder names accepted by Options.Decoder.
const (
	DecoderArrow     = "arrow"      // arrow-go's pqarrow
	DecoderParquetGo = "parquet-go" // github.com/parquet-go/parquet-go pages into Arrow buffers
)

// DefaultDecoder is the decoder used when Options.Decoder is empty. See the
// package documentation for why.
const DefaultDecoder = DecoderParquetGo

// Predicate is a comparison `Column Op Value`. Predicates are only used to
// skip row groups whose statistics prove that no row can match; the engine
// still filters rows.
type Predicate struct {
	Column string
	Op     string // "=", "<", "<=", ">", ">="
	Value  any    // int64 (or int), float64, string, bool, time.Time
}

// StringFilter keeps the rows whose Column value is not null and is one of
// Values (Not: is none of Values) — SQL's `col IN (...)`, `col = 'x'`,
// `col NOT IN (...)` and `col <> 'x'`, all of which drop NULLs. Column must
// be a string or binary column.
type StringFilter struct {
	Column string
	Values []string
	Not    bool
}

// Options configures a Source. The zero value of every field but Paths works.
type Options struct {
	// Paths are files, globs or directories (read recursively). Directory
	// walks keep *.parquet files; directory walks and globs skip names
	// starting with '.' or '_'. The resolved list is sorted and deduplicated.
	Paths []string
	// Columns is the projection, in output order; nil means every column in
	// file order.
	Columns []string
	// Predicates are AND-ed and used only to skip row groups.
	Predicates []Predicate
	// StringFilters are AND-ed row filters evaluated inside the scan, before
	// rows become Arrow batches: rows that fail are never materialized. On
	// dictionary-encoded pages a filter is evaluated once per dictionary
	// entry, not per row. A filter's column need not be projected. They need
	// the parquet-go decoder.
	StringFilters []StringFilter
	// Dictionary names string or binary columns read dictionary-encoded,
	// as dictionary<int32, value type>, where they are projected: the
	// indices of a column chunk's dictionary pages are copied and its
	// dictionary page becomes one Arrow dictionary shared by the chunk's
	// batches, so no string is copied per row and expressions evaluate once
	// per entry (arrowexec/expr). A batch with plain-encoded rows (a writer
	// that fell back from dictionary encoding, a file without dictionary
	// pages, the arrow decoder) carries its decoded values as its
	// dictionary, indices 0..n-1. Consumers must accept dictionary columns.
	Dictionary []string
	// BatchSize is the maximum number of rows per batch; default
	// DefaultBatchSize. A batch never spans two row groups.
	BatchSize int
	// Decoder is DecoderArrow or DecoderParquetGo; "" picks DefaultDecoder
	// (falling back to DecoderArrow for column types the parquet-go decoder
	// does not support).
	Decoder string
	// Watermark, when its Column is set, makes readers report event-time
	// watermarks if they read their row groups in event-time order (see
	// watermark.go); otherwise only the final watermark at end of input.
	Watermark arrowexec.WatermarkStrategy
}

// EnsureDefaults returns a copy of o with defaults filled in.
func (o Options) EnsureDefaults() Options {
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	return o
}

// Validate checks the options that can be checked without reading files.
func (o Options) Validate() error {
	if len(o.Paths) == 0 {
		return errors.New("parquet: no paths given")
	}
	switch o.Decoder {
	case "", DecoderArrow, DecoderParquetGo:
	default:
		return fmt.Errorf("parquet: unknown decoder %q (want %q or %q)", o.Decoder, DecoderArrow, DecoderParquetGo)
	}
	for _, p := range o.Predicates {
		switch p.Op {
		case "=", "<", "<=", ">", ">=":
		default:
			return fmt.Errorf("parquet: predicate on column %q: unknown operator %q", p.Column, p.Op)
		}
	}
	return nil
}

// fileInfo is what New learned from one file's footer.
type fileInfo struct {
	path   string
	meta   *metadata.FileMetaData
	schema *arrow.Schema // the file's own Arrow schema
}

// rowGroup is one unit of work: a row group that survived pruning.
type rowGroup struct {
	file  int // index into Source.files
	index int // row group index in the file
	rows  int64
	bytes int64 // compressed bytes of the projected column chunks
}

// column is one projected column.
type column struct {
	name   string
	index  int   // field index in the file's Arrow schema
	leaf   int   // leaf column index in the Parquet schema (the first, for a list)
	leaves []int // every leaf column of a list column; nil for flat columns
	field  arrow.Field
	dict   bool // read as dictionary<int32, field.Type> (Options.Dictionary)
}

// leafSet returns the leaf columns that make up c.
func (c column) leafSet() []int {
	if c.leaves != nil {
		return c.leaves
	}
	return []int{c.leaf}
}

// listLeaves returns the leaf columns of top-level column name.
func listLeaves(md *metadata.FileMetaData, name string) []int {
	var out []int
	for i := 0; i < md.Schema.NumColumns(); i++ {
		if p := md.Schema.Column(i).ColumnPath(); len(p) > 0 && p[0] == name {
			out = append(out, i)
		}
	}
	return out
}

// Source reads Parquet files as Arrow record batches. It implements
// arrowexec.Source; see the package documentation for its contract.
type Source struct {
	opts      Options
	decoder   string
	files     []fileInfo
	full      *arrow.Schema // every column of the files (unified by name)
	unified   bool          // a file's schema differs from full, their union by name
	oneLayout bool          // every file has the same schema (so the same leaf columns)
	schema    *arrow.Schema
	columns   []column
	layouts   []fileLayout // per file, when unified; nil otherwise
	filters   []compiledFilter
	groups    []rowGroup // surviving row groups, in (file, row group) order
	byKey     map[rgKey]int

	totalGroups, pruned int
	rows, bytes         int64
}

type rgKey struct {
	file string
	rg   int
}

var _ arrowexec.Source = (*Source)(nil)

// New resolves the paths, reads every footer, checks that the files agree on
// their schema and that projected and predicate columns exist, and prunes row
// groups with the predicates.
func New(opts Options) (*Source, error) {
	opts = opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	paths, err := resolvePaths(opts.Paths)
	if err != nil {
		return nil, err
	}
	s := &Source{opts: opts, byKey: make(map[rgKey]int)}
	schemas := make([]*arrow.Schema, 0, len(paths))
	for _, p := range paths {
		md, err := readFooter(p)
		if err != nil {
			return nil, err
		}
		sc, err := fileSchema(p, md)
		if err != nil {
			return nil, err
		}
		schemas = append(schemas, sc)
		s.files = append(s.files, fileInfo{path: p, meta: md, schema: sc})
	}
	if s.full, s.unified, err = unifySchemas(paths, schemas); err != nil {
		return nil, err
	}
	s.oneLayout = true
	for _, sc := range schemas[1:] {
		s.oneLayout = s.oneLayout && sc.Equal(schemas[0])
	}
	return s, s.init()
}

// init projects, picks the decoder and prunes row groups.
func (s *Source) init() error {
	if err := s.project(s.full); err != nil {
		return err
	}
	if err := s.checkWatermark(); err != nil {
		return err
	}
	if err := s.compileFilters(); err != nil {
		return err
	}
	var err error
	if s.unified {
		// Files whose schemas differ are read by pqarrow, file by file, and
		// conformed to the unified schema (unify.go).
		if s.opts.Decoder == DecoderParquetGo {
			return fmt.Errorf("parquet: the %s decoder needs files with one schema; these differ (%s)", DecoderParquetGo, s.schemaDiff())
		}
		s.decoder = DecoderArrow
	} else if s.decoder, err = chooseDecoder(s.opts.Decoder, s.files[0], s.readColumns()); err != nil {
		return err
	}
	if len(s.filters) > 0 && s.decoder != DecoderParquetGo {
		return fmt.Errorf("parquet: string filters need the %s decoder (have %s)", DecoderParquetGo, s.decoder)
	}
	// Predicates are compiled against the first file's leaf columns, so
	// they prune only when every file has its schema.
	var preds []compiledPred
	if s.oneLayout {
		if preds, err = compilePredicates(s.opts.Predicates, s.full, s.files[0]); err != nil {
			return err
		}
	}
	for fi := range s.files {
		if err := s.plan(fi, preds); err != nil {
			return err
		}
	}
	return nil
}

// FileSchema returns the schema of the files: every column, before
// projection.
func (s *Source) FileSchema() *arrow.Schema { return s.full }

// With returns a source over the same files with another projection,
// other predicates and other string filters, without reading the footers
// again.
func (s *Source) With(columns []string, preds []Predicate, filters []StringFilter) (*Source, error) {
	opts := s.opts
	opts.Columns, opts.Predicates, opts.StringFilters = columns, preds, filters
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	n := &Source{opts: opts, files: s.files, full: s.full, unified: s.unified, oneLayout: s.oneLayout, byKey: make(map[rgKey]int)}
	return n, n.init()
}

// WithDictionary returns a source over the same files, projection,
// predicates and filters that reads the columns cols dictionary-encoded
// (Options.Dictionary).
func (s *Source) WithDictionary(cols []string) (*Source, error) {
	opts := s.opts
	opts.Dictionary = cols
	n := &Source{opts: opts, files: s.files, full: s.full, unified: s.unified, oneLayout: s.oneLayout, byKey: make(map[rgKey]int)}
	return n, n.init()
}

// WithWatermark returns a source over the same files, projection and
// predicates with another watermark strategy.
func (s *Source) WithWatermark(w arrowexec.WatermarkStrategy) (*Source, error) {
	opts := s.opts
	opts.Watermark = w
	n := &Source{opts: opts, files: s.files, full: s.full, unified: s.unified, oneLayout: s.oneLayout, byKey: make(map[rgKey]int)}
	return n, n.init()
}

// plan prunes the row groups of file fi and adds the survivors to s.groups.
func (s *Source) plan(fi int, preds []compiledPred) (err error) {
	f := s.files[fi]
	rg := -1
	defer func() {
		if r := recover(); r != nil {
			err = wrapErr(f.path, rg, "", fmt.Errorf("%w: metadata: %v", ErrCorrupt, r))
		}
	}()
	for rg = 0; rg < f.meta.NumRowGroups(); rg++ {
		s.totalGroups++
		rgm := f.meta.RowGroup(rg)
		keep, err := mayMatch(preds, rgm)
		if err != nil {
			return wrapErr(f.path, rg, "", err)
		}
		if !keep {
			s.pruned++
			continue
		}
		g := rowGroup{file: fi, index: rg, rows: rgm.NumRows()}
		for _, c := range s.fileReadColumns(fi) {
			for _, leaf := range c.leafSet() {
				cc, err := rgm.ColumnChunk(leaf)
				if err != nil {
					return wrapErr(f.path, rg, c.name, err)
				}
				g.bytes += cc.TotalCompressedSize()
			}
		}
		s.byKey[rgKey{f.path, rg}] = len(s.groups)
		s.groups = append(s.groups, g)
		s.rows += g.rows
		s.bytes += g.bytes
	}
	return nil
}

// Schema returns the schema of every batch: the projected columns.
func (s *Source) Schema() *arrow.Schema { return s.schema }

// Decoder returns the name of the decoder in use.
func (s *Source) Decoder() string { return s.decoder }

// Stats returns the total work: number of files, row groups in them, row
// groups pruned by predicates, and the rows and compressed bytes (of the
// projected columns) of the row groups left to read.
func (s *Source) Stats() (files, rowGroups, rowGroupsPruned int, rows, bytes int64) {
	return len(s.files), s.totalGroups, s.pruned, s.rows, s.bytes
}

// Open returns the reader of subtask t.Subtask: the row groups assigned to it
// by split, or, when t.Restore is set, its share of the work left in the
// snapshots of the previous run.
func (s *Source) Open(ctx context.Context, t *arrowexec.Task) (arrowexec.SourceReader, error) {
	if t.Parallelism <= 0 || t.Subtask < 0 || t.Subtask >= t.Parallelism {
		return nil, fmt.Errorf("parquet: invalid subtask %d of %d", t.Subtask, t.Parallelism)
	}
	var all []workItem
	if t.Restore != nil {
		var err error
		if all, err = s.restoreItems(t.Restore.Operator); err != nil {
			return nil, err
		}
	} else {
		all = make([]workItem, len(s.groups))
		for i, g := range s.groups {
			all[i] = workItem{group: i, rows: g.rows}
		}
	}
	return newReader(s, t, split(all, t.Parallelism)[t.Subtask]), nil
}

func (s *Source) project(full *arrow.Schema) error {
	names := s.opts.Columns
	if names == nil {
		for _, f := range full.Fields() {
			names = append(names, f.Name)
		}
	}
	dict := make(map[string]bool, len(s.opts.Dictionary))
	for _, n := range s.opts.Dictionary {
		idx := full.FieldIndices(n)
		if len(idx) == 0 {
			return fmt.Errorf("parquet: dictionary column %q not found in file %s (available: %s)", n, s.files[0].path, columnList(full))
		}
		if id := full.Field(idx[0]).Type.ID(); id != arrow.STRING && id != arrow.BINARY {
			return fmt.Errorf("parquet: dictionary column %q has type %s; only string and binary columns are read dictionary-encoded", n, full.Field(idx[0]).Type)
		}
		dict[n] = true
	}
	seen := make(map[string]bool)
	fields := make([]arrow.Field, 0, len(names))
	for _, n := range names {
		if seen[n] {
			return fmt.Errorf("parquet: column %q projected twice", n)
		}
		seen[n] = true
		idx := full.FieldIndices(n)
		if len(idx) == 0 {
			return fmt.Errorf("parquet: column %q not found in file %s (available: %s)", n, s.files[0].path, columnList(full))
		}
		f := full.Field(idx[0])
		if !isFlat(f.Type) {
			return fmt.Errorf("parquet: file %s: column %q: nested type %s is not supported", s.files[0].path, n, f.Type)
		}
		c := column{name: n, index: idx[0], leaf: -1, field: f} // resolved per file in layoutFor when unified
		if !s.unified {
			if c.leaf, c.leaves = resolveLeaf(s.files[0].meta, f); c.leaf < 0 {
				return fmt.Errorf("parquet: file %s: column %q: no leaf column", s.files[0].path, n)
			}
		}
		if dict[n] {
			c.dict = true
			f.Type = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: f.Type}
		}
		s.columns = append(s.columns, c)
		fields = append(fields, f)
	}
	s.schema = arrow.NewSchema(fields, nil)
	if s.unified {
		s.layouts = make([]fileLayout, len(s.files))
		for fi := range s.files {
			l, err := s.layoutFor(fi)
			if err != nil {
				return err
			}
			s.layouts[fi] = l
		}
	}
	return nil
}

func columnList(sc *arrow.Schema) string {
	var b strings.Builder
	for i, f := range sc.Fields() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(f.Name)
	}
	return b.String()
}

// isFlat reports whether a column of type t can be read: flat types, and
// lists (read by the arrow decoder and passed through).
func isFlat(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.LIST, arrow.LARGE_LIST, arrow.FIXED_SIZE_LIST:
		return true
	}
	_, nested := t.(arrow.NestedType)
	return !nested
}

// resolveLeaf finds the leaf columns of field f in a file: one for a flat
// column, all of them for a list.
func resolveLeaf(md *metadata.FileMetaData, f arrow.Field) (int, []int) {
	if _, nested := f.Type.(arrow.NestedType); nested {
		leaves := listLeaves(md, f.Name)
		if len(leaves) == 0 {
			return -1, nil
		}
		return leaves[0], leaves
	}
	return md.Schema.ColumnIndexByName(f.Name), nil
}

// readFooter reads and parses the footer of one file.
func readFooter(path string) (md *metadata.FileMetaData, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fileErr(path, err)
	}
	defer f.Close()
	defer func() {
		if r := recover(); r != nil {
			md, err = nil, wrapErr(path, -1, "", fmt.Errorf("%w: footer: %v", ErrCorrupt, r))
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, fileErr(path, err)
	}
	if st.IsDir() {
		return nil, wrapErr(path, -1, "", errors.New("is a directory"))
	}
	r, err := file.NewParquetReader(f)
	if err != nil {
		return nil, wrapErr(path, -1, "", fmt.Errorf("%w: %s", ErrNotParquet, libErr(err)))
	}
	md = r.MetaData()
	// Check every row group and column chunk is addressable now, so a bad
	// footer fails New rather than a subtask halfway through.
	for rg := 0; rg < md.NumRowGroups(); rg++ {
		rgm := md.RowGroup(rg)
		if rgm.NumColumns() != md.Schema.NumColumns() {
			return nil, wrapErr(path, rg, "", fmt.Errorf("%w: row group has %d columns, schema %d", ErrCorrupt, rgm.NumColumns(), md.Schema.NumColumns()))
		}
		for c := 0; c < rgm.NumColumns(); c++ {
			cc, err := rgm.ColumnChunk(c)
			if err != nil {
				return nil, wrapErr(path, rg, md.Schema.Column(c).Name(), fmt.Errorf("%w: %s", ErrCorrupt, libErr(err)))
			}
			off := cc.DataPageOffset()
			if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 && cc.DictionaryPageOffset() < off {
				off = cc.DictionaryPageOffset()
			}
			if off < 0 || cc.TotalCompressedSize() < 0 || off+cc.TotalCompressedSize() > st.Size() {
				return nil, wrapErr(path, rg, md.Schema.Column(c).Name(), fmt.Errorf("%w: column chunk [%d, +%d) outside file of %d bytes", ErrCorrupt, off, cc.TotalCompressedSize(), st.Size()))
			}
		}
	}
	return md, nil
}

// fileSchema converts a file's Parquet schema to Arrow (honouring a stored
// ARROW:schema), without metadata.
func fileSchema(path string, md *metadata.FileMetaData) (_ *arrow.Schema, err error) {
	defer recoverErr(&err, path, -1, "")
	if err := checkStoredSchema(md.KeyValueMetadata()); err != nil {
		return nil, wrapErr(path, -1, "", fmt.Errorf("%w: %v", ErrCorrupt, err))
	}
	sc, err := pqarrow.FromParquet(md.Schema, &pqarrow.ArrowReadProperties{}, md.KeyValueMetadata())
	if err != nil {
		return nil, wrapErr(path, -1, "", err)
	}
	fields := make([]arrow.Field, sc.NumFields())
	for i, f := range sc.Fields() {
		fields[i] = arrow.Field{Name: f.Name, Type: f.Type, Nullable: f.Nullable}
	}
	return arrow.NewSchema(fields, nil), nil
}

// resolvePaths expands files, globs and directories into a sorted,
// deduplicated list of files (internal/filelist: directories keep
// *.parquet).
func resolvePaths(paths []string) ([]string, error) {
	return filelist.Resolve(paths, filelist.Options{Prefix: "parquet", Extensions: []string{".parquet"}, FileErr: fileErr})
}

// compiledFilter is a StringFilter resolved against the files.
type compiledFilter struct {
	col    column
	values map[string]struct{}
	not    bool
}

// pass reports whether a non-null value passes the filter.
func (f *compiledFilter) pass(v []byte) bool {
	_, in := f.values[string(v)]
	return in != f.not
}

func (s *Source) compileFilters() error {
	s.filters = s.filters[:0]
	for _, sf := range s.opts.StringFilters {
		idx := s.full.FieldIndices(sf.Column)
		if len(idx) == 0 {
			return fmt.Errorf("parquet: filter column %q not found in file %s (available: %s)", sf.Column, s.files[0].path, columnList(s.full))
		}
		f := s.full.Field(idx[0])
		if id := f.Type.ID(); id != arrow.STRING && id != arrow.BINARY {
			return fmt.Errorf("parquet: filter column %q has type %s, want string or binary", sf.Column, f.Type)
		}
		leaf := s.files[0].meta.Schema.ColumnIndexByName(sf.Column)
		if leaf < 0 {
			return fmt.Errorf("parquet: file %s: column %q: no leaf column", s.files[0].path, sf.Column)
		}
		cf := compiledFilter{col: column{name: sf.Column, index: idx[0], leaf: leaf, field: f}, values: map[string]struct{}{}, not: sf.Not}
		for _, v := range sf.Values {
			cf.values[v] = struct{}{}
		}
		s.filters = append(s.filters, cf)
	}
	return nil
}

// fileReadColumns is readColumns resolved in file fi.
func (s *Source) fileReadColumns(fi int) []column {
	if s.layouts == nil {
		return s.readColumns()
	}
	return s.layouts[fi].cols
}

// readColumns lists every column the readers decode: the projection, then
// the filter columns that are not projected.
func (s *Source) readColumns() []column {
	if len(s.filters) == 0 {
		return s.columns
	}
	out := append([]column(nil), s.columns...)
	for _, f := range s.filters {
		dup := false
		for _, c := range out {
			dup = dup || c.leaf == f.col.leaf
		}
		if !dup {
			out = append(out, f.col)
		}
	}
	return out
}
