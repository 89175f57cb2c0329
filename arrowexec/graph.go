package arrowexec

import (
	"errors"
	"fmt"
	"runtime"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
)

// PartitionKind says how an edge distributes batches over the subtasks of
// its downstream node.
type PartitionKind uint8

const (
	// Forward sends subtask i's output to subtask i downstream.
	Forward PartitionKind = iota
	// Rebalance sends whole batches round robin.
	Rebalance
	// Broadcast sends every batch to every downstream subtask.
	Broadcast
	// Hash partitions rows by the hash of key columns.
	Hash
)

func (k PartitionKind) String() string {
	switch k {
	case Forward:
		return "forward"
	case Rebalance:
		return "rebalance"
	case Broadcast:
		return "broadcast"
	case Hash:
		return "hash"
	}
	return fmt.Sprintf("PartitionKind(%d)", k)
}

// Input is an edge into a node: the upstream node, which of its outputs
// (Output "" is the main one, else a side output), and how it is
// partitioned.
type Input struct {
	From   *Node
	Kind   PartitionKind
	Keys   []string // Hash only
	Output string
}

// Schema is the schema of the rows on the edge (once the graph is built).
func (in Input) Schema() *arrow.Schema {
	if in.Output == "" {
		return in.From.schema
	}
	if k := in.From.sideIndex(in.Output); k >= 0 {
		return in.From.sides[k].Schema
	}
	return nil
}

// edgeName names an edge in messages: "a -> b" or "a.late -> b".
func edgeName(in Input, to string) string {
	if in.Output != "" {
		return fmt.Sprintf("%q -> %q", in.From.name+"."+in.Output, to)
	}
	return fmt.Sprintf("%q -> %q", in.From.name, to)
}

// Node is a vertex of a Graph: a source, an operator or a sink.
type Node struct {
	name        string
	id          int
	parallelism int
	source      Source
	spec        Spec
	inputs      []Input
	schema      *arrow.Schema
	sides       []SideOutput // declared by the Spec (SideOutputter)
	keyIdx      [][]int      // per input: key column indices (Hash)
	// noChain: the node opted out of operator chaining (DisableChaining);
	// chained: Build found it chainable to its input's node (Chained).
	noChain bool
	chained bool
}

// DisableChaining keeps n out of operator chaining: it runs in subtasks of
// its own, fused neither with its input's node nor with its consumer
// (tests, or an operator to be seen apart in the metrics). It returns n.
func (n *Node) DisableChaining() *Node {
	n.noChain = true
	return n
}

// Chained reports whether n is planned to run chained to the node it
// reads from (known once the graph is built): fused into that node's
// subtasks, operator i called directly by operator i upstream, in the same
// goroutine, with no queue between them. That holds when n has exactly
// one input, a Forward edge from the main output of a node that has no
// other consumer (no other edge from it, main or side), and neither node
// opted out (DisableChaining). Equal parallelism follows from Forward.
// RunOptions.DisableChaining turns chaining off for a run; Job.Chains
// tells how a compiled job runs.
func (n *Node) Chained() bool { return n.chained }

// SideOutputs returns the node's side outputs, known once the graph is
// built.
func (n *Node) SideOutputs() []SideOutput { return slices.Clone(n.sides) }

// sideIndex returns the index of side output name, or -1.
func (n *Node) sideIndex(name string) int {
	for i, s := range n.sides {
		if s.Name == name {
			return i
		}
	}
	return -1
}

// Name returns the node's name.
func (n *Node) Name() string { return n.name }

// Parallelism returns the node's number of subtasks.
func (n *Node) Parallelism() int { return n.parallelism }

// Schema returns the node's output schema, known once the graph is built
// (nil for sinks).
func (n *Node) Schema() *arrow.Schema { return n.schema }

// Inputs returns the node's input edges (none for a source).
func (n *Node) Inputs() []Input { return slices.Clone(n.inputs) }

// Forward is an edge from n that keeps subtask i's output on subtask i.
func (n *Node) Forward() Input { return Input{From: n, Kind: Forward} }

// Rebalance is an edge from n that spreads batches round robin.
func (n *Node) Rebalance() Input { return Input{From: n, Kind: Rebalance} }

// Broadcast is an edge from n that copies every batch to every subtask.
func (n *Node) Broadcast() Input { return Input{From: n, Kind: Broadcast} }

// HashBy is an edge from n that partitions rows by the given key columns.
func (n *Node) HashBy(keys ...string) Input { return Input{From: n, Kind: Hash, Keys: keys} }

