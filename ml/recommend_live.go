package ml

// newLive returns the serving copy the streaming operator keeps current
// and makes it the spec's (Live); each run's operator has its own.
func (s *RecommendSpec) newLive(b *bound) liveSyncer {
	l := NewLive(s.opts.Config.Factors, b.userKind, b.itemKind)
	s.mu.Lock()
	s.live = l
	s.mu.Unlock()
	return l
}

// Live returns the serving copy of the model that the running streaming
// operator keeps current (brought up to date after every update, a
// restore included), or nil when the step does not serve (a batch step,
// update: {serve: false}) or before the operator opened. Its answers are
// those of the model between two updates, never a half-updated one
// (Live's doc).
func (s *RecommendSpec) Live() *Live {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live
}
