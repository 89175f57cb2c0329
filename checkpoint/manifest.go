package checkpoint

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"net/url"
	"strings"
	"time"
)

// FormatVersion is the version of the checkpoint layout and manifest this
// package writes and reads.
const FormatVersion = 1

// Names inside a checkpoint directory. Names starting with '_' in a subtask
// directory are reserved for the coordinator; an operator writing files
// through Task.SnapshotDir must not use them.
const (
	ManifestName     = "MANIFEST"
	OperatorFileName = "_operator"
	KeyGroupFileName = "_keygroups"
	inProgressSuffix = ".inprogress"
	checkpointPrefix = "chk-"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Manifest describes one complete checkpoint. It is stored as indented JSON
// in the checkpoint's MANIFEST file, whose last member is a CRC-32C of
// everything before it (see the package documentation).
type Manifest struct {
	FormatVersion  int    `json:"format_version"`
	JobFingerprint string `json:"job_fingerprint"`
	// SourceFingerprint is Options.SourceFingerprint, when set.
	SourceFingerprint string `json:"source_fingerprint,omitempty"`
	CheckpointID      uint64 `json:"checkpoint_id"`
	// Savepoint is set for savepoints (TriggerSavepoint, StopWithSavepoint).
	Savepoint bool `json:"savepoint,omitempty"`
	// Time is when the checkpoint was triggered; DurationMS how long it
	// took from the trigger to the manifest.
	Time       time.Time `json:"time"`
	DurationMS int64     `json:"duration_ms"`
	// Watermark is the minimum over every operator subtask's watermark at
	// its snapshot (sources left out: operators already take the minimum
	// over their active inputs; idle subtasks left out, as their
	// downstream does): the event time the whole job had reached.
	Watermark      int64          `json:"watermark"`
	MaxParallelism int            `json:"max_parallelism"`
	Nodes          []NodeManifest `json:"nodes"`
	// Sources repeats the operator state of every source subtask (its
	// position: Kafka offsets per partition, Parquet files and row groups)
	// so it can be read without tools.
	Sources []SourcePosition `json:"sources"`
}

// NodeManifest describes the snapshots of one node.
type NodeManifest struct {
	Name string `json:"name"`
	// Dir is the node's directory, relative to the checkpoint (the node
	// name, path-escaped).
	Dir         string            `json:"dir"`
	Parallelism int               `json:"parallelism"`
	Source      bool              `json:"source,omitempty"`
	Subtasks    []SubtaskManifest `json:"subtasks"`
}

// SubtaskManifest describes the snapshot of one subtask.
type SubtaskManifest struct {
	Subtask int `json:"subtask"`
	// Dir is the subtask's directory relative to the checkpoint,
	// "<node dir>/<subtask>", with '/' separators.
	Dir       string `json:"dir"`
	Watermark int64  `json:"watermark"`
	// Operator names the file holding the subtask's operator state
	// (SubtaskSnapshot.Operator), "" when it had none.
	Operator string `json:"operator,omitempty"`
	// KeyGroups locates the in-memory key group blobs
	// (SubtaskSnapshot.KeyGroups) inside KeyGroupFileName.
	KeyGroups []KeyGroupBlob `json:"key_groups,omitempty"`
	// SnapshotFiles is set when the subtask wrote files of its own through
	// Task.SnapshotDir; Dir is then one of RestoreState.Dirs on restore.
	SnapshotFiles bool `json:"snapshot_files,omitempty"`
	// Files lists every file under Dir (the coordinator's and the
	// operator's), relative to Dir with '/' separators.
	Files []FileInfo `json:"files"`
}

// KeyGroupBlob is one key group's blob inside a subtask's key group file.
type KeyGroupBlob struct {
	KeyGroup int   `json:"key_group"`
	Offset   int64 `json:"offset"`
	Size     int64 `json:"size"`
}

// FileInfo is one file of a checkpoint with its size and CRC-32C.
type FileInfo struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	CRC32C uint32 `json:"crc32c"`
}

// SourcePosition is the operator state of one source subtask. Position
// holds it verbatim when it is JSON (riffle's sources write JSON), else
// PositionBase64 holds the bytes.
type SourcePosition struct {
	Node           string          `json:"node"`
	Subtask        int             `json:"subtask"`
	Position       json.RawMessage `json:"position,omitempty"`
	PositionBase64 []byte          `json:"position_base64,omitempty"`
}

func sourcePosition(node string, subtask int, blob []byte) SourcePosition {
	sp := SourcePosition{Node: node, Subtask: subtask}
	switch {
	case len(blob) == 0:
	case json.Valid(blob):
		var b bytes.Buffer
		if json.Compact(&b, blob) == nil {
			sp.Position = b.Bytes()
		} else {
			sp.PositionBase64 = blob
		}
	default:
		sp.PositionBase64 = blob
	}
	return sp
}

// Bytes returns the total size of the checkpoint's files (not counting the
// MANIFEST).
func (m *Manifest) Bytes() int64 {
	var n int64
	for _, nm := range m.Nodes {
		for _, sm := range nm.Subtasks {
			for _, f := range sm.Files {
				n += f.Size
			}
		}
	}
	return n
}

// Node returns the manifest of node name, or nil.
func (m *Manifest) Node(name string) *NodeManifest {
	for i := range m.Nodes {
		if m.Nodes[i].Name == name {
			return &m.Nodes[i]
		}
	}
	return nil
}

const checksumMember = ",\n  \"checksum\": \"crc32c:"

