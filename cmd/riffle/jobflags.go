package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/riffle-dev/riffle/job"
)

// makeOutputDirs creates the directories a job writes into that nothing
// else creates: the Kafka source's dead-letter file's directory. (File
// sinks and late outputs create their own.) A job file from examples/ then
// runs as is in a fresh clone.
func makeOutputDirs(spec *job.Spec) error {
	var ks []*job.KafkaSpec
	if k := spec.Source.Kafka; k != nil {
		ks = append(ks, k)
	}
	if h := spec.Source.Hybrid; h != nil && h.Kafka != nil {
		ks = append(ks, h.Kafka)
	}
	for _, k := range ks {
		if k.DeadLetterPath == "" {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(k.DeadLetterPath), 0o755); err != nil {
			return fmt.Errorf("%s: dead_letter_path: %w", spec.File, err)
		}
	}
	return nil
}

// checkOverrides refuses --output and --brokers (or --embedded-kafka) on a
// job that has nothing for them to override, instead of ignoring them.
func checkOverrides(spec *job.Spec, output, brokers, brokersFlag string) error {
	if output != "" && spec.Sink.File == nil {
		return fmt.Errorf("--output %s: the job's sink writes no files (--output overrides a file sink's path)", output)
	}
	kafka := spec.Source.Kafka != nil || spec.Source.Hybrid != nil || spec.Sink.Kafka != nil
	if brokers != "" && !kafka {
		return fmt.Errorf("%s: the job reads and writes no Kafka topic", brokersFlag)
	}
	return nil
}
