package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/riffle-dev/riffle/internal/oracle"
	"github.com/riffle-dev/riffle/ml"
	"github.com/riffle-dev/riffle/ml/eval"
)

// TestPrequentialPy: prequential.py, replaying the stream riffle wrote,
// classifies the events and ranks popularity exactly as eval.Prequential
// does (an independent implementation of the protocol), and implicit's
// partial fits rank far above popularity on structured data.
func TestPrequentialPy(t *testing.T) {
	python, dir := implicitPython(t)
	d := smallDataset(t, 300, 400, 9000)
	cfg := ml.Config{Factors: 8, Regularization: 0.1, Alpha: 1, Iterations: 5, CGSteps: 3, Seed: 1, Threads: 1}
	o := eval.PrequentialOptions{TrainFraction: 0.4, Batch: 37, K: 10, MinWeight: 2, Config: cfg, Online: &ml.OnlineOptions{}}
	res, err := eval.Prequential(context.Background(), d, o)
	if err != nil {
		t.Fatal(err)
	}
	order, nTrain := eval.PrequentialSplit(d, o.TrainFraction)
	stream := filepath.Join(dir, "s.stream")
	if err := writeStream(stream, d, order, nTrain); err != nil {
		t.Fatal(err)
	}
	root, err := oracle.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	py, err := runPrequentialPy(context.Background(), python, filepath.Join(root, "bench", "recommender", "prequential.py"), stream,
		preqParams{K: 10, Batch: 37, MinWeight: 2, Alpha: 1, Factors: 8, Regularization: 0.1, Iterations: 5, CGSteps: 3, Threads: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	pop := res.Models[len(res.Models)-1]
	if py.Counts != res.Counts || py.Popularity.Events != pop.Events || !near(py.Popularity.NDCG, pop.NDCG) || !near(py.Popularity.HR, pop.HR) ||
		py.ColdUsers.Events != res.ColdUsers.Events || !near(py.ColdUsers.NDCG, res.ColdUsers.NDCG) {
		t.Fatalf("Python: %+v %+v %+v; riffle: %+v %+v %+v", py.Counts, py.Popularity, py.ColdUsers, res.Counts, pop, res.ColdUsers)
	}
	if res.Counts.Warm == 0 || res.Counts.Below == 0 || res.Counts.Repeats == 0 {
		t.Errorf("some class is empty: %+v", res.Counts)
	}
	if py.Implicit.Events != pop.Events || py.Implicit.NDCG < 1.5*pop.NDCG {
		t.Errorf("implicit %+v vs popularity %+v", py.Implicit, pop)
	}
	t.Logf("riffle incremental NDCG@10 %.4f, implicit %.4f, popularity %.4f", res.Models[0].NDCG, py.Implicit.NDCG, pop.NDCG)
}
