package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/riffle-dev/riffle/internal/oracle"
	"github.com/riffle-dev/riffle/ml"
	"github.com/riffle-dev/riffle/ml/serve"
)

// testLive is a Live synced from an Online trained on a few interactions
// of int64 users 1..30 and int64 items 100..179.
func testLive(t *testing.T) *ml.Live {
	t.Helper()
	o, err := ml.NewOnline(ml.OnlineOptions{Config: ml.Config{Factors: 8, Seed: 2}})
	if err != nil {
		t.Fatal(err)
	}
	var batch []ml.Interaction
	for u := int64(1); u <= 30; u++ {
		for j := int64(0); j < 5; j++ {
			batch = append(batch, ml.Interaction{User: ml.Int64Key(u), Item: ml.Int64Key(100 + (u*11+j*j*3)%80), Weight: 1})
		}
	}
	if _, err := o.Apply(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	l, err := ml.NewLiveOf(8, arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Int64)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(o); err != nil {
		t.Fatal(err)
	}
	return l
}

// TestRecommendAddr runs 'riffle recommend --addr' against a server of a
// live model and compares its answers with the model's own.
func TestRecommendAddr(t *testing.T) {
	l := testLive(t)
	mux := http.NewServeMux()
	serve.Register(mux, func() *ml.Live { return l })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	code, out, errOut := runCLI(t, "recommend", "--addr", addr, "--user", "4", "--user", "17", "--k", "6", "--json")
	if code != exitOK {
		t.Fatalf("code %d: %s", code, errOut)
	}
	var got []struct {
		User            int64  `json:"user_id"`
		Updates         uint64 `json:"updates"`
		Recommendations []struct {
			Item  int64   `json:"item_id"`
			Rank  int     `json:"rank"`
			Score float32 `json:"score"`
		} `json:"recommendations"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(got) != 2 {
		t.Fatalf("%d answers, want 2: %s", len(got), out)
	}
	var text strings.Builder
	for j, u := range []int64{4, 17} {
		want, err := l.Recommend(context.Background(), strconv.FormatInt(u, 10), 6, false)
		if err != nil {
			t.Fatal(err)
		}
		a := got[j]
		if a.User != u || a.Updates != 1 || len(a.Recommendations) != len(want.Items) {
			t.Fatalf("user %d: %+v, want %v", u, a, want)
		}
		fmt.Fprintf(&text, "user %d (live model, 1 updates):\n", u)
		for r, rec := range a.Recommendations {
			if rec.Item != want.Items[r] || rec.Rank != r+1 || rec.Score != want.Scores[r] {
				t.Fatalf("user %d rank %d: %+v, want %v %v", u, r+1, rec, want.Items[r], want.Scores[r])
			}
			fmt.Fprintf(&text, "  %3d  %-20v %.6g\n", r+1, want.Items[r], want.Scores[r])
		}
	}
	if code, out, errOut := runCLI(t, "recommend", "--addr", addr, "--user", "4", "--user", "17", "--k", "6"); code != exitOK || out != text.String() {
		t.Fatalf("text: code %d %s\ngot:\n%s\nwant:\n%s", code, errOut, out, text.String())
	}

	// An unknown user fails, or gets the most popular items.
	if code, _, errOut := runCLI(t, "recommend", "--addr", addr, "--user", "999"); code != exitFailure || !strings.Contains(errOut, "none of the 1 users is known") {
		t.Fatalf("unknown user: code %d, %s", code, errOut)
	}
	pop, err := l.Recommend(context.Background(), "999", 3, true)
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, "recommend", "--addr", addr, "--user", "999", "--k", "3", "--fallback", "popular")
	if code != exitOK || !strings.Contains(out, "unknown user: most popular") || !strings.Contains(out, fmt.Sprintf("  1  %-20v", pop.Items[0])) {
		t.Fatalf("fallback: code %d, %s%s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "recommend", "--addr", addr, "--user", "x1"); code != exitFailure || !strings.Contains(errOut, "400 Bad Request") {
		t.Fatalf("bad user id: code %d, %s", code, errOut)
	}
	for _, args := range [][]string{
		{"recommend", "--user", "4"},
		{"recommend", "--addr", addr, "--from", t.TempDir(), "--user", "4"},
		{"recommend", "--addr", addr, "--user", "4", "--fallback", "random"},
	} {
		if code, _, _ := runCLI(t, args...); code != exitUsage {
			t.Errorf("%v: code %d, want a usage error", args, code)
		}
	}

	// Nothing listening: a clear error.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	if code, _, errOut := runCLI(t, "recommend", "--addr", closed, "--user", "4"); code != exitFailure || !strings.Contains(errOut, "nothing answers there") {
		t.Fatalf("nothing listening: code %d, %s", code, errOut)
	}
}

// TestAdminServesRecommend: the admin endpoint mounts /recommend and
// /similar; with no recommend step to serve they answer 503 with a JSON
// error.
func TestAdminServesRecommend(t *testing.T) {
	a, err := startAdmin("127.0.0.1:0", "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(true)
	a.serveFrom(nil)
	for _, path := range []string{"/recommend?user=1&k=3", "/similar?item=1&k=3"} {
		resp, err := http.Get("http://" + a.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		var e serve.Error
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusServiceUnavailable || e.Error == "" {
			t.Fatalf("%s: %d %+v %v", path, resp.StatusCode, e, err)
		}
	}
}

// checkLiveServing asks a running recs-live job (every event learned, the
// export covering them published) for user's recommendations through
// 'riffle recommend --addr': the model's distinct (user, item) pairs
// must be DuckDB's over both inputs, no item the user has may be served,
// and the list must be the exported one (the same model).
func checkLiveServing(t *testing.T, admin, user string) {
	t.Helper()
	code, out, errOut := runCLI(t, "recommend", "--addr", admin, "--user", user, "--json")
	if code != exitOK {
		t.Fatalf("recommend --addr: exit %d\n%s", code, errOut)
	}
	var got []struct {
		Interactions    int64 `json:"interactions"`
		Recommendations []struct {
			Item int64 `json:"item_id"`
		} `json:"recommendations"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 {
		t.Fatalf("recommend --addr: %v: %s", err, out)
	}
	in := "read_parquet(['data/events.parquet', 'stream.parquet'])"
	pairs := oracle.DuckDBStrings(t, "SELECT count(*) FROM (SELECT DISTINCT user_id, item_id FROM "+in+")")[0][0]
	if strconv.FormatInt(got[0].Interactions, 10) != pairs {
		t.Fatalf("live model has %d interactions, DuckDB counts %s distinct pairs", got[0].Interactions, pairs)
	}
	seen := map[int64]bool{}
	for _, r := range oracle.DuckDBStrings(t, "SELECT DISTINCT item_id FROM "+in+" WHERE user_id = "+user) {
		v, _ := strconv.ParseInt(r[0], 10, 64)
		seen[v] = true
	}
	var live []int64
	for _, r := range got[0].Recommendations {
		if seen[r.Item] {
			t.Fatalf("user %s: item %d served, the user has it", user, r.Item)
		}
		live = append(live, r.Item)
	}
	code, out, errOut = runCLI(t, "recommend", "--from", "out/recs", "--user", user, "--json")
	if code != exitOK {
		t.Fatalf("recommend --from: exit %d\n%s", code, errOut)
	}
	var exp []struct {
		Recommendations []struct {
			Item int64 `json:"item_id"`
		} `json:"recommendations"`
	}
	if err := json.Unmarshal([]byte(out), &exp); err != nil || len(exp) != 1 {
		t.Fatalf("recommend --from: %v: %s", err, out)
	}
	var exported []int64
	for _, r := range exp[0].Recommendations {
		exported = append(exported, r.Item)
	}
	if len(live) != 10 || !slices.Equal(live, exported) {
		t.Fatalf("user %s: live %v, exported %v", user, live, exported)
	}
}

// TestRunServesOnLoopback: a job whose recommend step learns on a stream,
// run without --admin-addr, serves on 127.0.0.1 at a port it logs; before
// the model has seen anyone a user is unknown (404) or the job has no
// model yet (503), with a JSON error either way.
func TestRunServesOnLoopback(t *testing.T) {
	t.Chdir(t.TempDir())
	const yml = `name: live
source:
  kafka:
    topic: events
    fields:
      - {name: user_id, type: int64, required: true}
      - {name: item_id, type: int64, required: true}
steps:
  - recommend: {user: user_id, item: item_id, factors: 4, k: 3}
sink:
  file: {path: out, format: parquet}
`
	if err := os.WriteFile("live.yaml", []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	done, stderr := startCLI(t, "run", "--embedded-kafka", "events:1", "--log-format", "json", "--progress", "never", "live.yaml")
	var url string
	waitFor(t, "the serving log line", done, stderr, func() bool {
		sc := bufio.NewScanner(strings.NewReader(stderr.String()))
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "serving recommendations from the live model" {
				url, _ = m["recommend"].(string)
				return true
			}
		}
		return false
	})
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("serving at %q, want loopback", url)
	}
	resp, err := http.Get(strings.Replace(url, "user=ID", "user=1", 1))
	if err != nil {
		t.Fatal(err)
	}
	var e serve.Error
	err = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if err != nil || (resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusServiceUnavailable) || e.Error == "" {
		t.Fatalf("GET %s: %d %+v %v", url, resp.StatusCode, e, err)
	}
	// /status reports the recommend step's model (ml.RecommendStats).
	status := url[:strings.Index(url, "/recommend")] + "/status"
	resp, err = http.Get(status)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Recommend *ml.RecommendStats `json:"recommend"`
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || st.Recommend == nil || st.Recommend.Serving == nil || st.Recommend.Prequential != nil || st.Recommend.Updates != 0 {
		t.Fatalf("GET %s: %+v %v", status, st.Recommend, err)
	}
	stopRun(t, done, stderr)
}
