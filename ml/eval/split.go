package eval

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/riffle-dev/riffle/ml"
)

// Protocol names a way of holding out test interactions.
type Protocol string

// Protocols (see doc.go for their exact definitions).
const (
	GlobalTime   Protocol = "global-time"
	UserTime     Protocol = "user-time"
	LeaveLastOut Protocol = "leave-last-out"
)

// Protocols lists every protocol.
var Protocols = []Protocol{GlobalTime, UserTime, LeaveLastOut}

// ParseProtocol checks a protocol name.
func ParseProtocol(s string) (Protocol, error) {
	for _, p := range Protocols {
		if string(p) == s {
			return p, nil
		}
	}
	return "", fmt.Errorf("eval: unknown protocol %q (want global-time, user-time or leave-last-out)", s)
}

// DefaultTestPercent is the share of interactions held out by the
// global-time and user-time protocols.
const DefaultTestPercent = 20

// Split is one train/test split of a Dataset. Train users and catalogue
// items (the items with a train interaction) get dense indices of their own,
// in ascending id order: UserOf and ItemOf map them back to the Dataset's.
type Split struct {
	Protocol Protocol
	// TrainRows and TestRows are Dataset row numbers, ascending.
	TrainRows, TestRows []int32
	// Train holds the train interactions, train users × catalogue items,
	// weights of repeated pairs summed.
	Train *Interactions
	// Test holds each train user's relevant items (weight 1): its test
	// items that are in the catalogue and not among its train items.
	Test           *Interactions
	UserOf, ItemOf []int32
	// What became of the test rows.
	Stats SplitStats
}

// SplitStats counts test rows by fate.
type SplitStats struct {
	TrainRows int `json:"train_rows"`
	TestRows  int `json:"test_rows"`
	// ColdUserRows: the user has no train interaction; ColdItemRows: the
	// item is not in the catalogue; RepeatRows: the user has the item in
	// train; DuplicateRows: the pair was already among the user's relevant
	// items. The rest, Relevant, are the relevant pairs.
	ColdUserRows  int `json:"cold_user_rows"`
	ColdItemRows  int `json:"cold_item_rows"`
	RepeatRows    int `json:"repeat_rows"`
	DuplicateRows int `json:"duplicate_rows"`
	Relevant      int `json:"relevant"`
	// EvalUsers are the train users with at least one relevant item.
	EvalUsers int `json:"eval_users"`
	// TrainUsers and Catalogue are the sizes of the index spaces.
	TrainUsers int `json:"train_users"`
	Catalogue  int `json:"catalogue"`
}

// NewSplit splits all rows of d with protocol p, holding out testPercent
// percent (global-time, user-time; ignored by leave-last-out).
func NewSplit(d *Dataset, p Protocol, testPercent int) (*Split, error) {
	rows := make([]int32, d.Len())
	for i := range rows {
		rows[i] = int32(i)
	}
	return SplitRows(d, rows, p, testPercent)
}

// Validation splits the train rows of s again with its protocol: the
// validation split Tune selects hyperparameters on.
func (s *Split) Validation(d *Dataset, testPercent int) (*Split, error) {
	return SplitRows(d, s.TrainRows, s.Protocol, testPercent)
}

// SplitRows splits the given rows of d (ascending row numbers) with
// protocol p.
func SplitRows(d *Dataset, rows []int32, p Protocol, testPercent int) (*Split, error) {
	if testPercent < 1 || testPercent > 99 {
		return nil, fmt.Errorf("eval: test percent %d must be in [1, 99]", testPercent)
	}
	order := d.TimeOrder(rows)
	isTest := make([]bool, d.Len())
	switch p {
	case GlobalTime:
		nTest := len(order) * testPercent / 100
		for _, r := range order[len(order)-nTest:] {
			isTest[r] = true
		}
	case UserTime, LeaveLastOut:
		// Each user's rows in time order, users one after another: a
		// counting sort by user of the time order.
		start := make([]int, d.UserIDs.Len()+1)
		for _, r := range order {
			start[d.Users[r]+1]++
		}
		for u := range d.UserIDs.Len() {
			start[u+1] += start[u]
		}
		byUser := make([]int32, len(order))
		next := slices.Clone(start[:len(start)-1])
		for _, r := range order {
			u := d.Users[r]
			byUser[next[u]] = r
			next[u]++
		}
		for u := range d.UserIDs.Len() {
			lo, hi := start[u], start[u+1]
			n := hi - lo
			nTest := n * testPercent / 100
			if p == LeaveLastOut {
				nTest = 0
				if n >= 2 {
					nTest = 1
				}
			}
			for _, r := range byUser[hi-nTest : hi] {
				isTest[r] = true
			}
		}
	default:
		return nil, fmt.Errorf("eval: unknown protocol %q", p)
	}
	s := &Split{Protocol: p}
	for _, r := range rows {
		if isTest[r] {
			s.TestRows = append(s.TestRows, r)
		} else {
			s.TrainRows = append(s.TrainRows, r)
		}
	}
	if err := s.build(d); err != nil {
		return nil, err
	}
	return s, nil
}

