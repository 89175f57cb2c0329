package checkpoint

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"
	"time"
)

// Summary describes a checkpoint for people (riffle checkpoints inspect).
type Summary struct {
	Path           string
	ID             uint64
	Savepoint      bool
	Time           time.Time
	Duration       time.Duration
	JobFingerprint string
	// SourceFingerprint is the manifest's, "" when the job set none.
	SourceFingerprint string
	Watermark         int64
	MaxParallelism    int
	Bytes             int64
	Files             int
	Nodes             []NodeSummary
	Sources           []SourcePosition
}

// NodeSummary describes one node of a checkpoint.
type NodeSummary struct {
	Name        string
	Parallelism int
	Source      bool
	Bytes       int64
	Files       int
	// KeyGroups counts in-memory key group blobs; SnapshotDirs the subtasks
	// that wrote state files of their own (Pebble).
	KeyGroups    int
	SnapshotDirs int
}

// Inspect loads and verifies the checkpoint in path (OS file system) and
// summarizes it.
func Inspect(path string) (*Summary, error) { return InspectFS(OSFS, path) }

// InspectFS is Inspect on fsys.
func InspectFS(fsys FS, path string) (*Summary, error) {
	c, err := LoadFS(fsys, path)
	if err != nil {
		return nil, err
	}
	return c.Summary(), nil
}

// Summary summarizes c.
func (c *Checkpoint) Summary() *Summary {
	m := &c.Manifest
	s := &Summary{
		Path: c.Path, ID: m.CheckpointID, Savepoint: m.Savepoint, Time: m.Time,
		Duration: time.Duration(m.DurationMS) * time.Millisecond, JobFingerprint: m.JobFingerprint, SourceFingerprint: m.SourceFingerprint,
		Watermark: m.Watermark, MaxParallelism: m.MaxParallelism, Bytes: m.Bytes(), Files: m.FileCount(),
		Sources: m.Sources,
	}
	for _, nm := range m.Nodes {
		ns := NodeSummary{Name: nm.Name, Parallelism: nm.Parallelism, Source: nm.Source}
		for _, sm := range nm.Subtasks {
			ns.Files += len(sm.Files)
			for _, f := range sm.Files {
				ns.Bytes += f.Size
			}
			ns.KeyGroups += len(sm.KeyGroups)
			if sm.SnapshotFiles {
				ns.SnapshotDirs++
			}
		}
		s.Nodes = append(s.Nodes, ns)
	}
	return s
}

// FormatWatermark renders a watermark: "none" before any event-time
// progress, "end" for the end of input, else the milliseconds and the UTC
// time they stand for.
func FormatWatermark(wm int64) string {
	switch wm {
	case math.MinInt64:
		return "none"
	case math.MaxInt64:
		return "end"
	}
	return fmt.Sprintf("%d (%s)", wm, time.UnixMilli(wm).UTC().Format("2006-01-02T15:04:05.000Z"))
}

// WriteSummary prints s (riffle checkpoints inspect).
func WriteSummary(w io.Writer, s *Summary) error {
	kind := "checkpoint"
	if s.Savepoint {
		kind = "savepoint"
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s %d\t%s\n", kind, s.ID, s.Path)
	fmt.Fprintf(tw, "time\t%s (took %v)\n", s.Time.Format(time.RFC3339Nano), s.Duration)
	fmt.Fprintf(tw, "job fingerprint\t%s\n", s.JobFingerprint)
	if s.SourceFingerprint != "" {
		fmt.Fprintf(tw, "source fingerprint\t%s\n", s.SourceFingerprint)
	}
	fmt.Fprintf(tw, "watermark\t%s\n", FormatWatermark(s.Watermark))
	fmt.Fprintf(tw, "max parallelism\t%d\n", s.MaxParallelism)
	fmt.Fprintf(tw, "size\t%d bytes in %d files\n", s.Bytes, s.Files)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nnodes:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tKIND\tSUBTASKS\tBYTES\tFILES\tKEY GROUPS\tSTATE DIRS")
	for _, n := range s.Nodes {
		k := "operator"
		if n.Source {
			k = "source"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\t%d\t%d\n", n.Name, k, n.Parallelism, n.Bytes, n.Files, n.KeyGroups, n.SnapshotDirs)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nsource positions:")
	for _, sp := range s.Sources {
		pos := string(sp.Position)
		switch {
		case len(sp.PositionBase64) > 0:
			pos = fmt.Sprintf("(%d bytes, not JSON)", len(sp.PositionBase64))
		case pos == "":
			pos = "(none)"
		}
		if _, err := fmt.Fprintf(w, "  %s/%d  %s\n", sp.Node, sp.Subtask, pos); err != nil {
			return err
		}
	}
	return nil
}

// WriteList prints the checkpoints of List (riffle checkpoints list): a
// table, then why each corrupt one failed verification.
func WriteList(w io.Writer, infos []Info) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tTIME\tBYTES\tWATERMARK\tPATH")
	var bad []Info
	for _, inf := range infos {
		status, tm, size, wm := "complete", "-", "-", "-"
		switch {
		case inf.InProgress:
			status = "in-progress"
		case inf.Err != nil:
			status = "CORRUPT"
			bad = append(bad, inf)
		default:
			if inf.Savepoint {
				status = "savepoint"
			}
			tm, size, wm = inf.Time.Format(time.RFC3339), fmt.Sprint(inf.Bytes), FormatWatermark(inf.Watermark)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", inf.ID, status, tm, size, wm, inf.Path)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, inf := range bad {
		if _, err := fmt.Fprintf(w, "corrupt: %s: %v\n", inf.Path, inf.Err); err != nil {
			return err
		}
	}
	return nil
}

// PrintList lists the checkpoints in dir to w: `riffle checkpoints list D`.
func PrintList(w io.Writer, dir string) error {
	infos, err := List(dir)
	if err != nil {
		return err
	}
	return WriteList(w, infos)
}

// PrintInspect verifies the checkpoint in path and prints its summary to
// w: `riffle checkpoints inspect PATH`. A corrupt checkpoint is an error
// (IsCorruption) naming the file and the reason.
func PrintInspect(w io.Writer, path string) error {
	s, err := Inspect(path)
	if err != nil {
		return err
	}
	return WriteSummary(w, s)
}
