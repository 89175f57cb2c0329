package kafka

import (
	"context"
	"encoding/json"
	"fmt"
)

// CommitSnapshots commits to Options.GroupID the positions held in reader
// snapshots (SubtaskSnapshot.Operator blobs, e.g. the final ones of a job
// stopped gracefully), so that a job restarted with start: committed goes on
// exactly where this one stopped. Without a GroupID it does nothing.
func (s *Source) CommitSnapshots(ctx context.Context, blobs [][]byte) error {
	if s.o.GroupID == "" {
		return nil
	}
	pos := map[string]map[int]int64{}
	for i, blob := range blobs {
		if len(blob) == 0 {
			continue
		}
		var m map[string]map[int]int64
		if err := json.Unmarshal(blob, &m); err != nil {
			return fmt.Errorf("kafka: positions of subtask %d: %w", i, err)
		}
		for t, ps := range m {
			if pos[t] == nil {
				pos[t] = map[int]int64{}
			}
			for p, off := range ps {
				pos[t][p] = off
			}
		}
	}
	if len(pos) == 0 {
		return nil
	}
	return s.commit(ctx, pos)
}
