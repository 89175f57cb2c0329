package ml

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/riffle-dev/riffle/internal/arrowtext"
	"github.com/riffle-dev/riffle/internal/fsx"
)

// ExportOptions say where and how models are exported (see the package
// documentation, "Exports").
type ExportOptions struct {
	Path string // the export root: versions vNNNNNN/ and LATEST inside
	// Format of the recommendations: "parquet" (default), "csv" or
	// "jsonl" (the file sinks' encodings); factor files are Parquet.
	Format     string
	Embeddings bool // also write user_factors/ and item_factors/
	Retain     int  // complete versions kept, newest first; default 5
	// FS is where the files go (default the OS's); tests inject faults.
	FS fsx.FS
}

// DefaultRetain is the number of versions an export keeps by default.
const DefaultRetain = 5

// Validate reports the first bad option.
func (e *ExportOptions) Validate() error {
	switch {
	case e.Path == "":
		return fmt.Errorf("ml: export: path is required")
	case e.Format != "" && e.Format != "parquet" && e.Format != "csv" && e.Format != "jsonl":
		return fmt.Errorf("ml: export: format %q is not supported (want parquet, csv or jsonl)", e.Format)
	case e.Retain < 0:
		return fmt.Errorf("ml: export: retain must be ≥ 0, got %d", e.Retain)
	}
	return nil
}

// format is the recommendations' format, default parquet.
func (e *ExportOptions) format() string {
	if e.Format == "" {
		return "parquet"
	}
	return e.Format
}

// Names inside an export root.
const (
	LatestFile       = "LATEST"
	ModelFile        = "_MODEL.json"
	RecommendDir     = "recommendations"
	UserFactorsDir   = "user_factors"
	ItemFactorsDir   = "item_factors"
	exportTempPrefix = ".tmp-"
	exportPartRows   = 1 << 20 // rows per part file (one row group each for factors)
	recRowGroupRows  = 1 << 16 // rows per row group of the recommendations
	// factorRowGroupRows is a variable so tests can cut factor files into
	// many row groups.
)

var factorRowGroupRows int64 = 1 << 14

var versionRE = regexp.MustCompile(`^v(\d{6,})$`)

// VersionName is the directory name of version v.
func VersionName(v int64) string { return fmt.Sprintf("v%06d", v) }

// Manifest is an export's _MODEL.json.
type Manifest struct {
	Version      int64     `json:"version"`
	Created      time.Time `json:"created"`
	UserIDType   string    `json:"user_id_type"` // int64 or string
	ItemIDType   string    `json:"item_id_type"`
	Users        int       `json:"users"`
	Items        int       `json:"items"`
	Interactions int       `json:"interactions"`      // distinct (user, item) pairs
	InputRows    int64     `json:"input_rows"`        // accepted input rows
	Loss         float64   `json:"loss"`              // training loss (Loss)
	TrainSeconds float64   `json:"train_seconds"`     // training and top-K scoring
	Fingerprint  string    `json:"input_fingerprint"` // FNV-1a of the sorted (user, item, weight) triples
	K            int       `json:"k"`
	Embeddings   bool      `json:"embeddings"`
	Format       string    `json:"format"`
	Files        []string  `json:"files"` // relative paths of every data file
	// Set by the streaming operator: the checkpoint whose completion
	// published the version (0: none, published at once), and for a
	// version holding only the users changed since version Since
	// (recommendations and user factors; item factors are all there),
	// ChangedOnly.
	Checkpoint  uint64 `json:"checkpoint,omitempty"`
	ChangedOnly bool   `json:"changed_only,omitempty"`
	Since       int64  `json:"since,omitempty"`
	Config      struct {
		Factors           int     `json:"factors"`
		Regularization    float64 `json:"regularization"`
		FrequencyScaled   bool    `json:"frequency_scaled"`
		FrequencyExponent float64 `json:"frequency_exponent"`
		Alpha             float64 `json:"alpha"`
		Iterations        int     `json:"iterations"`
		Solver            string  `json:"solver"`
		CGSteps           int     `json:"cg_steps"`
		Seed              int64   `json:"seed"`
	} `json:"config"`
}

// exportHook, when set (crash tests), is called at the export's stages:
// "part" (after each data file), "files" (the version's files are
// written in the temporary directory),
// "version" (it was renamed to vNNNNNN), "latest" (LATEST was replaced).
var exportHook func(stage string)

