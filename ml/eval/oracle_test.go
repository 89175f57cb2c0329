package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/riffle-dev/riffle/internal/oracle"
	"github.com/riffle-dev/riffle/ml"
)

// writeOracleCSV writes a small log with the awkward cases the protocols
// define: many equal times, repeated pairs, users with one row, users and
// items that only appear late (cold in global-time), and string item ids
// whose bytewise order is not their numeric order.
func writeOracleCSV(t *testing.T, path string, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	var b bytes.Buffer
	b.WriteString("user,item,rating,ts\n")
	for range 700 {
		u := 1000 + 7*rng.IntN(50)
		// Skewed items: a few popular ones.
		i := int(math.Floor(45 * math.Pow(rng.Float64(), 2)))
		fmt.Fprintf(&b, "%d,item-%d,%d,%d\n", u, i, rng.IntN(6), rng.IntN(120)) // rating 0: no interaction
	}
	// Users with a single row, early and late.
	fmt.Fprintf(&b, "5,item-3,4,0\n6,item-4,2,119\n")
	// Late newcomers: cold users and cold items under global-time.
	for k := range 30 {
		fmt.Fprintf(&b, "%d,item-%d,3,%d\n", 9000+k%5, 100+k%7, 130+k)
		fmt.Fprintf(&b, "%d,item-%d,3,%d\n", 1000+7*(k%50), 100+k%4, 131+k)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// scoreModel is the ml.Model whose score of (u, i) is score(u, i): user
// vectors are the score rows, item vectors the identity, so ml.Model.TopK
// (the ranking iALS uses) ranks by exactly these scores.
func scoreModel(users, items int, score func(u, i int32) float32) *ml.Model {
	m := &ml.Model{Factors: items, NumUsers: users, NumItems: items,
		UserFactors: make([]float32, users*items), ItemFactors: make([]float32, items*items)}
	for u := range users {
		for i := range items {
			m.UserFactors[u*items+i] = score(int32(u), int32(i))
		}
	}
	for i := range items {
		m.ItemFactors[i*items+i] = 1
	}
	return m
}

// oracleFixedScore is the fixed scoring both sides use: few distinct
// values, so ties are everywhere.
func oracleFixedScore(u, i int32) float32 { return float32((int(u)*31 + int(i)*17) % 5) }

type oracleCase struct {
	Protocol string                       `json:"protocol"`
	Stats    map[string]int               `json:"stats"`
	Metrics  map[string]map[string][5]any `json:"metrics"` // model -> k -> recall, ndcg, hr, map, coverage
}

// TestOracle compares every protocol, metric and baseline with a
// brute-force Python implementation of doc.go on a small CSV file.
func TestOracle(t *testing.T) {
	py := oracle.Python(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "log.csv")
	writeOracleCSV(t, path, 42)
	ks := []int{1, 3, 5, 10, 60}
	const seed = 7
	ctx := context.Background()
	d, err := ReadFile(ctx, path, Columns{User: "user", Item: "item", Weight: "rating", Time: "ts"})
	if err != nil {
		t.Fatal(err)
	}
	var got []oracleCase
	for _, p := range Protocols {
		for _, pct := range []int{20, 35} {
			if p == LeaveLastOut && pct != 20 {
				continue
			}
			s, err := NewSplit(d, p, pct)
			if err != nil {
				t.Fatal(err)
			}
			c := oracleCase{Protocol: fmt.Sprintf("%s/%d", p, pct), Metrics: map[string]map[string][5]any{}}
			c.Stats = map[string]int{"train_rows": s.Stats.TrainRows, "test_rows": s.Stats.TestRows,
				"cold_user": s.Stats.ColdUserRows, "cold_item": s.Stats.ColdItemRows, "repeat": s.Stats.RepeatRows,
				"relevant": s.Stats.Relevant, "eval_users": s.Stats.EvalUsers, "catalogue": s.Stats.Catalogue}
			fixed := scoreModel(s.Train.NumUsers, s.Train.NumItems, oracleFixedScore)
			pop, _ := Popularity{}.Fit(ctx, s.Train)
			rnd, _ := Random{Seed: seed}.Fit(ctx, s.Train)
			for name, m := range map[string]Model{"popularity": pop, "random": rnd, "fixed": fixed} {
				res, err := Evaluate(ctx, s, m, name, ks, 3)
				if err != nil {
					t.Fatal(err)
				}
				byK := map[string][5]any{}
				for _, a := range res.AtK {
					byK[fmt.Sprint(a.K)] = [5]any{a.Recall, a.NDCG, a.HR, a.MAP, a.Coverage}
				}
				c.Metrics[name] = byK
			}
			got = append(got, c)
		}
	}

	cmd := exec.Command(py, "-c", oracleScript, path, fmt.Sprint(seed), fmt.Sprint(ks))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("oracle: %v\n%s", err, stderr.String())
	}
	var want []oracleCase
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("oracle output: %v\n%s", err, out)
	}
	if len(want) != len(got) {
		t.Fatalf("oracle has %d cases, riffle %d", len(want), len(got))
	}
	names := [5]string{"recall", "ndcg", "hr", "map", "coverage"}
	var nonzero int
	for ci := range want {
		w, g := want[ci], got[ci]
		if w.Protocol != g.Protocol {
			t.Fatalf("case %d: oracle %s, riffle %s", ci, w.Protocol, g.Protocol)
		}
		for k, v := range w.Stats {
			if g.Stats[k] != v {
				t.Errorf("%s: %s = %d, oracle %d", g.Protocol, k, g.Stats[k], v)
			}
		}
		if g.Stats["cold_user"]+g.Stats["cold_item"]+g.Stats["repeat"] == 0 {
			t.Errorf("%s: no cold or repeated test row: the data does not exercise the rules", g.Protocol)
		}
		for model, byK := range w.Metrics {
			for k, wv := range byK {
				gv := g.Metrics[model][k]
				for j := range wv {
					a, b := gv[j].(float64), wv[j].(float64)
					if b != 0 {
						nonzero++
					}
					if math.Abs(a-b) > 1e-12 {
						t.Errorf("%s %s @%s %s = %.17g, oracle %.17g", g.Protocol, model, k, names[j], a, b)
					}
				}
			}
		}
	}
	if nonzero < 100 {
		t.Errorf("only %d non-zero figures: the test would not see a broken metric", nonzero)
	}
	t.Logf("%d cases, %d non-zero figures equal to the oracle's", len(want), nonzero)
}

