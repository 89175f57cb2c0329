package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/riffle-dev/riffle/ml"
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
	f := newFlags(e, "recommend", "--from DIR (--user ID ... | --users FILE) [flags]", `
Answers top-K recommendations from a model exported by a recommend step
(export: {path: DIR}): the version named by DIR/LATEST. With embeddings in
the export it scores the users' factors against every item's (the items
the user interacted with excluded), so any --k works; without, it returns
the exported lists (at most the step's k). Only the row groups that may
hold the users asked for are read.`)
	from := f.String("from", "", "export root (the recommend step's export path)")
	var users stringList
	f.Var(&users, "user", "user id (repeat for several)")
	usersFile := f.String("users", "", "file with one user id per line")
	k := f.Int("k", 0, "recommendations per user (default: the step's k)")
	asJSON := f.Bool("json", false, "write JSON (a list of {user_id, model_version, recommendations})")
	if err := f.parse(e, args); err != nil {
		return err
	}
	if *from == "" {
		return usageError{errors.New("recommend: --from DIR is required")}
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