func hook(stage string) {
	if exportHook != nil {
		exportHook(stage)
	}
}

// ReadLatest returns the version LATEST names under root (0 when there is
// no LATEST yet).
func ReadLatest(fs fsx.FS, root string) (int64, error) {
	if fs == nil {
		fs = fsx.OSFS
	}
	f, err := fs.Open(filepath.Join(root, LatestFile))
	if fsx.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("ml: export: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 64)
	n, _ := f.Read(buf)
	m := versionRE.FindStringSubmatch(strings.TrimSpace(string(buf[:n])))
	if m == nil {
		return 0, fmt.Errorf("ml: export: %s: not a version name: %q", filepath.Join(root, LatestFile), buf[:n])
	}
	return strconv.ParseInt(m[1], 10, 64)
}

// versionsOnDisk lists the complete version directories under root,
// ascending.
func versionsOnDisk(fs fsx.FS, root string) ([]int64, error) {
	if fs == nil {
		fs = fsx.OSFS
	}
	ents, err := fs.ReadDir(root)
	if fsx.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ml: export: %w", err)
	}
	var vs []int64
	for _, e := range ents {
		if m := versionRE.FindStringSubmatch(e.Name()); m != nil && e.IsDir() {
			v, _ := strconv.ParseInt(m[1], 10, 64)
			vs = append(vs, v)
		}
	}
	slices.Sort(vs)
	return vs, nil
}

func latestVersionOnDisk(root string) (int64, error) {
	vs, err := versionsOnDisk(fsx.OSFS, root)
	if err != nil || len(vs) == 0 {
		return 0, err
	}
	return vs[len(vs)-1], nil
}

// export writes res as version res.version under the export root: into a
// temporary directory first (every file synced), renamed to vNNNNNN, then
// LATEST replaced by a synced temporary file renamed over it; the
// directory is synced after each rename. Versions beyond Retain are then
// removed, oldest first.
func (s *RecommendSpec) export(ctx context.Context, res *trainResult, b *bound) error {
	eo := *s.opts.Export
	fs := eo.fs()
	// Leftovers of an export that crashed are never visible as versions;
	// remove them.
	if err := removeExportLeftovers(fs, eo.Path, nil); err != nil {
		return err
	}
	if err := s.writeVersion(ctx, res, b, versionInfo{}); err != nil {
		return err
	}
	return publishVersion(fs, eo.Path, res.version, eo.Retain)
}

func (e *ExportOptions) fs() fsx.FS {
	if e.FS == nil {
		return fsx.OSFS
	}
	return e.FS
}

// removeExportLeftovers removes the temporary directories and files under
// root (exportTempPrefix) except those keep says to keep.
func removeExportLeftovers(fs fsx.FS, root string, keep func(name string) bool) error {
	ents, err := fs.ReadDir(root)
	if fsx.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ml: export: %w", err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), exportTempPrefix) && (keep == nil || !keep(e.Name())) {
			if err := fs.RemoveAll(filepath.Join(root, e.Name())); err != nil {
				return fmt.Errorf("ml: export: remove leftover %s: %w", e.Name(), err)
			}
		}
	}
	return nil
}

// stagedDir is the temporary directory version v is written into.
func stagedDir(root string, v int64) string {
	return filepath.Join(root, exportTempPrefix+VersionName(v))
}

// versionInfo is what a streamed version adds to its manifest.
type versionInfo struct {
	checkpoint  uint64
	changedOnly bool
	since       int64
}

