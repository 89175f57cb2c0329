package main

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/riffle-dev/riffle/internal/chart"
	"github.com/riffle-dev/riffle/ml/eval"
)

// evalMetrics are the metrics @K that --plot draws, each with its value.
var evalMetrics = []struct {
	name  string
	value func(eval.AtK) float64
}{
	{"recall", func(a eval.AtK) float64 { return a.Recall }},
	{"ndcg", func(a eval.AtK) float64 { return a.NDCG }},
	{"hr", func(a eval.AtK) float64 { return a.HR }},
	{"map", func(a eval.AtK) float64 { return a.MAP }},
}

// writeEvalPlots draws rep's figures into dir, each chart as PNG with its
// points as CSV beside it (package internal/chart):
//
//	PROTOCOL-METRIC  metric@K per model (recall, ndcg, hr, map), by K
//	PROTOCOL-loss    iALS training loss per iteration
//	prequential-hr, prequential-ndcg  the metric per 5% of the replay, per
//	                 model, over the rows replayed (buckets without a
//	                 scored event left out)
//
// and returns the PNGs' paths.
func writeEvalPlots(dir string, rep *evalReport) ([]string, error) {
	var out []string
	add := func(c interface {
		Write(dir, name string) (string, error)
	}, name string) error {
		p, err := c.Write(dir, name)
		if err != nil {
			return fmt.Errorf("--plot: %w", err)
		}
		out = append(out, p)
		return nil
	}
	for _, pr := range rep.Protocols {
		if len(pr.Results) == 0 {
			continue
		}
		for _, m := range evalMetrics {
			l := &chart.Lines{Title: fmt.Sprintf("%s@K, %s split", m.name, pr.Protocol), XLabel: "K", YLabel: m.name}
			for _, r := range pr.Results {
				l.Series = append(l.Series, atKSeries(r, m.value))
			}
			if err := add(l, fmt.Sprintf("%s-%s", pr.Protocol, m.name)); err != nil {
				return out, err
			}
		}
		if len(pr.Loss) > 0 {
			s := chart.Series{Name: "ials"}
			for i, v := range pr.Loss {
				s.X, s.Y = append(s.X, float64(i+1)), append(s.Y, v)
			}
			l := &chart.Lines{Title: fmt.Sprintf("iALS training loss, %s split", pr.Protocol), XLabel: "iteration", YLabel: "loss", Series: []chart.Series{s}}
			if err := add(l, string(pr.Protocol)+"-loss"); err != nil {
				return out, err
			}
		}
	}
	if p := rep.Prequential; p != nil {
		for _, m := range []struct {
			name  string
			value func(c eval.CurvePoint, j int) float64
		}{
			{"hr", func(c eval.CurvePoint, j int) float64 { return c.HR[j] }},
			{"ndcg", func(c eval.CurvePoint, j int) float64 { return c.NDCG[j] }},
		} {
			l := &chart.Lines{Title: fmt.Sprintf("prequential %s@%d over the replay", m.name, p.K), XLabel: "rows replayed", YLabel: m.name}
			for j, model := range p.Models {
				s := chart.Series{Name: model.Model}
				for _, c := range p.Curve {
					if c.Events > 0 {
						s.X, s.Y = append(s.X, float64(c.To)), append(s.Y, m.value(c, j))
					}
				}
				if len(s.X) > 0 {
					l.Series = append(l.Series, s)
				}
			}
			if len(l.Series) == 0 {
				continue
			}
			if err := add(l, "prequential-"+m.name); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// atKSeries is r's metric at each of its cut-offs, by ascending K.
func atKSeries(r *eval.Result, value func(eval.AtK) float64) chart.Series {
	ats := slices.SortedFunc(slices.Values(r.AtK), func(a, b eval.AtK) int { return cmp.Compare(a.K, b.K) })
	s := chart.Series{Name: r.Model}
	for _, a := range ats {
		s.X, s.Y = append(s.X, float64(a.K)), append(s.Y, value(a))
	}
	return s
}
