// Package kafkaretry is how riffle's Kafka source and sink ride out a
// broker that goes away for a while (a restart, a leader moving): which
// errors are worth retrying, what to call a failure in an error message,
// and a streak of failures retried with exponential backoff until it has
// lasted a deadline.
//
// A running job retries what a broker restart or a moving leader causes
// (network errors, Kafka errors the protocol calls retriable) for a Streak's
// Timeout, with backoff from Streak.Backoff doubling up to MaxBackoff;
// authentication failures, a deleted topic and permanent Kafka errors are
// not retried. Kind names what failed for errors and logs: "dial" for a
// connection that could not be opened, "authentication", else the caller's
// step. IsRetryable is the one classifier of Kafka errors: the Kafka
// source (its fetchers and the requests it makes before the job runs) and
// the Kafka sink's deliveries use it.
package kafkaretry