// Port is a side output of a node, where side edges start.
type Port struct {
	n    *Node
	name string
}

// Side returns n's side output name (declared by its Spec, see
// SideOutputter; Build checks it exists).
func (n *Node) Side(name string) Port { return Port{n: n, name: name} }

// Forward is a side edge keeping subtask i's side rows on subtask i.
func (p Port) Forward() Input { return Input{From: p.n, Kind: Forward, Output: p.name} }

// Rebalance is a side edge spreading batches round robin.
func (p Port) Rebalance() Input { return Input{From: p.n, Kind: Rebalance, Output: p.name} }

// Broadcast is a side edge copying every batch to every subtask.
func (p Port) Broadcast() Input { return Input{From: p.n, Kind: Broadcast, Output: p.name} }

// HashBy is a side edge partitioning rows by key columns of the side
// output's schema.
func (p Port) HashBy(keys ...string) Input {
	return Input{From: p.n, Kind: Hash, Keys: keys, Output: p.name}
}

// Graph is a job's dataflow DAG. Nodes are added after their inputs, so the
// order of addition is a topological order. Errors made while adding are
// kept and reported by Build.
type Graph struct {
	nodes          []*Node
	byName         map[string]*Node
	errs           []error
	maxParallelism int
	built          bool
}

// NewGraph returns an empty graph.
func NewGraph() *Graph {
	return &Graph{byName: map[string]*Node{}, maxParallelism: DefaultMaxParallelism}
}

// SetMaxParallelism sets the number of key groups (default 128). It bounds
// the parallelism of every keyed node and must not change between a
// checkpoint and its restore.
func (g *Graph) SetMaxParallelism(n int) { g.maxParallelism = n }

// MaxParallelism returns the number of key groups.
func (g *Graph) MaxParallelism() int { return g.maxParallelism }

// Nodes returns the nodes in topological order.
func (g *Graph) Nodes() []*Node { return slices.Clone(g.nodes) }

// Node returns the node named name, or nil.
func (g *Graph) Node(name string) *Node { return g.byName[name] }

func (g *Graph) add(name string, parallelism int, src Source, spec Spec, inputs []Input) *Node {
	if parallelism <= 0 {
		parallelism = runtime.GOMAXPROCS(0)
	}
	n := &Node{name: name, id: len(g.nodes), parallelism: parallelism, source: src, spec: spec, inputs: inputs}
	switch {
	case name == "":
		g.errs = append(g.errs, errors.New("arrowexec: a node has no name"))
	case g.byName[name] != nil:
		g.errs = append(g.errs, fmt.Errorf("arrowexec: duplicate node name %q", name))
	}
	for _, in := range inputs {
		if in.From == nil || g.byName[in.From.name] != in.From {
			g.errs = append(g.errs, fmt.Errorf("arrowexec: node %q: input is not a node of this graph", name))
		}
	}
	g.nodes = append(g.nodes, n)
	g.byName[name] = n
	return n
}

// AddSource adds a source node with the given parallelism (<= 0: GOMAXPROCS).
func (g *Graph) AddSource(name string, src Source, parallelism int) *Node {
	return g.add(name, parallelism, src, nil, nil)
}

// Add adds an operator or sink node fed by inputs.
func (g *Graph) Add(name string, spec Spec, parallelism int, inputs ...Input) *Node {
	if len(inputs) == 0 {
		g.errs = append(g.errs, fmt.Errorf("arrowexec: node %q has no input", name))
	}
	return g.add(name, parallelism, nil, spec, inputs)
}