// TimeOrder returns rows (Dataset row numbers) in time order: ascending
// (time, row number).
func (d *Dataset) TimeOrder(rows []int32) []int32 {
	// (time, row) is unique, so an unstable sort gives the one order.
	order := slices.Clone(rows)
	slices.SortFunc(order, func(a, b int32) int {
		if c := cmp.Compare(d.Times[a], d.Times[b]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	return order
}

// build indexes the train users and items and fills Train and Test.
func (s *Split) build(d *Dataset) error {
	var userIdx, itemIdx []int32
	var err error
	s.Train, userIdx, itemIdx, s.UserOf, s.ItemOf, err = d.matrix(s.TrainRows)
	if err != nil {
		return fmt.Errorf("eval: train matrix: %w", err)
	}
	var users, items []int32
	st := &s.Stats
	st.TrainRows, st.TestRows = len(s.TrainRows), len(s.TestRows)
	st.TrainUsers, st.Catalogue = len(s.UserOf), len(s.ItemOf)
	for _, r := range s.TestRows {
		u, i := userIdx[d.Users[r]], itemIdx[d.Items[r]]
		switch {
		case u < 0:
			st.ColdUserRows++
		case i < 0:
			st.ColdItemRows++
		case has(s.Train, u, i):
			st.RepeatRows++
		default:
			users, items = append(users, u), append(items, i)
		}
	}
	if s.Test, err = ml.NewInteractions(len(s.UserOf), len(s.ItemOf), users, items, nil); err != nil {
		return fmt.Errorf("eval: test matrix: %w", err)
	}
	st.DuplicateRows = len(users) - len(s.Test.Indices)
	st.Relevant = len(s.Test.Indices)
	for u := range s.Test.NumUsers {
		if s.Test.Indptr[u+1] > s.Test.Indptr[u] {
			st.EvalUsers++
		}
	}
	// Relevant weights are 1, whatever the duplicates.
	for k := range s.Test.Weights {
		s.Test.Weights[k] = 1
	}
	return nil
}

// matrix builds the interaction matrix of the given rows over their own
// users and items, dense in ascending id order (weights of repeated pairs
// summed): userIdx and itemIdx map Dataset indices to the matrix's (-1:
// absent), userOf and itemOf back.
func (d *Dataset) matrix(rows []int32) (m *Interactions, userIdx, itemIdx, userOf, itemOf []int32, err error) {
	userIdx = make([]int32, d.UserIDs.Len())
	itemIdx = make([]int32, d.ItemIDs.Len())
	for i := range userIdx {
		userIdx[i] = -1
	}
	for i := range itemIdx {
		itemIdx[i] = -1
	}
	for _, r := range rows {
		userIdx[d.Users[r]] = 0
		itemIdx[d.Items[r]] = 0
	}
	for u, v := range userIdx {
		if v == 0 {
			userIdx[u] = int32(len(userOf))
			userOf = append(userOf, int32(u))
		}
	}
	for i, v := range itemIdx {
		if v == 0 {
			itemIdx[i] = int32(len(itemOf))
			itemOf = append(itemOf, int32(i))
		}
	}
	users := make([]int32, len(rows))
	items := make([]int32, len(rows))
	weights := make([]float32, len(rows))
	for j, r := range rows {
		users[j], items[j], weights[j] = userIdx[d.Users[r]], itemIdx[d.Items[r]], d.Weights[r]
	}
	m, err = ml.NewInteractions(len(userOf), len(itemOf), users, items, weights)
	return m, userIdx, itemIdx, userOf, itemOf, err
}
