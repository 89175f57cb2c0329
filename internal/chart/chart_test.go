package chart

import (
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// decode reads a PNG and checks its size.
func decode(t *testing.T, path string) image.Image {
	t.Helper()
	img, err := DecodePNG(path)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < 600 || b.Dx() > 700 || b.Dy() < 380 || b.Dy() > 420 {
		t.Fatalf("%s: %v pixels, want about 640×400", path, b)
	}
	return img
}

func near(c color.Color, want color.RGBA, tol int) bool { return nearRGB(c, want, tol) }

func countNear(img image.Image, want color.RGBA, tol int) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if near(img.At(x, y), want, tol) {
				n++
			}
		}
	}
	return n
}

// TestLinesWriteRead: the CSV beside the PNG gives back exactly the points
// drawn, and the PNG is a real picture: mostly background, some ink, and
// every series' color on it.
func TestLinesWriteRead(t *testing.T) {
	dir := t.TempDir()
	l := &Lines{Title: "NDCG@K", XLabel: "K", YLabel: "NDCG", Series: []Series{
		{Name: "ials", X: []float64{1, 5, 10, 20}, Y: []float64{0.1, 0.2 / 3, 0.3, 1e-9}},
		{Name: "popularity", X: []float64{1, 5, 10, 20}, Y: []float64{0.05, 0.1, 0.15, 0.2}},
		{Name: "random", X: []float64{1, 20}, Y: []float64{0.01, 0.02}},
	}}
	png, err := l.Write(dir, "curves")
	if err != nil {
		t.Fatal(err)
	}
	if png != filepath.Join(dir, "curves.png") {
		t.Fatalf("path %s", png)
	}
	got, err := ReadLines(filepath.Join(dir, "curves.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, l.Series) {
		t.Fatalf("CSV gives back\n%v\nwant\n%v", got, l.Series)
	}
	img := decode(t, png)
	b := img.Bounds()
	total := b.Dx() * b.Dy()
	white := countNear(img, color.RGBA{255, 255, 255, 255}, 0)
	if white > total*99/100 || white < total/2 {
		t.Fatalf("%d of %d pixels are background", white, total)
	}
	for i, s := range l.Series {
		if n := countNear(img, SeriesColor(i), 8); n < 50 {
			t.Errorf("series %s: %d pixels of its color %v", s.Name, n, SeriesColor(i))
		}
	}
	if n := countNear(img, SeriesColor(len(l.Series)), 8); n > 0 {
		t.Errorf("%d pixels of an unused series color", n)
	}
	if err := Check(png, len(l.Series)); err != nil {
		t.Error(err)
	}
	if err := Check(png, len(l.Series)+1); err == nil {
		t.Error("Check finds a series color that was not drawn")
	}
	st, err := os.Stat(png)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d bytes", png, st.Size())
}

// barHeights measures, for each bar of color c from left to right, its
// height in pixels: bars are runs of adjacent columns whose longest
// vertical run of c is over 16 pixels (more than a legend's
// thumbnail); a bar's height is that run in its
// middle column.
func barHeights(img image.Image, c color.RGBA) []int {
	b := img.Bounds()
	run := make([]int, b.Dx())
	for x := b.Min.X; x < b.Max.X; x++ {
		cur := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			if near(img.At(x, y), c, 0) {
				cur++
				run[x-b.Min.X] = max(run[x-b.Min.X], cur)
			} else {
				cur = 0
			}
		}
	}
	var hs []int
	for x := 0; x < len(run); {
		if run[x] <= 16 {
			x++
			continue
		}
		start := x
		for x < len(run) && run[x] > 16 {
			x++
		}
		hs = append(hs, run[(start+x)/2])
	}
	return hs
}