// encodeManifest renders m as indented JSON whose last member is the
// CRC-32C of the bytes before that member.
func encodeManifest(m *Manifest) ([]byte, error) {
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if !bytes.HasSuffix(js, []byte("\n}")) {
		return nil, fmt.Errorf("checkpoint: unexpected manifest encoding")
	}
	body := js[:len(js)-2]
	crc := crc32.Checksum(body, castagnoli)
	out := append(body, checksumMember...)
	out = fmt.Appendf(out, "%08x\"\n}\n", crc)
	return out, nil
}

// decodeManifest verifies the checksum of a MANIFEST and parses it. name
// is used in errors.
func decodeManifest(name string, data []byte) (*Manifest, error) {
	i := bytes.LastIndex(data, []byte(checksumMember))
	if i < 0 {
		return nil, corrupt(name, "no checksum (truncated?)")
	}
	tail := data[i+len(checksumMember):]
	if len(tail) != 8+len("\"\n}\n") || string(tail[8:]) != "\"\n}\n" {
		return nil, corrupt(name, "malformed checksum member (truncated?)")
	}
	var sum [4]byte
	if _, err := hex.Decode(sum[:], tail[:8]); err != nil {
		return nil, corrupt(name, "malformed checksum")
	}
	want := uint32(sum[0])<<24 | uint32(sum[1])<<16 | uint32(sum[2])<<8 | uint32(sum[3])
	if got := crc32.Checksum(data[:i], castagnoli); got != want {
		return nil, corrupt(name, "checksum mismatch")
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, corrupt(name, "%v", err)
	}
	for i := range m.Sources {
		// MarshalIndent indented the positions; give them back compact.
		if p := m.Sources[i].Position; len(p) > 0 {
			var b bytes.Buffer
			if json.Compact(&b, p) == nil {
				m.Sources[i].Position = b.Bytes()
			}
		}
	}
	if m.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("%w: %s: format version %d, want %d", ErrIncompatible, name, m.FormatVersion, FormatVersion)
	}
	if err := m.check(); err != nil {
		return nil, corrupt(name, "%v", err)
	}
	return &m, nil
}

// check verifies the manifest's internal consistency.
func (m *Manifest) check() error {
	if m.MaxParallelism < 1 {
		return fmt.Errorf("max_parallelism %d", m.MaxParallelism)
	}
	seen := map[string]bool{}
	for _, nm := range m.Nodes {
		if seen[nm.Name] {
			return fmt.Errorf("node %q twice", nm.Name)
		}
		seen[nm.Name] = true
		if nm.Dir != nodeDirName(nm.Name) {
			return fmt.Errorf("node %q: dir %q", nm.Name, nm.Dir)
		}
		if nm.Parallelism < 1 || len(nm.Subtasks) != nm.Parallelism {
			return fmt.Errorf("node %q: parallelism %d with %d subtasks", nm.Name, nm.Parallelism, len(nm.Subtasks))
		}
		for i, sm := range nm.Subtasks {
			if sm.Subtask != i || sm.Dir != subtaskDirName(nm.Name, i) {
				return fmt.Errorf("node %q: subtask %d out of order or misplaced", nm.Name, i)
			}
			files := map[string]FileInfo{}
			for _, f := range sm.Files {
				if f.Name == "" || strings.HasPrefix(f.Name, "/") || strings.Contains("/"+f.Name+"/", "/../") {
					return fmt.Errorf("node %q subtask %d: bad file name %q", nm.Name, i, f.Name)
				}
				files[f.Name] = f
			}
			if sm.Operator != "" {
				if _, ok := files[sm.Operator]; !ok {
					return fmt.Errorf("node %q subtask %d: operator file %q not listed", nm.Name, i, sm.Operator)
				}
			}
			if len(sm.KeyGroups) > 0 {
				kf, ok := files[KeyGroupFileName]
				if !ok {
					return fmt.Errorf("node %q subtask %d: key group file not listed", nm.Name, i)
				}
				for _, kg := range sm.KeyGroups {
					if kg.KeyGroup < 0 || kg.KeyGroup >= m.MaxParallelism || kg.Offset < 0 || kg.Size < 0 || kg.Size > kf.Size || kg.Offset > kf.Size-kg.Size {
						return fmt.Errorf("node %q subtask %d: key group %d out of range", nm.Name, i, kg.KeyGroup)
					}
				}
			}
		}
	}
	return nil
}

// nodeDirName is the directory name of a node: its name, path-escaped so
// any node name is one safe path element.
func nodeDirName(node string) string {
	s := url.PathEscape(node)
	if s == "." || s == ".." || strings.HasPrefix(s, "_") {
		s = "%" + fmt.Sprintf("%02X", s[0]) + s[1:]
	}
	return s
}

func subtaskDirName(node string, subtask int) string {
	return nodeDirName(node) + "/" + fmt.Sprint(subtask)
}

// checkpointDirName is the directory name of complete checkpoint id.
func checkpointDirName(id uint64) string { return fmt.Sprintf("%s%d", checkpointPrefix, id) }

// parseCheckpointDirName parses "chk-<id>" and "chk-<id>.inprogress".
func parseCheckpointDirName(name string) (id uint64, inProgress, ok bool) {
	rest, found := strings.CutPrefix(name, checkpointPrefix)
	if !found {
		return 0, false, false
	}
	rest, inProgress = strings.CutSuffix(rest, inProgressSuffix)
	if rest == "" || (len(rest) > 1 && rest[0] == '0') {
		return 0, false, false
	}
	for _, c := range rest {
		if c < '0' || c > '9' {
			return 0, false, false
		}
		id = id*10 + uint64(c-'0')
	}
	return id, inProgress, true
}
