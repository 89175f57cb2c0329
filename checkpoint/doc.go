// Package checkpoint will make riffle jobs exactly-once: a coordinator
// triggers checkpoints at an interval (arrowexec.Job.TriggerCheckpoint),
// sources inject barriers in-band, operators snapshot their keyed state
// (package state) when a barrier has aligned on all their inputs
// (arrowexec.Checkpointer, delivered through RunOptions.OnSnapshot), and the
// coordinator writes a complete checkpoint — every subtask's snapshot plus
// a checksummed manifest with the job fingerprint and source positions — to
// a checkpoint directory, atomically, before telling two-phase-commit sinks
// to publish (arrowexec.CheckpointListener).
//
// The runtime side of this contract (barrier injection and alignment,
// snapshots of finished sources, completion notifications) is implemented
// and tested in arrowexec; the coordinator, the on-disk format and restore
// land with the checkpoint issue.
package checkpoint
