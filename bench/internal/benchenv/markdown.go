package benchenv

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/riffle-dev/riffle/internal/chart"
)

// Table reads dir/name.md, the Markdown a program wrote with --plot, and
// returns the cells of its tables' data rows (lines starting with "|",
// header and separator rows left out), trimmed; it fails unless there are
// n of them. Tests use it to check charts against the table they were
// drawn beside.
func Table(dir, name string, n int) ([][]string, error) {
	path := filepath.Join(dir, name+".md")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rows [][]string
	header := true
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "|") {
			header = true
			continue
		}
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if header {
			header = false // the next line is the separator
			continue
		}
		if strings.HasPrefix(cells[0], "---") {
			continue
		}
		rows = append(rows, cells)
	}
	if len(rows) != n {
		return nil, fmt.Errorf("%s: %d table rows, want %d", path, len(rows), n)
	}
	return rows, nil
}

// CheckBars checks the bar chart dir/name (PNG and CSV, package
// internal/chart) against table, the rows of the Markdown table it was
// drawn beside: one group per row, named by label(row), and for each
// series s the bar's value printed with format equal to cell cols[s].
func CheckBars(dir, name string, table [][]string, series []string, cols []int, format string, label func(row []string) string) error {
	if err := chart.Check(filepath.Join(dir, name+".png"), len(series)); err != nil {
		return err
	}
	groups, got, err := chart.ReadBars(filepath.Join(dir, name+".csv"))
	if err != nil {
		return err
	}
	if len(groups) != len(table) || len(got) != len(series) {
		return fmt.Errorf("%s: %d groups and %d series, want %d and %d", name, len(groups), len(got), len(table), len(series))
	}
	var errs []error
	for s := range series {
		if got[s].Name != series[s] {
			errs = append(errs, fmt.Errorf("%s: series %d is %q, want %q", name, s, got[s].Name, series[s]))
		}
	}
	for i, row := range table {
		if want := label(row); groups[i] != want {
			errs = append(errs, fmt.Errorf("%s: group %d is %q, the table's row %q", name, i, groups[i], want))
		}
		for s, col := range cols {
			if v := fmt.Sprintf(format, got[s].Values[i]); v != row[col] {
				errs = append(errs, fmt.Errorf("%s: %s, %s is %s, the table says %s", name, groups[i], got[s].Name, v, row[col]))
			}
		}
	}
	return errors.Join(errs...)
}

// Area is the integral of a rate curve drawn by Rate (or in its form): the
// sum of y_j·(x_j − x_{j−1}) with x_{−1} = 0. It fails on x that does not
// increase.
func Area(s chart.Series) (float64, error) {
	area, prev := 0.0, 0.0
	for j := range s.X {
		if s.X[j] <= prev {
			return 0, fmt.Errorf("%s: point %d at x=%v after x=%v", s.Name, j, s.X[j], prev)
		}
		area += s.Y[j] * (s.X[j] - prev)
		prev = s.X[j]
	}
	return area, nil
}

// CheckRates checks the rate chart dir/name (PNG and CSV, drawn from Rate
// curves or in their form): a drawn chart whose series are named series,
// in order, each integrating (Area, times scale) to its total within a
// relative 1e-6.
func CheckRates(dir, name string, series []string, totals []float64, scale float64) error {
	if err := chart.Check(filepath.Join(dir, name+".png"), len(series)); err != nil {
		return err
	}
	curves, err := chart.ReadLines(filepath.Join(dir, name+".csv"))
	if err != nil {
		return err
	}
	if len(curves) != len(series) {
		return fmt.Errorf("%s: %d series, want %d", name, len(curves), len(series))
	}
	var errs []error
	for i, c := range curves {
		if c.Name != series[i] {
			errs = append(errs, fmt.Errorf("%s: series %d is %q, want %q", name, i, c.Name, series[i]))
		}
		area, err := Area(c)
		if err != nil {
			return err
		}
		if area *= scale; math.Abs(area-totals[i]) > 1e-6*totals[i] {
			errs = append(errs, fmt.Errorf("%s: %s integrates to %.3f, want %v", name, c.Name, area, totals[i]))
		}
	}
	return errors.Join(errs...)
}
