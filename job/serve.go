package job

// Serves says whether a running job of the spec serves recommendations
// (riffle run mounts package ml/serve on its admin endpoint, answering
// from Plan.Recommend's Live): it has a recommend step that learns on the
// stream (update:, or any over an unbounded source) without update:
// {serve: false}.
func (s *Spec) Serves() bool {
	for _, st := range s.Steps {
		if st.Kind != StepRecommend || st.Recommend == nil {
			continue
		}
		u := st.Recommend.Options.Update
		if u == nil && s.Source.bounded() {
			continue // the batch operator: a model only at the end
		}
		if u == nil || u.Serve {
			return true
		}
	}
	return false
}
