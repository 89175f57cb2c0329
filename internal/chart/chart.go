package chart

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"image"
	"image/color"
	imgdraw "image/draw"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Width and Height are the size of every chart (at DPI dots per inch:
// 640×400 pixels).
const (
	Width  = 6.6667 * vg.Inch
	Height = 4.1667 * vg.Inch
	DPI    = 96
)

// Palette is the fill and line color of the i-th series (wrapping).
var Palette = []color.RGBA{
	{R: 31, G: 119, B: 180, A: 255},
	{R: 214, G: 39, B: 40, A: 255},
	{R: 44, G: 160, B: 44, A: 255},
	{R: 255, G: 127, B: 14, A: 255},
	{R: 148, G: 103, B: 189, A: 255},
	{R: 140, G: 86, B: 75, A: 255},
	{R: 227, G: 119, B: 194, A: 255},
}

// palette is what a PNG is stored with (to keep files small): black and
// white, 15 grays between, and each series color blended with white in 8
// steps. Drawn pixels map to the nearest entry, without dithering, so
// solid series colors stay exact.
var palette = func() color.Palette {
	p := color.Palette{color.White, color.Black}
	for i := 1; i < 16; i++ {
		v := uint8(i * 16)
		p = append(p, color.RGBA{v, v, v, 255})
	}
	for _, c := range Palette {
		for i := 1; i <= 8; i++ {
			mix := func(v uint8) uint8 { return uint8(255 - (255-int(v))*i/8) }
			p = append(p, color.RGBA{mix(c.R), mix(c.G), mix(c.B), 255})
		}
	}
	return p
}()

// SeriesColor is the color of series i.
func SeriesColor(i int) color.RGBA { return Palette[i%len(Palette)] }

// Series is one named curve: points (X[j], Y[j]) joined in order.
type Series struct {
	Name string
	X, Y []float64
}

// Lines is a line chart of one or more series on shared axes.
type Lines struct {
	Title, XLabel, YLabel string
	Series                []Series
}

// BarSeries is one named set of bars, one value per group.
type BarSeries struct {
	Name   string
	Values []float64
}

// Bars is a grouped bar chart: for each group (a label on the X axis) one
// bar per series, side by side, in series order.
type Bars struct {
	Title, YLabel string
	Groups        []string
	Series        []BarSeries
}

// Validate reports a chart that cannot be drawn: no series, a nameless or
// repeated series, X and Y of different lengths, an empty series or a value
// that is not finite.
func (l *Lines) Validate() error {
	if len(l.Series) == 0 {
		return fmt.Errorf("chart %q: no series", l.Title)
	}
	seen := map[string]bool{}
	for _, s := range l.Series {
		if s.Name == "" || seen[s.Name] {
			return fmt.Errorf("chart %q: series name %q empty or repeated", l.Title, s.Name)
		}
		seen[s.Name] = true
		if len(s.X) != len(s.Y) || len(s.X) == 0 {
			return fmt.Errorf("chart %q: series %q has %d x and %d y values", l.Title, s.Name, len(s.X), len(s.Y))
		}
		for j := range s.X {
			if !finite(s.X[j]) || !finite(s.Y[j]) {
				return fmt.Errorf("chart %q: series %q point %d (%v, %v) is not finite", l.Title, s.Name, j, s.X[j], s.Y[j])
			}
		}
	}
	return nil
}

// Validate reports a chart that cannot be drawn: no group or series, a
// nameless or repeated series or group, a series without one value per
// group, or a value that is not finite.
func (b *Bars) Validate() error {
	if len(b.Groups) == 0 || len(b.Series) == 0 {
		return fmt.Errorf("chart %q: %d groups, %d series", b.Title, len(b.Groups), len(b.Series))
	}
	groups := map[string]bool{}
	for _, g := range b.Groups {
		if g == "" || groups[g] {
			return fmt.Errorf("chart %q: group %q empty or repeated", b.Title, g)
		}
		groups[g] = true
	}
	seen := map[string]bool{}
	for _, s := range b.Series {
		if s.Name == "" || seen[s.Name] {
			return fmt.Errorf("chart %q: series name %q empty or repeated", b.Title, s.Name)
		}
		seen[s.Name] = true
		if len(s.Values) != len(b.Groups) {
			return fmt.Errorf("chart %q: series %q has %d values for %d groups", b.Title, s.Name, len(s.Values), len(b.Groups))
		}
		for j, v := range s.Values {
			if !finite(v) {
				return fmt.Errorf("chart %q: series %q, group %q: value %v is not finite", b.Title, s.Name, b.Groups[j], v)
			}
		}
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Write draws the chart to dir/name.png and writes its points to
// dir/name.csv (series,x,y), creating dir. It returns the PNG's path.
func (l *Lines) Write(dir, name string) (string, error) {
	if err := l.Validate(); err != nil {
		return "", err
	}
	p := newPlot(l.Title, l.XLabel, l.YLabel)
	for i, s := range l.Series {
		xys := make(plotter.XYs, len(s.X))
		for j := range s.X {
			xys[j] = plotter.XY{X: s.X[j], Y: s.Y[j]}
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return "", fmt.Errorf("chart %q: series %q: %w", l.Title, s.Name, err)
		}
		c := SeriesColor(i)
		line.Color, line.Width = c, vg.Points(2)
		points.Color, points.Shape, points.Radius = c, draw.CircleGlyph{}, vg.Points(2.5)
		p.Add(line, points)
		p.Legend.Add(s.Name, line, points)
	}
	headroom(p)
	rows := [][]string{{"series", "x", "y"}}
	for _, s := range l.Series {
		for j := range s.X {
			rows = append(rows, []string{s.Name, num(s.X[j]), num(s.Y[j])})
		}
	}
	return write(p, dir, name, rows)
}

// Write draws the chart to dir/name.png and writes its values to
// dir/name.csv (group,series,value), creating dir. It returns the PNG's
// path.
func (b *Bars) Write(dir, name string) (string, error) {
	if err := b.Validate(); err != nil {
		return "", err
	}
	p := newPlot(b.Title, "", b.YLabel)
	n := len(b.Series)
	// Bars of a group share about 70% of the space between two group
	// centers, whatever the number of groups.
	slot := 0.7 * float64(Width-vg.Inch) / float64(len(b.Groups)*n)
	w := vg.Length(math.Min(slot, float64(vg.Points(40))))
	for i, s := range b.Series {
		bar, err := plotter.NewBarChart(plotter.Values(s.Values), w)
		if err != nil {
			return "", fmt.Errorf("chart %q: series %q: %w", b.Title, s.Name, err)
		}
		bar.Color = SeriesColor(i)
		bar.LineStyle.Width = 0
		bar.Offset = vg.Length(float64(i)-float64(n-1)/2) * w
		p.Add(bar)
		p.Legend.Add(s.Name, bar)
	}
	p.NominalX(b.Groups...)
	// Half a group of space beside the outer groups, and the Y axis from 0
	// so that bar heights compare.
	p.X.Min, p.X.Max = -0.5, float64(len(b.Groups))-0.5
	p.Y.Min = math.Min(p.Y.Min, 0)
	headroom(p)
	rows := [][]string{{"group", "series", "value"}}
	for _, s := range b.Series {
		for j, v := range s.Values {
			rows = append(rows, []string{b.Groups[j], s.Name, num(v)})
		}
	}
	return write(p, dir, name, rows)
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, x, y
	p.Legend.Top = true
	p.Legend.Padding = vg.Points(2)
	p.Add(plotter.NewGrid()) // first, so that the data is drawn over it
	return p
}

// headroom raises the Y axis's top by a fifth of the data's span so that
// the legend (top right) does not cover the data.
func headroom(p *plot.Plot) {
	p.Y.Max += 0.2 * (p.Y.Max - p.Y.Min)
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// write renders p to dir/name.png (best compression) and rows to
// dir/name.csv.
func write(p *plot.Plot, dir, name string, rows [][]string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("chart: %w", err)
	}
	c := vgimg.NewWith(vgimg.UseWH(Width, Height), vgimg.UseDPI(DPI), vgimg.UseBackgroundColor(color.White))
	p.Draw(draw.New(c))
	pngPath := filepath.Join(dir, name+".png")
	img := c.Image()
	small := image.NewPaletted(img.Bounds(), palette)
	imgdraw.Draw(small, img.Bounds(), img, img.Bounds().Min, imgdraw.Src)
	if err := writeFile(pngPath, func(w io.Writer) error {
		return (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(w, small)
	}); err != nil {
		return "", err
	}
	csvPath := filepath.Join(dir, name+".csv")
	if err := writeFile(csvPath, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		if err := cw.WriteAll(rows); err != nil {
			return err
		}
		return cw.Error()
	}); err != nil {
		return "", err
	}
	return pngPath, nil
}

func writeFile(path string, fill func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	bw := bufio.NewWriter(f)
	err = fill(bw)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("chart: %s: %w", path, err)
	}
	return nil
}

// ReadLines reads a line chart's CSV (series,x,y) back into its series, in
// the order they appear.
func ReadLines(path string) ([]Series, error) {
	rows, err := readCSV(path, "series", "x", "y")
	if err != nil {
		return nil, err
	}
	var out []Series
	index := map[string]int{}
	for n, r := range rows {
		x, err1 := strconv.ParseFloat(r[1], 64)
		y, err2 := strconv.ParseFloat(r[2], 64)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("chart: %s:%d: %w", path, n+2, err)
		}
		i, ok := index[r[0]]
		if !ok {
			i = len(out)
			index[r[0]] = i
			out = append(out, Series{Name: r[0]})
		}
		out[i].X, out[i].Y = append(out[i].X, x), append(out[i].Y, y)
	}
	return out, nil
}

// ReadBars reads a bar chart's CSV (group,series,value) back into its
// groups and series, in the order they appear.
func ReadBars(path string) ([]string, []BarSeries, error) {
	rows, err := readCSV(path, "group", "series", "value")
	if err != nil {
		return nil, nil, err
	}
	var groups []string
	var out []BarSeries
	gi, si := map[string]int{}, map[string]int{}
	for n, r := range rows {
		v, err := strconv.ParseFloat(r[2], 64)
		if err != nil {
			return nil, nil, fmt.Errorf("chart: %s:%d: %w", path, n+2, err)
		}
		if _, ok := gi[r[0]]; !ok {
			gi[r[0]] = len(groups)
			groups = append(groups, r[0])
		}
		i, ok := si[r[1]]
		if !ok {
			i = len(out)
			si[r[1]] = i
			out = append(out, BarSeries{Name: r[1]})
		}
		if len(out[i].Values) != gi[r[0]] {
			return nil, nil, fmt.Errorf("chart: %s:%d: series %q: group %q out of order", path, n+2, r[1], r[0])
		}
		out[i].Values = append(out[i].Values, v)
	}
	return groups, out, nil
}

func readCSV(path string, header ...string) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("chart: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReader(f))
	r.FieldsPerRecord = len(header)
	rows, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("chart: %s: %w", path, err)
	}
	if len(rows) == 0 || fmt.Sprint(rows[0]) != fmt.Sprint(header) {
		return nil, fmt.Errorf("chart: %s: header is not %v", path, header)
	}
	return rows[1:], nil
}