// writeVersion writes the files of version res.version into its
// temporary directory (stagedDir), every file and directory synced, the
// manifest last: a staged version whose manifest is there is complete.
func (s *RecommendSpec) writeVersion(ctx context.Context, res *trainResult, b *bound, vi versionInfo) error {
	eo := *s.opts.Export
	fs := eo.fs()
	root := eo.Path
	if err := fs.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("ml: export: %w", err)
	}
	name := VersionName(res.version)
	tmp := stagedDir(root, res.version)
	final := filepath.Join(root, name)
	if _, err := fs.Stat(final); err == nil {
		return fmt.Errorf("ml: export: %s already exists", final)
	}
	mem := memory.NewGoAllocator()
	man := Manifest{Version: res.version, Created: time.Now().UTC(), UserIDType: b.userKind.String(), ItemIDType: b.itemKind.String(),
		Users: len(res.userKeys), Items: len(res.itemKeys), Interactions: res.ui.NNZ(), InputRows: res.rows, Loss: res.loss,
		TrainSeconds: res.elapsed.Seconds(), Fingerprint: fmt.Sprintf("%016x", res.finger), K: res.k, Embeddings: eo.Embeddings, Format: eo.format(),
		Checkpoint: vi.checkpoint, ChangedOnly: vi.changedOnly, Since: vi.since}
	c := s.opts.Config
	man.Config.Factors, man.Config.Regularization, man.Config.FrequencyScaled = c.Factors, c.Regularization, c.FrequencyScaled
	man.Config.FrequencyExponent, man.Config.Alpha, man.Config.Iterations = c.FrequencyExponent, c.Alpha, c.Iterations
	man.Config.Solver, man.Config.CGSteps, man.Config.Seed = c.Solver.String(), c.CGSteps, c.Seed

	w := &exportWriter{fs: fs, dir: tmp, mem: mem}
	// Recommendations, in user key order.
	nu := len(res.userKeys)
	for lo := 0; lo < nu || lo == 0; {
		if err := ctx.Err(); err != nil {
			return err
		}
		bb := newRecBuilder(mem, b.out)
		rows := 0
		hi := lo
		for ; hi < nu && rows < exportPartRows; hi++ {
			bb.addUser(res, hi)
			rows += int(res.recCount[hi])
		}
		rec := bb.batch()
		bb.release()
		var err error
		if f := eo.format(); f == "parquet" {
			err = w.writePart(RecommendDir, []arrow.RecordBatch{rec}, recRowGroupRows)
		} else {
			err = w.writeTextPart(RecommendDir, rec, f)
		}
		rec.Release()
		if err != nil {
			return err
		}
		lo = hi
		if hi >= nu {
			break
		}
	}
	if eo.Embeddings {
		m := res.model
		if err := w.writeFactors(UserFactorsDir, b.userKind, res.userKeys, m.UserFactors, m.Factors, res.ui, b.itemKind, res.itemKeys); err != nil {
			return err
		}
		if err := w.writeFactors(ItemFactorsDir, b.itemKind, res.itemKeys, m.ItemFactors, m.Factors, nil, 0, nil); err != nil {
			return err
		}
	}
	man.Files = w.files
	mj, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return err
	}
	if err := w.writeFile(ModelFile, append(mj, '\n')); err != nil {
		return err
	}
	for _, d := range w.dirs {
		if err := fs.SyncDir(d); err != nil {
			return fmt.Errorf("ml: export: %w", err)
		}
	}
	if err := fs.SyncDir(root); err != nil {
		return fmt.Errorf("ml: export: %w", err)
	}
	hook("files")
	return nil
}

// publishVersion makes staged version v visible: its temporary directory
// renamed to vNNNNNN, the root synced, LATEST replaced (never by an older
// version), older versions beyond retain removed. Publishing a version
// already published does nothing but those last two steps, so a restore
// may publish again what a crash left half done.
func publishVersion(fs fsx.FS, root string, v int64, retain int) error {
	name := VersionName(v)
	final := filepath.Join(root, name)
	if _, err := fs.Stat(final); err != nil {
		if err := fs.Rename(stagedDir(root, v), final); err != nil {
			return fmt.Errorf("ml: export: %w", err)
		}
		if err := fs.SyncDir(root); err != nil {
			return fmt.Errorf("ml: export: %w", err)
		}
	}
	hook("version")
	cur, err := ReadLatest(fs, root)
	if err != nil {
		return err
	}
	if cur < v {
		if err := writeAtomic(fs, root, LatestFile, []byte(name+"\n")); err != nil {
			return err
		}
	}
	hook("latest")
	return retainVersions(fs, root, max(cur, v), retain)
}

// writeAtomic replaces dir/name with data: a synced temporary file renamed
// over it, then the directory synced.
func writeAtomic(fs fsx.FS, dir, name string, data []byte) error {
	tmp := filepath.Join(dir, exportTempPrefix+name)
	f, err := fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("ml: export: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("ml: export: %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("ml: export: %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("ml: export: %s: %w", tmp, err)
	}
	if err := fs.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("ml: export: %w", err)
	}
	if err := fs.SyncDir(dir); err != nil {
		return fmt.Errorf("ml: export: %w", err)
	}
	return nil
}

