package filelist

import "slices"

// Assign spreads units of work (row groups, byte ranges) over p subtasks,
// balancing their loads: the largest unit goes to the least loaded subtask
// (ties: lower unit, lower subtask), so the result depends only on the loads
// and p. It returns the unit indexes of each subtask in increasing order,
// the order a subtask reads them in.
func Assign(loads []int64, p int) [][]int {
	order := make([]int, len(loads))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case loads[a] > loads[b]:
			return -1
		case loads[a] < loads[b]:
			return 1
		}
		return a - b
	})
	out := make([][]int, p)
	load := make([]int64, p)
	for _, i := range order {
		best := 0
		for j := 1; j < p; j++ {
			if load[j] < load[best] {
				best = j
			}
		}
		out[best] = append(out[best], i)
		load[best] += loads[i]
	}
	for _, s := range out {
		slices.Sort(s)
	}
	return out
}