// DecodePNG reads and decodes a PNG file.
func DecodePNG(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("chart: %w", err)
	}
	defer f.Close()
	img, err := png.Decode(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("chart: %s: %w", path, err)
	}
	return img, nil
}

// Check decodes the PNG at path and reports one that is not a drawn chart:
// smaller than 100×100 pixels, nearly blank (under 1% of the pixels differ
// from the top-left one) or without each of the first series colors
// (at least 20 pixels within 8 levels of SeriesColor(i), i < series).
// Tests of the charts' callers use it.
func Check(path string, series int) error {
	img, err := DecodePNG(path)
	if err != nil {
		return err
	}
	b := img.Bounds()
	if b.Dx() < 100 || b.Dy() < 100 {
		return fmt.Errorf("chart: %s: %v pixels", path, b)
	}
	bg := img.At(b.Min.X, b.Min.Y)
	ink := 0
	found := make([]int, series)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := img.At(x, y)
			if c != bg {
				ink++
			}
			for i := range found {
				if nearRGB(c, SeriesColor(i), 8) {
					found[i]++
				}
			}
		}
	}
	if ink*100 < b.Dx()*b.Dy() {
		return fmt.Errorf("chart: %s: nearly blank (%d pixels drawn)", path, ink)
	}
	for i, n := range found {
		if n < 20 {
			return fmt.Errorf("chart: %s: series %d's color drawn on %d pixels", path, i, n)
		}
	}
	return nil
}

func nearRGB(c color.Color, want color.RGBA, tol int) bool {
	r, g, b, _ := c.RGBA()
	d := func(v uint32, w uint8) bool { x := int(v>>8) - int(w); return x <= tol && -x <= tol }
	return d(r, want.R) && d(g, want.G) && d(b, want.B)
}