// retainVersions removes complete versions older than the newest retain
// (never current, which LATEST names).
func retainVersions(fs fsx.FS, root string, current int64, retain int) error {
	if retain == 0 {
		retain = DefaultRetain
	}
	vs, err := versionsOnDisk(fs, root)
	if err != nil {
		return err
	}
	removed := false
	for len(vs) > retain {
		if vs[0] != current {
			if err := fs.RemoveAll(filepath.Join(root, VersionName(vs[0]))); err != nil {
				return fmt.Errorf("ml: export: retain: %w", err)
			}
			removed = true
		}
		vs = vs[1:]
	}
	if removed {
		return fs.SyncDir(root)
	}
	return nil
}

// exportWriter writes the files of one version into its temporary
// directory, each synced, and remembers them.
type exportWriter struct {
	fs    fsx.FS
	dir   string
	mem   memory.Allocator
	files []string
	dirs  []string
	parts map[string]int
}

func (w *exportWriter) create(rel string) (fsx.File, error) {
	d := filepath.Dir(filepath.Join(w.dir, rel))
	if !slices.Contains(w.dirs, d) {
		if err := w.fs.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("ml: export: %w", err)
		}
		w.dirs = append(w.dirs, d)
	}
	f, err := w.fs.Create(filepath.Join(w.dir, rel))
	if err != nil {
		return nil, fmt.Errorf("ml: export: %w", err)
	}
	w.files = append(w.files, filepath.ToSlash(rel))
	return f, nil
}

func (w *exportWriter) finish(f fsx.File, rel string, err error) error {
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("ml: export: %s: %w", rel, err)
	}
	return nil
}

func (w *exportWriter) writeFile(rel string, data []byte) error {
	f, err := w.create(rel)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	return w.finish(f, rel, err)
}

// nextPart returns the name of the next part file of dir.
func (w *exportWriter) nextPart(dir, ext string) string {
	if w.parts == nil {
		w.parts = map[string]int{}
	}
	rel := filepath.Join(dir, fmt.Sprintf("part-%05d.%s", w.parts[dir], ext))
	w.parts[dir]++
	return rel
}

// writeTextPart writes rec as the next part file of dir in a text format
// (csv or jsonl), encoded as the file sink encodes it (arrowtext).
func (w *exportWriter) writeTextPart(dir string, rec arrow.RecordBatch, format string) error {
	rel := w.nextPart(dir, format)
	f, err := w.create(rel)
	if err != nil {
		return err
	}
	style := arrowtext.CSV
	if format == "jsonl" {
		style = arrowtext.JSON
	}
	tw, err := arrowtext.NewWriter(style, rec.Schema(), f, 1<<20)
	if err == nil {
		err = tw.Write(rec)
	}
	if err == nil {
		err = tw.Close()
	}
	if err := w.finish(f, rel, err); err != nil {
		return err
	}
	hook("part")
	return nil
}

// writePart writes recs as the next part file of dir, each record in
// row groups of at most rowGroup rows. It uses FileWriter.Write, not
// WriteBuffered. arrow-go v18.8.0 writes wrong values for a
// fixed_size_list column whenever a row group starts inside a record (the
// slice's offset is lost: every row group repeats the record's first
// rows); so factor files are written as one record per row group
// (writeFactors), never cut by the writer (TestExportReadBack reads
// such files back with Go and pyarrow).
func (w *exportWriter) writePart(dir string, recs []arrow.RecordBatch, rowGroup int64) error {
	rel := w.nextPart(dir, "parquet")
	f, err := w.create(rel)
	if err != nil {
		return err
	}
	props := parquet.NewWriterProperties(parquet.WithAllocator(w.mem), parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithMaxRowGroupLength(rowGroup), parquet.WithStats(true))
	// The parquet writer closes what it is given: hand it a writer that
	// cannot be closed, so the file is synced before it is closed.
	fw, err := pqarrow.NewFileWriter(recs[0].Schema(), writeOnly{f}, props, pqarrow.NewArrowWriterProperties(pqarrow.WithAllocator(w.mem), pqarrow.WithStoreSchema()))
	if err != nil {
		return w.finish(f, rel, err)
	}
	for _, rec := range recs {
		if err = fw.Write(rec); err != nil {
			break
		}
	}
	if cerr := fw.Close(); err == nil {
		err = cerr
	}
	if err := w.finish(f, rel, err); err != nil {
		return err
	}
	hook("part")
	return nil
}

