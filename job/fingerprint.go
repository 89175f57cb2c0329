package job

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"gopkg.in/yaml.v3"
)

// Fingerprints identify a job file for checkpoint restores
// (checkpoint.Options.JobFingerprint and SourceFingerprint).
//
// Job hashes everything that shapes the state: the steps and the sink, as
// parsed YAML (comments and layout do not count). Source hashes the
// source block with its watermark. Name, parallelism and command-line
// flags (output, brokers) are left out, so a job restores at another
// parallelism or into another directory; so are the settings of a Kafka
// source that do not change what its positions mean (bounded,
// max_batch_rows, max_batch_delay, retry_timeout), so a continuous job's
// checkpoint resumes in a bounded run of the same topic that drains it.
//
// A checkpoint restores only into a job with the same Job fingerprint
// (checkpoint.ErrFingerprintMismatch); with another Source fingerprint the
// operators' state and watermark are restored and the sources start from
// their configured start: a Kafka job continues from a Parquet backfill's
// savepoint.
type Fingerprints struct {
	Job, Source string
}

// FingerprintsOf returns the fingerprints of the job file data (YAML).
func FingerprintsOf(data []byte) (Fingerprints, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Fingerprints{}, fmt.Errorf("job: fingerprint: %w", err)
	}
	var fp Fingerprints
	var err error
	source := sourceIdentity(doc["source"])
	if named, ok := doc["sources"].(map[string]any); ok {
		// A DAG job (sources:): each named source's identity.
		ids := make(map[string]any, len(named))
		for name, v := range named {
			ids[name] = sourceIdentity(v)
		}
		source = map[string]any{"sources": ids}
	}
	if fp.Source, err = fingerprint("source", source); err != nil {
		return Fingerprints{}, err
	}
	shape := map[string]any{"steps": doc["steps"], "sink": doc["sink"]}
	if sinks, ok := doc["sinks"]; ok {
		shape["sinks"] = sinks // DAG jobs only: linear jobs keep their fingerprint
	}
	if fp.Job, err = fingerprint("job", shape); err != nil {
		return Fingerprints{}, err
	}
	return fp, nil
}

func fingerprint(kind string, v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("job: %s fingerprint: %w", kind, err)
	}
	h := sha256.Sum256(append([]byte("riffle-"+kind+"/2\n"), b...))
	return hex.EncodeToString(h[:16]), nil
}

// sourceIdentity is the part of a source block that decides what its
// positions mean: a Kafka source's bounded flag (where it stops) and
// micro-batching and retry settings are left out.
func sourceIdentity(src any) any {
	m, ok := src.(map[string]any)
	if !ok {
		return src
	}
	k, ok := m["kafka"].(map[string]any)
	if !ok {
		return src
	}
	kk := make(map[string]any, len(k))
	for name, v := range k {
		switch name {
		case "bounded", "max_batch_rows", "max_batch_delay", "retry_timeout":
		default:
			kk[name] = v
		}
	}
	out := make(map[string]any, len(m))
	for name, v := range m {
		out[name] = v
	}
	out["kafka"] = kk
	return out
}
