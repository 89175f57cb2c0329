package job

import "github.com/riffle-dev/riffle/ml"

// Recommenders returns the plan's recommend steps, in step order: a
// running job serves recommendations from their live models
// (RecommendSpec.Live; riffle run mounts package ml/serve on its admin
// endpoint).
func (p *Plan) Recommenders() []*ml.RecommendSpec {
	var out []*ml.RecommendSpec
	for _, n := range p.Graph.Nodes() {
		if r, ok := n.Spec().(*ml.RecommendSpec); ok {
			out = append(out, r)
		}
	}
	return out
}

// Serves says whether a running job of the spec serves recommendations: it
// has a recommend step and its source is unbounded (a bounded job's model
// exists only at its end).
func (s *Spec) Serves() bool {
	if s.Source.bounded() {
		return false
	}
	for _, st := range s.Steps {
		if st.Kind == StepRecommend {
			return true
		}
	}
	return false
}