// oracleScript is an independent, brute-force reading of doc.go: argv =
// csv path, random seed, ks as "[1 3 5]". It prints the cases in the
// order TestOracle builds them.
const oracleScript = `
import csv, json, math, sys
path, seed, ks = sys.argv[1], int(sys.argv[2]), [int(x) for x in sys.argv[3].strip("[]").split()]
rows = [r for r in csv.DictReader(open(path)) if float(r["rating"]) != 0]
U = [int(r["user"]) for r in rows]
I = [r["item"] for r in rows]
T = [int(r["ts"]) for r in rows]
N = len(rows)
M64 = (1 << 64) - 1

def mix(x):
    z = (x + 0x9e3779b97f4a7c15) & M64
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M64
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M64
    return z ^ (z >> 31)

def split(protocol, P):
    order = sorted(range(N), key=lambda r: (T[r], r))
    test = set()
    if protocol == "global-time":
        nt = N * P // 100
        test = set(order[N - nt:])
    else:
        byu = {}
        for r in order:
            byu.setdefault(U[r], []).append(r)
        for u, rs in byu.items():
            n = len(rs)
            nt = n * P // 100 if protocol == "user-time" else (1 if n >= 2 else 0)
            test.update(rs[n - nt:])
    return [r for r in range(N) if r not in test], [r for r in range(N) if r in test]

def case(protocol, P):
    train, test = split(protocol, P)
    users = sorted(set(U[r] for r in train))
    cat = sorted(set(I[r] for r in train))
    uidx = {u: k for k, u in enumerate(users)}
    iidx = {i: k for k, i in enumerate(cat)}
    has = {u: set() for u in users}
    for r in train:
        has[U[r]].add(I[r])
    stats = dict(train_rows=len(train), test_rows=len(test), cold_user=0, cold_item=0, repeat=0, relevant=0, eval_users=0, catalogue=len(cat))
    rel = {}
    for r in test:
        u, i = U[r], I[r]
        if u not in uidx:
            stats["cold_user"] += 1
        elif i not in iidx:
            stats["cold_item"] += 1
        elif i in has[u]:
            stats["repeat"] += 1
        else:
            rel.setdefault(u, set()).add(i)
    stats["relevant"] = sum(len(s) for s in rel.values())
    evalu = sorted(rel)
    stats["eval_users"] = len(evalu)
    pop = {i: len({U[r] for r in train if I[r] == i}) for i in cat}
    scorers = {
        "popularity": lambda u, i: float(pop[i]),
        "fixed": lambda u, i: float((uidx[u] * 31 + iidx[i] * 17) % 5),
    }
    metrics = {}
    def random_order(u):
        n = len(cat)
        h1 = mix((seed + uidx[u]) & M64)
        h2 = mix(h1)
        a = 1 + h1 % (n - 1) if n > 1 else 1
        while math.gcd(a, n) != 1:
            a += 1
        b = h2 % n
        return [cat[(a * j + b) % n] for j in range(n)]
    for name in ["popularity", "random", "fixed"]:
        ranked = {}
        for u in evalu:
            if name == "random":
                ranked[u] = [i for i in random_order(u) if i not in has[u]]
                continue
            score = scorers[name]
            cands = [i for i in cat if i not in has[u]]
            ranked[u] = sorted(cands, key=lambda i: (-score(u, i), iidx[i]))
        byk = {}
        for K in ks:
            rs, nd, hr, ap = 0.0, 0.0, 0.0, 0.0
            covered = set()
            for u in evalu:
                L = ranked[u][:K]
                covered.update(L)
                R = rel[u]
                D = min(K, len(R))
                h = 0
                dcg = 0.0
                psum = 0.0
                for r, i in enumerate(L, start=1):
                    if i in R:
                        h += 1
                        dcg += 1 / math.log2(r + 1)
                        psum += h / r
                idcg = 0.0
                for r in range(1, D + 1):
                    idcg += 1 / math.log2(r + 1)
                rs += h / D
                nd += dcg / idcg
                hr += 1.0 if h > 0 else 0.0
                ap += psum / D
            n = len(evalu)
            byk[str(K)] = [rs / n, nd / n, hr / n, ap / n, len(covered) / len(cat)]
        metrics[name] = byk
    return {"protocol": "%s/%d" % (protocol, P), "stats": stats, "metrics": metrics}

out = []
for p in ["global-time", "user-time", "leave-last-out"]:
    for P in [20, 35]:
        if p == "leave-last-out" and P != 20:
            continue
        out.append(case(p, P))
json.dump(out, sys.stdout)
`