// TestBarsHeightsAreValues: measured on the picture, every bar's height is
// proportional to its value (the axis starts at 0), bars of a group stand
// side by side in series order, and the CSV gives back the values.
func TestBarsHeightsAreValues(t *testing.T) {
	dir := t.TempDir()
	b := &Bars{Title: "rows/s", YLabel: "M rows/s", Groups: []string{"q1", "q2", "q3"}, Series: []BarSeries{
		{Name: "riffle", Values: []float64{4, 1, 2.5}},
		{Name: "duckdb", Values: []float64{2, 3, 0.5}},
	}}
	png, err := b.Write(dir, "bars")
	if err != nil {
		t.Fatal(err)
	}
	groups, series, err := ReadBars(filepath.Join(dir, "bars.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(groups, b.Groups) || !reflect.DeepEqual(series, b.Series) {
		t.Fatalf("CSV gives back %v %v", groups, series)
	}
	img := decode(t, png)
	var unit float64 // pixels per unit of value, from the first bar
	for i, s := range b.Series {
		hs := barHeights(img, SeriesColor(i))
		if len(hs) != len(s.Values) {
			t.Fatalf("series %s: %d bars on the picture (%v), want %d", s.Name, len(hs), hs, len(s.Values))
		}
		for j, v := range s.Values {
			if unit == 0 {
				unit = float64(hs[j]) / v
			}
			if want := v * unit; math.Abs(float64(hs[j])-want) > 2+0.02*want {
				t.Errorf("series %s, group %s: bar %d pixels high, want %.1f (value %v)", s.Name, b.Groups[j], hs[j], want, v)
			}
		}
	}
	// Series order within a group: the first series' bar is left of the
	// second's, so the leftmost ink column of series 0 comes first.
	left := func(c color.RGBA) int {
		bd := img.Bounds()
		for x := bd.Min.X; x < bd.Max.X; x++ {
			n := 0
			for y := bd.Min.Y; y < bd.Max.Y; y++ {
				if near(img.At(x, y), c, 0) {
					n++
				}
			}
			if n > 4 {
				return x
			}
		}
		return -1
	}
	if l0, l1 := left(SeriesColor(0)), left(SeriesColor(1)); !(l0 >= 0 && l0 < l1) {
		t.Errorf("first bars at x=%d and x=%d, want series 0 left of series 1", l0, l1)
	}
}

func TestValidate(t *testing.T) {
	for name, l := range map[string]*Lines{
		"no series":  {},
		"unnamed":    {Series: []Series{{X: []float64{1}, Y: []float64{1}}}},
		"repeated":   {Series: []Series{{Name: "a", X: []float64{1}, Y: []float64{1}}, {Name: "a", X: []float64{1}, Y: []float64{1}}}},
		"lengths":    {Series: []Series{{Name: "a", X: []float64{1, 2}, Y: []float64{1}}}},
		"empty":      {Series: []Series{{Name: "a"}}},
		"not finite": {Series: []Series{{Name: "a", X: []float64{1}, Y: []float64{math.NaN()}}}},
	} {
		if _, err := l.Write(t.TempDir(), "x"); err == nil {
			t.Errorf("lines %s: no error", name)
		}
	}
	for name, b := range map[string]*Bars{
		"no groups":     {Series: []BarSeries{{Name: "a"}}},
		"repeat group":  {Groups: []string{"g", "g"}, Series: []BarSeries{{Name: "a", Values: []float64{1, 2}}}},
		"short series":  {Groups: []string{"g", "h"}, Series: []BarSeries{{Name: "a", Values: []float64{1}}}},
		"infinite":      {Groups: []string{"g"}, Series: []BarSeries{{Name: "a", Values: []float64{math.Inf(1)}}}},
		"no series":     {Groups: []string{"g"}},
		"unnamed serie": {Groups: []string{"g"}, Series: []BarSeries{{Values: []float64{1}}}},
	} {
		if _, err := b.Write(t.TempDir(), "x"); err == nil {
			t.Errorf("bars %s: no error", name)
		}
	}
}
