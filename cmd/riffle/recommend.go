package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/riffle-dev/riffle/ml"
	"github.com/riffle-dev/riffle/ml/serve"
)

func init() {
	register(command{name: "recommend", short: "answer top-K recommendations for users from an exported model", run: runRecommend})
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// recAnswer is one user's answer (--json writes a list of them).
type recAnswer struct {
	User            json.RawMessage `json:"user_id"`
	ModelVersion    int64           `json:"model_version"`
	Recommendations []recItem       `json:"recommendations"`
}

type recItem struct {
	Item  json.RawMessage `json:"item_id"`
	Rank  int             `json:"rank"`
	Score float32         `json:"score"`
}

func runRecommend(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "recommend", "(--from DIR | --addr HOST:PORT) (--user ID ... | --users FILE) [flags]", `
Answers top-K recommendations from a model exported by a recommend step
(export: {path: DIR}): the version named by DIR/LATEST. With embeddings in
the export it scores the users' factors against every item's (the items
the user interacted with excluded), so any --k works; without, it returns
the exported lists (at most the step's k). Only the row groups that may
hold the users asked for are read.

With --addr it asks a running job instead: a job whose recommend step
learns on a stream serves its live model on its admin address ('riffle run
--admin-addr', else 127.0.0.1 at a port it logs) through GET
/recommend?user=ID&k=N; the answer names the number of model updates it
was computed at. An unknown user is an error, or with --fallback popular
gets the items with the most users.`)
	from := f.String("from", "", "export root (the recommend step's export path)")
	addr := f.String("addr", "", "a running job's admin address (its --admin-addr): ask its live model")
	fallback := f.String("fallback", "", "with --addr: 'popular' answers an unknown user with the most popular items")
	var users stringList
	f.Var(&users, "user", "user id (repeat for several)")
	usersFile := f.String("users", "", "file with one user id per line")
	k := f.Int("k", 0, "recommendations per user (default: the step's k; with --addr 10)")
	asJSON := f.Bool("json", false, "write JSON (a list of {user_id, model_version, recommendations}; with --addr, of the job's answers)")
	if err := f.parse(e, args); err != nil {
		return err
	}
	switch {
	case *from == "" && *addr == "":
		return usageError{errors.New("recommend: --from DIR or --addr HOST:PORT is required")}
	case *from != "" && *addr != "":
		return usageError{errors.New("recommend: --from and --addr exclude each other")}
	case *fallback != "" && (*addr == "" || *fallback != serve.FallbackPopular):
		return usageError{fmt.Errorf("recommend: --fallback %q: the one fallback is %q, with --addr", *fallback, serve.FallbackPopular)}
	}
	if *usersFile != "" {
		fh, err := os.Open(*usersFile)
		if err != nil {
			return usageError{fmt.Errorf("recommend: --users: %w", err)}
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			if id := strings.TrimSpace(sc.Text()); id != "" {
				users = append(users, id)
			}
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			return fmt.Errorf("recommend: --users %s: %w", *usersFile, err)
		}
	}
	if len(users) == 0 {
		return usageError{errors.New("recommend: no user: give --user ID or --users FILE")}
	}
	if *k < 0 {
		return usageError{fmt.Errorf("recommend: --k must be > 0, got %d", *k)}
	}
	if *addr != "" {
		if *k == 0 {
			*k = 10
		}
		return recommendLive(ctx, e, *addr, users, *k, *fallback, *asJSON)
	}
	ex, err := ml.OpenLatest(*from)
	if err != nil {
		return err
	}
	if *k == 0 {
		*k = ex.Manifest.K
	}
	if ex.Manifest.UserIDType == "int64" {
		for i, u := range users {
			v, err := strconv.ParseInt(u, 10, 64)
			if err != nil {
				return usageError{fmt.Errorf("recommend: user %q: the model's user ids are int64", u)}
			}
			users[i] = strconv.FormatInt(v, 10)
		}
	}
	if !ex.Manifest.Embeddings && *k > ex.Manifest.K {
		return usageError{fmt.Errorf("recommend: --k %d: the export has no embeddings, only lists of %d", *k, ex.Manifest.K)}
	}
	answers, err := answerUsers(ctx, ex, users, *k, false)
	if err != nil {
		return err
	}
	missing := 0
	for _, u := range users {
		if _, ok := answers[u]; !ok {
			missing++
			e.log.Warn("recommend: unknown user", "user", u, "model_version", ex.Version)
		}
	}
	out := make([]recAnswer, 0, len(users))
	for _, u := range users {
		if a, ok := answers[u]; ok {
			out = append(out, a)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		printAnswers(e.stdout, out)
	}
	if missing == len(users) {
		return fmt.Errorf("recommend: none of the %d users is in model %s", len(users), ml.VersionName(ex.Version))
	}
	return nil
}

// printAnswers writes answers as text: a line per user, then one per
// recommendation (rank, item, score).
func printAnswers(w io.Writer, answers []recAnswer) {
	for _, a := range answers {
		fmt.Fprintf(w, "user %s (model %s):\n", a.User, ml.VersionName(a.ModelVersion))
		for _, r := range a.Recommendations {
			fmt.Fprintf(w, "  %3d  %-20s %.6g\n", r.Rank, r.Item, r.Score)
		}
	}
}

// answerUsers returns the answers of the users found in the export: from
// the exported lists when it has no embeddings or lists is set, else
// scored from the factors.
func answerUsers(ctx context.Context, ex *ml.Export, users []string, k int, lists bool) (map[string]recAnswer, error) {
	m := ex.Manifest
	idJSON := func(typ, id string) json.RawMessage {
		if typ == "string" {
			b, _ := json.Marshal(id)
			return b
		}
		return json.RawMessage(id)
	}
	out := map[string]recAnswer{}
	if !m.Embeddings || lists {
		ls, err := ex.Lists(ctx, users)
		if err != nil {
			return nil, err
		}
		for u, l := range ls {
			a := recAnswer{User: idJSON(m.UserIDType, u), ModelVersion: ex.Version}
			for _, r := range l[:min(k, len(l))] {
				a.Recommendations = append(a.Recommendations, recItem{Item: idJSON(m.ItemIDType, r.Item), Rank: r.Rank, Score: r.Score})
			}
			out[u] = a
		}
		return out, nil
	}
	items, err := ex.ReadFactors(ctx, ml.ItemFactorsDir, nil)
	if err != nil {
		return nil, err
	}
	us, err := ex.ReadFactors(ctx, ml.UserFactorsDir, users)
	if err != nil {
		return nil, err
	}
	model := &ml.Model{Factors: items.K, NumUsers: len(us.IDs), NumItems: len(items.IDs), UserFactors: us.Factors, ItemFactors: items.Factors}
	var ru, ri []int32
	for u, seen := range us.Seen {
		for _, it := range seen {
			i, ok := items.Index[it]
			if !ok {
				return nil, fmt.Errorf("recommend: %s: user %s has item %s, which has no factors", ml.VersionName(ex.Version), us.IDs[u], it)
			}
			ru, ri = append(ru, int32(u)), append(ri, i)
		}
	}
	exclude, err := ml.NewInteractions(model.NumUsers, model.NumItems, ru, ri, nil)
	if err != nil {
		return nil, err
	}
	scorer, err := model.NewScorer()
	if err != nil {
		return nil, err
	}
	if model.NumUsers == 0 {
		return out, nil
	}
	err = scorer.TopK(ctx, nil, k, exclude, 0, func(u int32, its []int32, scores []float32) error {
		a := recAnswer{User: idJSON(m.UserIDType, us.IDs[u]), ModelVersion: ex.Version}
		for j, it := range its {
			a.Recommendations = append(a.Recommendations, recItem{Item: idJSON(m.ItemIDType, items.IDs[it]), Rank: j + 1, Score: scores[j]})
		}
		out[us.IDs[u]] = a
		return nil
	})
	return out, err
}

// recommendLive asks a running job's live model (GET /recommend on its
// admin address) for each user's top k, and prints the answers.
func recommendLive(ctx context.Context, e *env, addr string, users []string, k int, fallback string, asJSON bool) error {
	var out []json.RawMessage
	failed := 0
	for _, u := range users {
		q := url.Values{"user": {u}, "k": {strconv.Itoa(k)}}
		if fallback != "" {
			q.Set("fallback", fallback)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/recommend?"+q.Encode(), nil)
		if err != nil {
			return usageError{fmt.Errorf("recommend: --addr %q: %w", addr, err)}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return adminDialError("recommend", addr, err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("recommend: %s: reading the answer: %w", addr, err)
		}
		if resp.StatusCode != http.StatusOK {
			var se serve.Error
			if json.Unmarshal(body, &se) != nil || se.Error == "" {
				return fmt.Errorf("recommend: %s: %s: unexpected answer %q", addr, resp.Status, body)
			}
			if resp.StatusCode == http.StatusNotFound {
				failed++
				e.log.Warn("recommend: unknown user", "user", u, "error", se.Error)
				continue
			}
			return fmt.Errorf("recommend: %s: user %s: %s: %s", addr, u, resp.Status, se.Error)
		}
		out = append(out, body)
	}
	if asJSON {
		buf, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s\n", buf)
	} else {
		for _, body := range out {
			var a serve.Recommendations
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.UseNumber()
			if err := dec.Decode(&a); err != nil {
				return fmt.Errorf("recommend: %s: unexpected answer %q: %w", addr, body, err)
			}
			how := ""
			if a.Fallback != "" {
				how = ", unknown user: most " + a.Fallback
			}
			fmt.Fprintf(e.stdout, "user %v (live model, %d updates%s):\n", a.User, a.Updates, how)
			for _, r := range a.Recommendations {
				fmt.Fprintf(e.stdout, "  %3d  %-20v %.6g\n", r.Rank, r.Item, r.Score)
			}
		}
	}
	if failed == len(users) {
		return fmt.Errorf("recommend: none of the %d users is known to the job at %s", len(users), addr)
	}
	return nil
}
