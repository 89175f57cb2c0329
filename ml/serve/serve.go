package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/riffle-dev/riffle/ml"
)

// Item is one entry of an answer.
type Item struct {
	Item  any     `json:"item_id"`
	Rank  int     `json:"rank"`
	Score float32 `json:"score"`
}

// Recommendations is the answer of GET /recommend.
type Recommendations struct {
	User            any    `json:"user_id"`
	Updates         uint64 `json:"updates"`
	Interactions    int64  `json:"interactions"`
	Fallback        string `json:"fallback,omitempty"`
	Recommendations []Item `json:"recommendations"`
}

// Similar is the answer of GET /similar.
type Similar struct {
	Item         any    `json:"item_id"`
	Updates      uint64 `json:"updates"`
	Interactions int64  `json:"interactions"`
	Similar      []Item `json:"similar"`
}

// Error is the answer of a failed request.
type Error struct {
	Error string `json:"error"`
}

// FallbackPopular is the fallback parameter's one value.
const FallbackPopular = "popular"

// Register mounts GET /recommend and GET /similar on mux, answered from
// the Live that live returns at each request (nil: no model yet, 503).
func Register(mux *http.ServeMux, live func() *ml.Live) {
	mux.HandleFunc("GET /recommend", func(w http.ResponseWriter, r *http.Request) { recommend(w, r, live) })
	mux.HandleFunc("GET /similar", func(w http.ResponseWriter, r *http.Request) { similar(w, r, live) })
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, Error{Error: fmt.Sprintf(format, args...)})
}

// query reads the id parameter and k, answering 400 or 503 itself.
func query(w http.ResponseWriter, r *http.Request, live func() *ml.Live, idParam string) (*ml.Live, string, int, bool) {
	q := r.URL.Query()
	id := q.Get(idParam)
	if id == "" {
		fail(w, http.StatusBadRequest, "%s is required (%s?%s=ID&k=N)", idParam, r.URL.Path, idParam)
		return nil, "", 0, false
	}
	ks := q.Get("k")
	k, err := strconv.Atoi(ks)
	if err != nil || k <= 0 {
		fail(w, http.StatusBadRequest, "k=%q: want a positive integer", ks)
		return nil, "", 0, false
	}
	l := live()
	if l == nil {
		fail(w, http.StatusServiceUnavailable, "the job has no model to serve yet")
		return nil, "", 0, false
	}
	return l, id, k, true
}

// failQuery answers a Live query's error.
func failQuery(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ml.ErrUnknownUser), errors.Is(err, ml.ErrUnknownItem):
		fail(w, http.StatusNotFound, "%v", err)
	case errors.Is(err, ml.ErrBadQuery):
		fail(w, http.StatusBadRequest, "%v", err)
	default:
		fail(w, http.StatusInternalServerError, "%v", err)
	}
}

// results recycles the Live answers (RecommendTo, SimilarTo), so that a
// request allocates only for its JSON.
var results = sync.Pool{New: func() any { return new(ml.LiveResult) }}

func items(res *ml.LiveResult) []Item {
	out := make([]Item, len(res.Items))
	for j, it := range res.Items {
		out[j] = Item{Item: it, Rank: j + 1, Score: res.Scores[j]}
	}
	return out
}

func recommend(w http.ResponseWriter, r *http.Request, live func() *ml.Live) {
	fb := r.URL.Query().Get("fallback")
	if fb != "" && fb != FallbackPopular {
		fail(w, http.StatusBadRequest, "fallback=%q: the only fallback is %q", fb, FallbackPopular)
		return
	}
	l, id, k, ok := query(w, r, live, "user")
	if !ok {
		return
	}
	res := results.Get().(*ml.LiveResult)
	defer results.Put(res)
	if err := l.RecommendTo(r.Context(), id, k, fb == FallbackPopular, res); err != nil {
		failQuery(w, err)
		return
	}
	out := Recommendations{User: res.ID, Updates: res.Updates, Interactions: res.Interactions, Recommendations: items(res)}
	if res.Fallback {
		out.Fallback = FallbackPopular
	}
	writeJSON(w, http.StatusOK, out)
}

func similar(w http.ResponseWriter, r *http.Request, live func() *ml.Live) {
	l, id, k, ok := query(w, r, live, "item")
	if !ok {
		return
	}
	res := results.Get().(*ml.LiveResult)
	defer results.Put(res)
	if err := l.SimilarTo(r.Context(), id, k, res); err != nil {
		failQuery(w, err)
		return
	}
	writeJSON(w, http.StatusOK, Similar{Item: res.ID, Updates: res.Updates, Interactions: res.Interactions, Similar: items(res)})
}
