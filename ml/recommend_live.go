package ml

// newLive returns the serving copy the streaming operator keeps current.
// ml.Live (live.go) is not merged into this branch yet: until it is, the
// operator serves nothing.
func (s *RecommendSpec) newLive(b *bound) liveSyncer { return nil }
