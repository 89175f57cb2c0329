package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

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
	a, err := startAdmin("127.0.0.1:0", slog.New(slog.NewTextHandler(io.Discard, nil)))
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
