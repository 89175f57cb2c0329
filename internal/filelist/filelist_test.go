package filelist

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func touch(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		p := filepath.Join(dir, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestResolve(t *testing.T) {
	d := t.TempDir()
	touch(t, d, "a.csv", "b.csv.gz", "c.txt", "_SUCCESS", ".a.csv.crc", "sub/d.csv", "_tmp/e.csv", ".hidden/f.csv", "sub/g.json")
	o := Options{Prefix: "csv", Extensions: []string{".csv"}}
	j := func(n string) string { return filepath.Join(d, n) }
	for _, tc := range []struct {
		paths []string
		want  []string
	}{
		{[]string{d}, []string{j("a.csv"), j("sub/d.csv")}},
		// A glob keeps what it matches whatever the extension, but not
		// names starting with '.' or '_'.
		{[]string{j("*")}, []string{j("a.csv"), j("b.csv.gz"), j("c.txt"), j("sub/d.csv")}},
		// An explicit file is read; duplicates collapse.
		{[]string{j("c.txt"), j("a.csv"), j("?.csv"), j("_SUCCESS")}, []string{j("_SUCCESS"), j("a.csv"), j("c.txt")}},
	} {
		got, err := Resolve(tc.paths, o)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Resolve(%v) = %v, want %v", tc.paths, got, tc.want)
		}
	}
	for _, tc := range []struct {
		paths []string
		want  string
	}{
		{[]string{j("missing.csv")}, "csv: " + j("missing.csv") + ": no such file"},
		{[]string{j("*.nope")}, "csv: no files match"},
		{[]string{j("_tmp/..")}, ""}, // resolves fine (d itself)
	} {
		_, err := Resolve(tc.paths, o)
		if tc.want == "" {
			if err != nil {
				t.Errorf("Resolve(%v): %v", tc.paths, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Resolve(%v) error = %v, want %q", tc.paths, err, tc.want)
		}
	}
	empty := t.TempDir()
	touch(t, empty, "x.txt")
	if _, err := Resolve([]string{empty}, o); err == nil || !strings.Contains(err.Error(), "no .csv files in directory") {
		t.Errorf("empty directory: %v", err)
	}
}
