// Package exectest holds test doubles for arrowexec graphs: an in-memory
// source that splits given batches across subtasks, a collecting sink,
// an operator built from a function, and WaitFor, a bounded wait on an
// observable condition. They follow the batch ownership rules
// of arrowexec, so tests run on a checked allocator can assert zero bytes
// remain.
package exectest
