package ml

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Export is a complete exported version opened for reading (riffle
// recommend). Ids are passed and returned as text: int64 ids in decimal.
type Export struct {
	Root     string
	Version  int64
	Manifest *Manifest
	dir      string
	mem      memory.Allocator
}

// OpenLatest opens the version LATEST names under root.
func OpenLatest(root string) (*Export, error) {
	v, err := ReadLatest(nil, root)
	if err != nil {
		return nil, err
	}
	if v == 0 {
		return nil, fmt.Errorf("ml: export: %s has no %s: no model exported there yet", root, LatestFile)
	}
	m, err := ReadManifest(nil, root, v)
	if err != nil {
		return nil, err
	}
	return &Export{Root: root, Version: v, Manifest: m, dir: filepath.Join(root, VersionName(v)), mem: memory.NewGoAllocator()}, nil
}

// Rec is one recommendation.
type Rec struct {
	Item  string  `json:"item_id"`
	Rank  int     `json:"rank"`
	Score float32 `json:"score"`
}

// idKey is the key encoding of a textual id of the export's id type.
func idKey(typ, id string) ([]byte, error) {
	if typ == "string" {
		return []byte(id), nil
	}
	v, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("ml: export: id %q is not an int64 (the export's ids are)", id)
	}
	return int64Key(v), nil
}

func (e *Export) files(dir string) []string {
	var out []string
	for _, f := range e.Manifest.Files {
		if filepath.Dir(filepath.FromSlash(f)) == dir {
			out = append(out, filepath.Join(e.dir, filepath.FromSlash(f)))
		}
	}
	return out
}

// chunkRange returns the key encodings of a column chunk's min and max.
func chunkRange(rg *metadata.RowGroupMetaData, typ string) (lo, hi []byte, ok bool) {
	cc, err := rg.ColumnChunk(0)
	if err != nil {
		return nil, nil, false
	}
	st, err := cc.Statistics()
	if err != nil || st == nil || !st.HasMinMax() {
		return nil, nil, false
	}
	switch s := st.(type) {
	case *metadata.Int64Statistics:
		return int64Key(s.Min()), int64Key(s.Max()), true
	case *metadata.ByteArrayStatistics:
		return s.Min(), s.Max(), typ == "string"
	}
	return nil, nil, false
}

// scan reads, from the files of dir, the row groups whose id range (the
// first column's statistics) may hold one of keys, and calls fn for every
// row whose id is one of them.
func (e *Export) scan(ctx context.Context, dir string, keys [][]byte, cols []int, fn func(rec arrow.RecordBatch, row int, key []byte) error) error {
	typ := e.Manifest.UserIDType
	if dir == ItemFactorsDir {
		typ = e.Manifest.ItemIDType
	}
	want := map[string]bool{}
	for _, k := range keys {
		want[string(k)] = true
	}
	for _, path := range e.files(dir) {
		pf, err := file.OpenParquetFile(path, false)
		if err != nil {
			return fmt.Errorf("ml: export: %s: %w", path, err)
		}
		var rgs []int
		md := pf.MetaData()
		for i := 0; i < md.NumRowGroups(); i++ {
			lo, hi, ok := chunkRange(md.RowGroup(i), typ)
			if keys == nil || !ok || slices.ContainsFunc(keys, func(k []byte) bool { return bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) <= 0 }) {
				rgs = append(rgs, i)
			}
		}
		if len(rgs) == 0 {
			pf.Close()
			continue
		}
		fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 16}, e.mem)
		if err != nil {
			pf.Close()
			return fmt.Errorf("ml: export: %s: %w", path, err)
		}
		rr, err := fr.GetRecordReader(ctx, cols, rgs)
		if err != nil {
			pf.Close()
			return fmt.Errorf("ml: export: %s: %w", path, err)
		}
		var kb []byte
		var kc keyColumn
		for rr.Next() {
			rec := rr.RecordBatch()
			kc.reset(rec.Column(0))
			for r := 0; r < int(rec.NumRows()); r++ {
				kb = kc.append(kb[:0], r)
				if keys != nil && !want[string(kb)] {
					continue
				}
				if err := fn(rec, r, kb); err != nil {
					rr.Release()
					pf.Close()
					return err
				}
			}
		}
		err = rr.Err()
		rr.Release()
		pf.Close()
		if err != nil {
			return fmt.Errorf("ml: export: %s: %w", path, err)
		}
	}
	return nil
}