// FactorSchema is the schema of an exported factor file: id (int64 or
// utf8) and factors (fixed_size_list<float32>[k]); user factor files
// also have seen, the ids of the user's items (list<item id>), which
// scoring from the embeddings excludes.
func FactorSchema(idType arrow.DataType, k int, seen arrow.DataType) *arrow.Schema {
	fields := []arrow.Field{
		{Name: "id", Type: idType},
		{Name: "factors", Type: arrow.FixedSizeListOf(int32(k), arrow.PrimitiveTypes.Float32)},
	}
	if seen != nil {
		fields = append(fields, arrow.Field{Name: "seen", Type: arrow.ListOf(seen)})
	}
	return arrow.NewSchema(fields, nil)
}

// writeFactors writes ids (in key order) and their factor rows, with
// each user's items when seen is set (the user×item matrix), in part
// files of exportPartRows rows and row groups of factorRowGroupRows.
func (w *exportWriter) writeFactors(dir string, kind idKind, keys [][]byte, factors []float32, k int, seen *Interactions, itemKind idKind, itemKeys [][]byte) error {
	var seenType arrow.DataType
	if seen != nil {
		seenType = itemKind.arrowType()
	}
	schema := FactorSchema(kind.arrowType(), k, seenType)
	for lo := 0; lo < len(keys) || lo == 0; lo += exportPartRows {
		hi := min(lo+exportPartRows, len(keys))
		var recs []arrow.RecordBatch
		for glo := lo; glo < hi || glo == lo; glo += int(factorRowGroupRows) {
			recs = append(recs, factorRecord(w.mem, schema, keys, factors, k, seen, itemKeys, glo, min(glo+int(factorRowGroupRows), hi)))
		}
		err := w.writePart(dir, recs, factorRowGroupRows)
		for _, r := range recs {
			r.Release()
		}
		if err != nil {
			return err
		}
		if hi >= len(keys) {
			break
		}
	}
	return nil
}

// factorRecord builds the factor record of rows [lo, hi).
func factorRecord(mem memory.Allocator, schema *arrow.Schema, keys [][]byte, factors []float32, k int, seen *Interactions, itemKeys [][]byte, lo, hi int) arrow.RecordBatch {
	rb := array.NewRecordBuilder(mem, schema)
	defer rb.Release()
	for _, key := range keys[lo:hi] {
		appendID(rb.Field(0), key)
	}
	lb := rb.Field(1).(*array.FixedSizeListBuilder)
	vb := lb.ValueBuilder().(*array.Float32Builder)
	for i := lo; i < hi; i++ {
		lb.Append(true)
		vb.AppendValues(factors[i*k:(i+1)*k], nil)
	}
	if seen != nil {
		sb := rb.Field(2).(*array.ListBuilder)
		for i := lo; i < hi; i++ {
			sb.Append(true)
			items, _ := seen.Row(i)
			for _, it := range items {
				appendID(sb.ValueBuilder(), itemKeys[it])
			}
		}
	}
	return rb.NewRecordBatch()
}

// fingerprint hashes the training input: FNV-1a over the (user key, item
// key, weight) triples in the order training sees them (sorted).
type fingerprint struct {
	h interface {
		Write([]byte) (int, error)
		Sum64() uint64
	}
}

func newFingerprint() *fingerprint { return &fingerprint{h: fnv.New64a()} }

func (f *fingerprint) add(user, item []byte, w float32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(len(user)))
	f.h.Write(b[:])
	f.h.Write(user)
	binary.LittleEndian.PutUint32(b[:], uint32(len(item)))
	f.h.Write(b[:])
	f.h.Write(item)
	binary.LittleEndian.PutUint32(b[:], math.Float32bits(w))
	f.h.Write(b[:])
}

func (f *fingerprint) sum() uint64 { return f.h.Sum64() }

// ReadManifest reads version v's _MODEL.json under root.
func ReadManifest(fs fsx.FS, root string, v int64) (*Manifest, error) {
	if fs == nil {
		fs = fsx.OSFS
	}
	p := filepath.Join(root, VersionName(v), ModelFile)
	f, err := fs.Open(p)
	if err != nil {
		return nil, fmt.Errorf("ml: export: %w", err)
	}
	defer f.Close()
	var m Manifest
	if err := json.NewDecoder(f).Decode(&m); err != nil {
		return nil, fmt.Errorf("ml: export: %s: %w", p, err)
	}
	return &m, nil
}

type writeOnly struct {
	w interface{ Write([]byte) (int, error) }
}

func (w writeOnly) Write(p []byte) (int, error) { return w.w.Write(p) }
