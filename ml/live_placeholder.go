package ml

// Live returns the serving copy of the step's model (nil until it has one).
//
// PLACEHOLDER of the serve branch: the streaming operator (branch stream)
// defines the real method; delete this file when merging the two.
func (s *RecommendSpec) Live() *Live { return nil }