// Lists returns the exported top-K lists of users (by id; users without
// a list are missing from the map).
func (e *Export) Lists(ctx context.Context, users []string) (map[string][]Rec, error) {
	if f := e.Manifest.Format; f != "" && f != "parquet" {
		return nil, fmt.Errorf("ml: export: %s: the lists are %s files, read here from Parquet only (an export with embeddings is answered from its factors)", e.dir, f)
	}
	keys, err := e.keys(e.Manifest.UserIDType, users)
	if err != nil {
		return nil, err
	}
	out := map[string][]Rec{}
	err = e.scan(ctx, RecommendDir, keys, []int{0, 1, 2, 3}, func(rec arrow.RecordBatch, r int, _ []byte) error {
		u := rec.Column(0).ValueStr(r)
		out[u] = append(out[u], Rec{Item: rec.Column(1).ValueStr(r), Rank: int(rec.Column(2).(*array.Int32).Value(r)),
			Score: rec.Column(3).(*array.Float32).Value(r)})
		return nil
	})
	for _, l := range out {
		slices.SortFunc(l, func(a, b Rec) int { return a.Rank - b.Rank })
	}
	return out, err
}

func (e *Export) keys(typ string, ids []string) ([][]byte, error) {
	keys := make([][]byte, len(ids))
	for i, id := range ids {
		k, err := idKey(typ, id)
		if err != nil {
			return nil, err
		}
		keys[i] = k
	}
	return keys, nil
}

// Factors is one side's exported embeddings.
type Factors struct {
	IDs     []string
	Index   map[string]int32
	K       int
	Factors []float32  // len(IDs)×K, row-major
	Seen    [][]string // user side: each user's items
}

// ReadFactors reads the embeddings of ids of one side (UserFactorsDir or
// ItemFactorsDir); ids nil reads all.
func (e *Export) ReadFactors(ctx context.Context, dir string, ids []string) (*Factors, error) {
	if !e.Manifest.Embeddings {
		return nil, fmt.Errorf("ml: export: version %s has no embeddings", VersionName(e.Version))
	}
	typ := e.Manifest.UserIDType
	if dir == ItemFactorsDir {
		typ = e.Manifest.ItemIDType
	}
	var keys [][]byte
	if ids != nil {
		var err error
		if keys, err = e.keys(typ, ids); err != nil {
			return nil, err
		}
	}
	f := &Factors{Index: map[string]int32{}, K: e.Manifest.Config.Factors}
	cols := []int{0, 1}
	if dir == UserFactorsDir {
		cols = append(cols, 2)
	}
	err := e.scan(ctx, dir, keys, cols, func(rec arrow.RecordBatch, r int, _ []byte) error {
		id := rec.Column(0).ValueStr(r)
		fl := rec.Column(1).(*array.FixedSizeList)
		vals := fl.ListValues().(*array.Float32).Float32Values()
		off := (fl.Offset() + r) * f.K
		f.Index[id] = int32(len(f.IDs))
		f.IDs = append(f.IDs, id)
		f.Factors = append(f.Factors, vals[off:off+f.K]...)
		if len(cols) == 3 {
			l := rec.Column(2).(*array.List)
			s, t := l.ValueOffsets(r)
			items := l.ListValues()
			var seen []string
			for j := s; j < t; j++ {
				seen = append(seen, items.ValueStr(int(j)))
			}
			f.Seen = append(f.Seen, seen)
		}
		return nil
	})
	return f, err
}
