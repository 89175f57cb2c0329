package job_test

import (
	"fmt"
	"testing"

	"github.com/riffle-dev/riffle/job"
)

// TestSpecServes: a recommend step serves when it learns on a stream
// (unbounded source, or update:) unless update: {serve: false}.
func TestSpecServes(t *testing.T) {
	const yml = "name: live\nsource:\n  kafka: {topic: t, bounded: %v, fields: [{name: user_id, type: int64}, {name: item_id, type: int64}]}\n" +
		"steps:\n  - recommend: {user: user_id, item: item_id, factors: 4, k: 3%s}\nsink:\n  file: {path: out}\n"
	for _, tc := range []struct {
		bounded bool
		update  string
		serves  bool
	}{
		{false, "", true},
		{true, "", false},
		{true, ", update: {every: 100}", true},
		{false, ", update: {serve: false}", false},
		{false, ", update: {serve: true}", true},
	} {
		spec, err := job.Parse("live.yaml", []byte(fmt.Sprintf(yml, tc.bounded, tc.update)))
		if err != nil {
			t.Fatal(err)
		}
		if spec.Serves() != tc.serves {
			t.Errorf("bounded %v%s: Serves() = %v", tc.bounded, tc.update, spec.Serves())
		}
	}
}
