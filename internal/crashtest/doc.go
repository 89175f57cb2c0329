// Package crashtest holds riffle's end-to-end crash test: a continuous
// windowed job run as a real `riffle run --checkpoint-dir` process against a
// real Kafka broker, SIGKILLed at random moments and restarted each time,
// whose committed output must equal a fault-free run's and DuckDB's: no
// missing rows, no duplicates. It has no non-test code.
//
// # Design
//
// The input is a topic of known content: rows of internal/gen (seeded),
// produced with sinks/kafka.Produce keyed by user_id, message timestamps
// being event times, paced so that the data keeps arriving while the job
// is killed. After the data, one sentinel message per partition carries an
// event time a day later (item_id -1): it moves every partition's watermark
// past the last data window, so every data window fires, while the
// sentinel's own window never does.
//
// The job is a tumbling 10-minute window per item (count and sum of
// weight) from the topic to a Parquet file sink (small parts, so a
// checkpoint publishes several), with --checkpoint-interval 300ms. The
// test builds the riffle binary once, then repeatedly starts it, each time
// at a random --parallelism from 1 to 3 (so every restore also rescales
// the Kafka source, the window's key groups and the sink's recovery), and
// kills it with SIGKILL, choosing for each kill (seeded math/rand; the seed is
// logged, RIFFLE_CRASH_SEED replays it) one of:
//
//   - a random delay after the start;
//   - right after a chk-N.inprogress directory appears (during a
//     checkpoint's write);
//   - right after a chk-N directory appears (the checkpoint committed, its
//     NotifyCheckpointComplete and the sinks' publishing under way);
//   - right after a new published part file appears (between the renames
//     of one commit).
//
// About one restart in six ends with a graceful stop instead: SIGTERM a
// random while after a checkpoint; the process must exit 0 and leave no
// part unpublished (its final checkpoint covers them all). These come on
// top of the kills.
//
// After every kill the published files are checked to be final: a file once
// published is never removed nor rewritten by a later run (a sink that
// published before the checkpoint completed, and rolled back on restore,
// fails here even when its final output is right).
//
// Then a last run goes on until its newest complete checkpoint covers every
// produced offset and its watermark (the minimum over all subtasks, the
// sink's included) passed the last data window, and is stopped with
// SIGTERM (a final checkpoint, exit 0). A fault-free run of the same job
// file over the same topic stops the same way. Both outputs and DuckDB's
// windows over the input Parquet file must be equal as multisets, and no
// (item, window) may appear twice.
//
// TestCrashRecoveryAggregate does the same to a continuous hash aggregate
// (filter, partial aggregate, hash exchange, final aggregate; 10 kills,
// while checkpoints are written or right after one committed, and graceful
// stops, at parallelism 1 to 3): nothing may be published while its input
// is only suspended, and a last run of the same job with bounded: true
// resumes from the newest checkpoint, drains the topic and must emit
// exactly DuckDB's totals.
//
// TestCrashRecoveryRolling runs the same job with parts rolled on time
// (roll_interval: 200ms, part_size at its 128 MiB default, which the job
// never reaches): it waits for a part to be published while the job runs,
// then kills a run once its newest complete checkpoint N has published
// parts (the sink's publish log says which checkpoint published a part)
// and an older complete checkpoint exists, corrupts N's MANIFEST, and
// waits for the next run to log that it restored the older checkpoint and
// kept the parts published after it; then 8 kills and graceful stops as
// above, a last run to the end of the data, and the DuckDB comparison.
// Every published file stays byte for byte as it was throughout.
//
// TestCrashRecoveryKafkaExactlyOnce (kafka_eos_test.go) runs a filter from
// the topic to an output topic through a Kafka sink with delivery:
// exactly-once (8 kills at random, while a checkpoint is written, right
// after one committed, and graceful stops, at parallelism 1 to 3), then a
// last bounded run that resumes and drains the topic, and a fault-free
// bounded run to a second topic. A read_committed consumer of each output
// topic (kafkatest.ReadAll) must see exactly DuckDB's rows of the input;
// a read_uncommitted consumer must see more rows (the aborted transactions
// of the killed runs), none foreign to the input. With delivery:
// at-least-once the same test fails (duplicates). It takes about 30 s.
//
// TestCrashRecoveryRecommend does it to the streaming recommender (a
// recommend step with update: every 500 interactions, Pebble state, a
// version exported at every checkpoint): 12 kills at random moments,
// while a checkpoint is written, right after one committed or right after
// a new export version appeared, and graceful stops, at parallelism 1 to
// 3. After every run a published version must be unchanged (its
// _MODEL.json hash) and never come back once retention removed it, LATEST
// must never move back and must name a version published by a checkpoint
// that completed, with all its files, and the lists of a sample of its
// users must be well formed (ranks 1..k, scores not increasing, no item of
// the user's history, every item known). A last run goes to the end of the
// topic; then every user's and item's stored history, read from the final
// checkpoint (ml.ReadHistories), must equal the fault-free run's and the
// input's, as multisets: each interaction applied exactly once. This test
// found that a job with Pebble state could not restart after a SIGKILL
// (the killed store's working directory was refused).
//
// Run it with a broker (scripts/kafka/README.md) and the oracle
// (scripts/python-env.sh):
//
//	eval "$(scripts/kafka/start.sh)"
//	go test ./internal/crashtest/ -run Crash -v
//	RIFFLE_CRASH_SEED=42 RIFFLE_CRASH_KILLS=40 go test ./internal/crashtest/ -v
//
// It is skipped with -short, and without RIFFLE_KAFKA_BROKERS unless
// RIFFLE_REQUIRE_KAFKA=1.
package crashtest
