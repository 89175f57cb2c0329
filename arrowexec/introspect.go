package arrowexec

// Read-only views of a running job for status pages and APIs. Every
// accessor here is safe to call from any goroutine while the job runs; what
// it returns is a moment's copy, never a reference into the runtime.

// Spec returns the Spec of an operator or sink node (nil for a source),
// so that a caller can ask an operator kind it knows for more (a window
// operator's pending windows).
func (n *Node) Spec() Spec { return n.spec }

// Source returns the Source of a source node, or nil.
func (n *Node) Source() Source { return n.source }

// InputWatermark is what one input channel of an operator subtask last
// delivered: the watermark of upstream subtask FromSubtask on input edge
// Edge (an index into Node.Inputs), whether it declared itself idle, and
// whether it ended; Queued and Capacity are the messages waiting in the
// channel and its capacity. Job.Inputs folds them per edge.
type InputWatermark struct {
	Edge             int
	From             string
	FromSubtask      int
	Watermark        int64
	Idle, Ended      bool
	Queued, Capacity int
}

// InputWatermarks returns, for every subtask of node, the watermark state
// of each of its input channels (nil for a source or an unknown node). A
// subtask's own watermark (TaskMetrics.Watermark) is the minimum over its
// channels that are neither idle nor ended.
func (j *Job) InputWatermarks(node string) [][]InputWatermark {
	n := j.g.byName[node]
	if n == nil || n.source != nil {
		return nil
	}
	out := make([][]InputWatermark, n.parallelism)
	for i, st := range j.subtasks[n.id] {
		ws := make([]InputWatermark, len(st.inboxes))
		for k, in := range st.inboxes {
			ws[k] = InputWatermark{Edge: in.edge, From: n.inputs[in.edge].From.name, FromSubtask: in.from,
				Watermark: in.pubWM.Load(), Idle: in.pubIdle.Load(), Ended: in.pubEnded.Load(),
				Queued: len(in.ch), Capacity: cap(in.ch)}
		}
		out[i] = ws
	}
	return out
}

// OutputFill returns, for every subtask of node, how full its output
// queues are: queued messages over capacity, summed over every channel it
// sends on (0 for a sink). A subtask whose queues stay full is
// backpressured: its downstream does not keep up.
func (j *Job) OutputFill(node string) []float64 {
	qs := j.outputQueues(node)
	if qs == nil {
		return nil
	}
	out := make([]float64, len(qs))
	for i, q := range qs {
		if q.capacity > 0 {
			out[i] = float64(q.queued) / float64(q.capacity)
		}
	}
	return out
}

// OutputBlocked returns, for every subtask of node, whether one of the
// channels it sends on is full: its next send to it blocks, or one is
// blocking now (backpressure the TaskMetrics account when the send ends).
func (j *Job) OutputBlocked(node string) []bool {
	qs := j.outputQueues(node)
	if qs == nil {
		return nil
	}
	out := make([]bool, len(qs))
	for i, q := range qs {
		out[i] = q.full
	}
	return out
}

// outputQueue sums the channels one subtask sends on.
type outputQueue struct {
	queued, capacity int
	full             bool // one of them is full
}

// outputQueues reads the output channels of every subtask of node (nil
// for an unknown node).
func (j *Job) outputQueues(node string) []outputQueue {
	n := j.g.byName[node]
	if n == nil {
		return nil
	}
	out := make([]outputQueue, n.parallelism)
	for i, st := range j.subtasks[n.id] {
		for _, r := range st.out.routers {
			for _, ib := range r.chans {
				q, c := len(ib.ch), cap(ib.ch)
				out[i].queued += q
				out[i].capacity += c
				out[i].full = out[i].full || c > 0 && q == c
			}
		}
	}
	return out
}

// Chains returns how the job runs its nodes: each chain of nodes fused
// into one goroutine per subtask (operator chaining, see Node.Chained), as
// node names in data order, the head first; a node chained to nothing is a
// chain of one. Chains are listed in the graph's topological order of
// their heads.
func (j *Job) Chains() [][]string {
	var out [][]string
	for _, n := range j.g.nodes {
		st := j.subtasks[n.id][0]
		if st.head != st {
			continue
		}
		names := make([]string, len(st.chain))
		for i, m := range st.chain {
			names[i] = m.node.name
		}
		out = append(out, names)
	}
	return out
}
