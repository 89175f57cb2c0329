package job_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/riffle-dev/riffle/internal/oracle"
)

// todJobScript writes times of day in two units, with NULLs, over several
// row groups.
const todJobScript = `
import sys, random
import pyarrow as pa, pyarrow.parquet as pq
rng = random.Random(3)
n = 2000
def us(): return None if rng.random() < 0.15 else rng.randint(0, 86400 * 10**6 - 1)
b = [us() for _ in range(n)]
pq.write_table(pa.table({
  'id': pa.array(range(n), pa.int64()),
  't_s': pa.array([None if v is None else v // 10**6 for v in b], pa.time32('s')),
  't_us': pa.array(b, pa.time64('us')),
}), sys.argv[1], row_group_size=500)
`

// TestTimeOfDayJobMatchesDuckDB reads time32/time64 columns from Parquet,
// filters and projects them in a job and compares the written rows with
// DuckDB's on the same file.
func TestTimeOfDayJobMatchesDuckDB(t *testing.T) {
	py := oracle.Python(t)
	in := filepath.Join(t.TempDir(), "in.parquet")
	if out, err := exec.Command(py, "-c", todJobScript, in).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := canon(oracle.DuckDB(t, fmt.Sprintf(`SELECT id, extract(hour FROM t_s), CAST(t_us AS VARCHAR), CAST(t_s AS VARCHAR), t_s < t_us
FROM read_parquet('%s') WHERE t_us > TIME '12:00:00' OR t_s IS NULL`, in)).Strings())
	for _, p := range []int{1, 2} {
		t.Run(fmt.Sprintf("p=%d", p), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			runJob(t, fmt.Sprintf(`name: tod
source:
  parquet: {path: "%s", batch_size: 300}
steps:
  - filter: "t_us > CAST('12:00:00' AS time) OR t_s IS NULL"
  - project: {id: id, h: "extract(hour FROM t_s)", s: "CAST(t_us AS string)", t: t_s, lt: "t_s < t_us"}
sink:
  file: {path: %s, format: parquet}
`, in, out), p)
			got := canon(oracle.DuckDB(t, fmt.Sprintf(`SELECT id, h, s, CAST(t AS VARCHAR), lt FROM read_parquet('%s/*.parquet')`, out)).Strings())
			compareRows(t, got, want, make([]float64, 5))
		})
	}
}