// Build checks the graph and derives every node's schema: edges, key
// columns, parallelism of forward edges. It is called by Compile; calling it
// earlier reports plan errors without running anything.
func (g *Graph) Build() error {
	if g.built {
		return nil
	}
	if len(g.errs) > 0 {
		return errors.Join(g.errs...)
	}
	if len(g.nodes) == 0 {
		return errors.New("arrowexec: empty graph")
	}
	if g.maxParallelism <= 0 {
		return fmt.Errorf("arrowexec: max parallelism %d must be positive", g.maxParallelism)
	}
	for _, n := range g.nodes {
		if n.parallelism > g.maxParallelism {
			return fmt.Errorf("arrowexec: node %q: parallelism %d exceeds max parallelism %d", n.name, n.parallelism, g.maxParallelism)
		}
		if n.source != nil {
			n.schema = n.source.Schema()
			if n.schema == nil {
				return fmt.Errorf("arrowexec: source %q has no schema", n.name)
			}
			continue
		}
		schemas := make([]*arrow.Schema, len(n.inputs))
		n.keyIdx = make([][]int, len(n.inputs))
		for i, in := range n.inputs {
			up := in.From
			from := up.schema
			if in.Output != "" {
				k := up.sideIndex(in.Output)
				if k < 0 {
					return fmt.Errorf("arrowexec: edge %s: %q has no side output %q (have %s)",
						edgeName(in, n.name), up.name, in.Output, sideNames(up.sides))
				}
				from = up.sides[k].Schema
			} else if up.schema == nil {
				return fmt.Errorf("arrowexec: node %q reads from %q, a sink with no output", n.name, up.name)
			}
			schemas[i] = from
			switch in.Kind {
			case Forward:
				if up.parallelism != n.parallelism {
					return fmt.Errorf("arrowexec: forward edge %s needs equal parallelism, have %d and %d",
						edgeName(in, n.name), up.parallelism, n.parallelism)
				}
			case Hash:
				if len(in.Keys) == 0 {
					return fmt.Errorf("arrowexec: hash edge %s has no key columns", edgeName(in, n.name))
				}
				for _, k := range in.Keys {
					idx := from.FieldIndices(k)
					if len(idx) != 1 {
						return fmt.Errorf("arrowexec: hash edge %s: unknown key column %q (have %s)",
							edgeName(in, n.name), k, fieldNames(from))
					}
					if !hashable(from.Field(idx[0]).Type) {
						return fmt.Errorf("arrowexec: hash edge %s: key column %q has unhashable type %s",
							edgeName(in, n.name), k, from.Field(idx[0]).Type)
					}
					n.keyIdx[i] = append(n.keyIdx[i], idx[0])
				}
			case Rebalance, Broadcast:
			default:
				return fmt.Errorf("arrowexec: edge %s: unknown partitioning %v", edgeName(in, n.name), in.Kind)
			}
		}
		s, err := n.spec.Schema(schemas)
		if err != nil {
			return &NodeError{Node: n.name, Err: err}
		}
		n.schema = s
		if so, ok := n.spec.(SideOutputter); ok {
			sides, err := so.SideOutputs(schemas)
			if err != nil {
				return &NodeError{Node: n.name, Err: err}
			}
			for i, sd := range sides {
				if sd.Name == "" || sd.Schema == nil || slices.ContainsFunc(sides[:i], func(o SideOutput) bool { return o.Name == sd.Name }) {
					return &NodeError{Node: n.name, Err: fmt.Errorf("side output %d: want a unique name and a schema", i)}
				}
			}
			n.sides = sides
		}
	}
	consumers := make([]int, len(g.nodes))
	for _, n := range g.nodes {
		for _, in := range n.inputs {
			consumers[in.From.id]++
		}
	}
	for _, n := range g.nodes {
		if len(n.inputs) != 1 {
			continue
		}
		in := n.inputs[0]
		n.chained = in.Kind == Forward && in.Output == "" && consumers[in.From.id] == 1 && !n.noChain && !in.From.noChain
	}
	g.built = true
	return nil
}

func hashable(dt arrow.DataType) bool {
	switch dt.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
		arrow.FLOAT32, arrow.FLOAT64, arrow.BOOL, arrow.STRING, arrow.BINARY, arrow.LARGE_STRING, arrow.LARGE_BINARY,
		arrow.TIMESTAMP, arrow.DATE32, arrow.DATE64:
		return true
	case arrow.DICTIONARY: // hashed as its values (hashDictionary)
		switch dt.(*arrow.DictionaryType).ValueType.ID() {
		case arrow.STRING, arrow.BINARY, arrow.LARGE_STRING, arrow.LARGE_BINARY:
			return true
		}
	}
	return false
}

func fieldNames(s *arrow.Schema) string {
	names := make([]string, s.NumFields())
	for i, f := range s.Fields() {
		names[i] = f.Name
	}
	return fmt.Sprintf("%q", names)
}

func sideNames(sides []SideOutput) string {
	if len(sides) == 0 {
		return "none"
	}
	names := make([]string, len(sides))
	for i, s := range sides {
		names[i] = s.Name
	}
	return fmt.Sprintf("%q", names)
}

// NodeError is a plan error of one node (its Spec rejected its inputs).
type NodeError struct {
	Node string
	Err  error
}

func (e *NodeError) Error() string { return fmt.Sprintf("arrowexec: node %q: %v", e.Node, e.Err) }

func (e *NodeError) Unwrap() error { return e.Err }
