package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/riffle-dev/riffle/ml"
)

// liveModel returns a Live synced from an Online trained on a few
// interactions: int64 users 1..20, string items "i0".."i59".
func liveModel(t *testing.T) *ml.Live {
	t.Helper()
	o, err := ml.NewOnline(ml.OnlineOptions{Config: ml.Config{Factors: 8, Seed: 1}})
	if err != nil {
		t.Fatal(err)
	}
	var batch []ml.Interaction
	for u := int64(1); u <= 20; u++ {
		for j := int64(0); j < 6; j++ {
			batch = append(batch, ml.Interaction{User: ml.Int64Key(u), Item: []byte(fmt.Sprintf("i%d", (u*7+j*j)%60)), Weight: 1})
		}
	}
	if _, err := o.Apply(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	l, err := ml.NewLiveOf(8, arrow.PrimitiveTypes.Int64, arrow.BinaryTypes.String)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(o); err != nil {
		t.Fatal(err)
	}
	return l
}

func get(t *testing.T, srv *httptest.Server, path string) (int, string, map[string]any) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: content type %q", path, ct)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s: %v: %s", path, err, body)
	}
	return resp.StatusCode, string(body), m
}

// TestHTTP checks status codes, the JSON answers against the Live's own
// answers, and the id types in JSON.
func TestHTTP(t *testing.T) {
	l := liveModel(t)
	var cur atomic.Pointer[ml.Live]
	mux := http.NewServeMux()
	Register(mux, cur.Load)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	if code, body, _ := get(t, srv, "/recommend?user=3&k=5"); code != http.StatusServiceUnavailable || !strings.Contains(body, `"error"`) {
		t.Fatalf("before a model: %d %s", code, body)
	}
	cur.Store(l)
	ctx := context.Background()
	code, _, m := get(t, srv, "/recommend?user=3&k=5")
	want, err := l.Recommend(ctx, "3", 5, false)
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusOK || m["user_id"] != float64(3) || m["updates"] != float64(1) || m["interactions"] != float64(want.Interactions) || m["fallback"] != nil {
		t.Fatalf("/recommend: %d %v", code, m)
	}
	recs := m["recommendations"].([]any)
	if len(recs) != 5 {
		t.Fatalf("/recommend: %d recommendations, want 5", len(recs))
	}
	for j, r := range recs {
		r := r.(map[string]any)
		if r["item_id"] != want.Items[j] || r["rank"] != float64(j+1) || float32(r["score"].(float64)) != want.Scores[j] {
			t.Fatalf("/recommend rank %d: %v, want %v %v", j+1, r, want.Items[j], want.Scores[j])
		}
	}

	code, _, m = get(t, srv, "/similar?item=i14&k=3")
	sim, err := l.Similar(ctx, "i14", 3)
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusOK || m["item_id"] != "i14" || len(m["similar"].([]any)) != 3 {
		t.Fatalf("/similar: %d %v", code, m)
	}
	for j, r := range m["similar"].([]any) {
		r := r.(map[string]any)
		if r["item_id"] != sim.Items[j] || float32(r["score"].(float64)) != sim.Scores[j] {
			t.Fatalf("/similar rank %d: %v, want %v %v", j+1, r, sim.Items[j], sim.Scores[j])
		}
	}

	code, _, m = get(t, srv, "/recommend?user=999&k=4&fallback=popular")
	pop, err := l.Recommend(ctx, "999", 4, true)
	if err != nil {
		t.Fatal(err)
	}
	var got []any
	for _, r := range m["recommendations"].([]any) {
		got = append(got, r.(map[string]any)["item_id"])
	}
	if code != http.StatusOK || m["fallback"] != FallbackPopular || !reflect.DeepEqual(got, pop.Items) {
		t.Fatalf("fallback: %d %v, want %v", code, m, pop.Items)
	}

	for _, tc := range []struct {
		path string
		code int
	}{
		{"/recommend?user=999&k=4", http.StatusNotFound},
		{"/similar?item=nope&k=4", http.StatusNotFound},
		{"/recommend?user=3", http.StatusBadRequest},
		{"/recommend?user=3&k=0", http.StatusBadRequest},
		{"/recommend?user=3&k=-2", http.StatusBadRequest},
		{"/recommend?user=3&k=ten", http.StatusBadRequest},
		{"/recommend?k=3", http.StatusBadRequest},
		{"/recommend?user=abc&k=3", http.StatusBadRequest}, // not an int64, the model's user ids are
		{"/recommend?user=3&k=3&fallback=random", http.StatusBadRequest},
		{"/similar?k=3", http.StatusBadRequest},
		{"/similar?item=i14&k=", http.StatusBadRequest},
	} {
		code, body, m := get(t, srv, tc.path)
		if code != tc.code || m["error"] == nil || m["error"] == "" {
			t.Errorf("%s: %d %s, want %d with an error", tc.path, code, body, tc.code)
		}
	}
	resp, err := http.Post(srv.URL+"/recommend?"+url.Values{"user": {"3"}, "k": {"3"}}.Encode(), "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /recommend: %d", resp.StatusCode)
	}
}
