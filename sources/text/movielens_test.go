package text

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/riffle-dev/riffle/internal/coerce"
	"github.com/riffle-dev/riffle/internal/oracle"
)

// MovieLensRatings is the shared copy of MovieLens ml-latest-small.
const movieLensRatings = "/work/shared/data/ml-latest-small/ratings.csv"

// TestMovieLensRatings reads ratings.csv as is, in many splits, and compares
// the row count and column sums with DuckDB's.
func TestMovieLensRatings(t *testing.T) {
	if _, err := os.Stat(movieLensRatings); err != nil {
		t.Skipf("%s not present: %v", movieLensRatings, err)
	}
	src, err := New(Options{Paths: []string{movieLensRatings}, Header: true, SplitSize: 256 << 10, Columns: []Column{
		{Name: "userId", Type: coerce.Int64}, {Name: "movieId", Type: coerce.Int64},
		{Name: "rating", Type: coerce.Float64}, {Name: "timestamp", Type: coerce.Int64}}})
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	got, err := readAll(t, src, 3, mem)
	if err != nil {
		t.Fatal(err)
	}
	var n, users, movies, ts int64
	var rating float64
	for _, rows := range got {
		for _, r := range rows {
			n++
			u, _ := strconv.ParseInt(r[0], 10, 64)
			m, _ := strconv.ParseInt(r[1], 10, 64)
			x, _ := strconv.ParseFloat(r[2], 64)
			s, _ := strconv.ParseInt(r[3], 10, 64)
			users, movies, rating, ts = users+u, movies+m, rating+x, ts+s
		}
	}
	want := oracle.DuckDB(t, fmt.Sprintf(`SELECT count(*), sum(userId), sum(movieId), sum(rating), sum(timestamp) FROM read_csv('%s', header = true, auto_detect = false,
		columns = {'userId': 'BIGINT', 'movieId': 'BIGINT', 'rating': 'DOUBLE', 'timestamp': 'BIGINT'})`, movieLensRatings)).Rows[0]
	if n != want[0].(int64) || users != want[1].(int64) || movies != want[2].(int64) || ts != want[4].(int64) ||
		math.Abs(rating-want[3].(float64)) > 1e-6 {
		t.Fatalf("riffle: %d rows, sums %d %d %g %d; duckdb %v", n, users, movies, rating, ts, want)
	}
	if src.Stats().Splits < 5 {
		t.Fatalf("%d splits", src.Stats().Splits)
	}
}
