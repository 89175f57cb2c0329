package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/riffle-dev/riffle/checkpoint"
	"github.com/riffle-dev/riffle/internal/kafkatest"
)

// EnvRequireBrowser makes the browser test fail instead of skipping when
// Debian's chromium is missing (scripts/test.sh sets it: CI must run it).
const EnvRequireBrowser = "RIFFLE_REQUIRE_BROWSER"

// EnvArtifacts, when set, is the directory the browser test saves its
// screenshots in (default: the test's artifact directory, kept with
// 'go test -artifacts').
const EnvArtifacts = "RIFFLE_TEST_ARTIFACTS"

// chromium returns the path of the chromium binary, skipping the test (or
// failing it under RIFFLE_REQUIRE_BROWSER=1) without one.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const how = "install it with scripts/browser.sh (Debian's chromium)"
	if os.Getenv(EnvRequireBrowser) == "1" {
		t.Fatalf("%s=1 but no chromium on PATH; %s", EnvRequireBrowser, how)
	}
	t.Skipf("no chromium on PATH, skipping the browser test; %s", how)
	return ""
}

// browser drives one headless chromium tab and records every JavaScript
// exception, console error and failed load of the page.
type browser struct {
	ctx    context.Context
	mu     sync.Mutex
	errors []string
	// gone: the job was stopped on purpose, so a refused connection is
	// the page noticing, not a fault.
	gone bool
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), chromedp.ExecPath(chromium(t)), chromedp.Headless,
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1400, 1000))
	t.Cleanup(cancelA)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	b := &browser{ctx: ctx}
	if err := chromedp.Do(ctx); err != nil { // starts the browser and its tab
		t.Fatalf("starting chromium: %v", err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			switch {
			case m.IsException(), m.Type == chromedp.ConsoleError && m.Source == "":
				b.fail(m.String())
			case m.Type == chromedp.ConsoleError && m.Source != "":
				b.mu.Lock()
				gone := b.gone
				b.mu.Unlock()
				if !gone || !strings.Contains(m.Text, "ERR_CONNECTION_REFUSED") {
					b.fail(m.Source + ": " + m.String() + " " + m.URL)
				}
			}
		}
	}()
	return b
}

func (b *browser) fail(msg string) {
	b.mu.Lock()
	b.errors = append(b.errors, msg)
	b.mu.Unlock()
}

// jobGone says the job was stopped on purpose.
func (b *browser) jobGone() {
	b.mu.Lock()
	b.gone = true
	b.mu.Unlock()
}

// check fails the test on any JavaScript error seen so far.
func (b *browser) check(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errors) > 0 {
		t.Fatalf("the page had errors:\n%s", strings.Join(b.errors, "\n"))
	}
}

// do runs actions with a deadline, failing the test (with what was being
// waited for) on error.
func (b *browser) do(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.check(t)
		t.Fatalf("browser: %s: %v", what, err)
	}
	b.check(t)
}

// get runs one action that returns a value.
func get[T any](t *testing.T, b *browser, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 90*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.check(t)
		t.Fatalf("browser: %s: %v", what, err)
	}
	b.check(t)
	return v
}

// waitJS waits until the JavaScript expression is true on the page.
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(80*time.Second))
}

// text is the text content of the element with the CSS selector sel.
func text(t *testing.T, b *browser, sel string) string {
	t.Helper()
	return get(t, b, "text of "+sel, chromedp.TextContent(chromedp.CSS(sel)))
}

// screenshot saves the page as name.png for the test's artifacts.
func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	dir := os.Getenv(EnvArtifacts)
	if dir == "" {
		dir = t.ArtifactDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	png := get(t, b, "screenshot", chromedp.FullScreenshot(100)) // quality 100: PNG
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

// TestWebViewInBrowser starts a window job against the real broker with a
// planted idle partition and a small recommend job, and drives the web
// view in headless chromium: the graph shows every node of the API's
// graph, each colored by a state; the rows-in counter grows after more
// events are produced; the "why not fired" panel names the idle
// partition; the page says the job ended once it is stopped; a user
// lookup in the recommender box lists items the user has not seen; and the
// savepoint button, with the job's token typed in, takes a savepoint that
// loads and shows in the checkpoint history. Any
// JavaScript exception or console error fails the test.
func TestWebViewInBrowser(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	b := newBrowser(t)
	dir := t.TempDir()
	topic := kafkatest.CreateTopic(t, brokers, kafkatest.UniqueName("web-idle"), 2)
	base := int64(1_700_000_000_000)
	plantIdle(t, brokers, topic, base, 400)
	admin := freeAddr(t)
	done, stderr := startCLI(t, "run", "--admin-addr", admin, "--progress", "never", idleJobFile(t, dir, brokers, topic, ""))
	api := "http://" + admin
	var g apiGraph
	waitFor(t, "the graph", done, stderr, func() bool {
		g = apiGraph{}
		return apiCall(t, "GET", api+"/api/graph", "", "", "", &g) == 200 && len(g.Nodes) > 0
	})
	var want []string
	for _, n := range g.Nodes {
		want = append(want, n.Name)
	}

	b.do(t, "open the page", chromedp.Navigate(api+"/"), waitJS(fmt.Sprintf(`document.querySelectorAll('#graph g.node').length === %d`, len(want))))
	drawn := get(t, b, "read the graph", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#graph g.node')).map(g => g.dataset.node)`))
	states := get(t, b, "read the states", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll('#graph g.node')).map(g => g.dataset.state + ':' + g.querySelector('rect').getAttribute('fill'))`))
	if !slices.Equal(drawn, want) {
		t.Fatalf("the page draws nodes %v, the job has %v", drawn, want)
	}
	for _, s := range states {
		st, fill, _ := strings.Cut(s, ":")
		if !slices.Contains([]string{stateBusy, stateBackpressured, stateIdle}, st) || !strings.HasPrefix(fill, "#") {
			t.Fatalf("node states and colors %v", states)
		}
	}
	// The rows-in counter: read it, produce more, wait for it to grow.
	b.do(t, "the rows counter", waitJS(`Number(document.getElementById('rows-total').textContent) >= 401`))
	first := text(t, b, "#rows-total")
	var more []kafkago.Message
	for i := range 300 {
		more = append(more, kafkago.Message{Partition: 0, Value: []byte(fmt.Sprintf(`{"item_id":%d,"event_time":%d}`, i%7, base+400_000+int64(i)*1000))})
	}
	kafkatest.Produce(t, brokers, topic, more)
	b.do(t, "the rows counter grows", waitJS(fmt.Sprintf(`Number(document.getElementById('rows-total').textContent) > %s`, first)))
	second := text(t, b, "#rows-total")
	t.Logf("rows in: %s, then %s", first, second)
	// Why has the window not fired? Partition 1 holds it back.
	idle := topic + "/1"
	b.do(t, "the why-not-fired panel", waitJS(fmt.Sprintf(`document.getElementById('why').textContent.includes('Kafka partition %s')`, idle)))
	why := text(t, b, "#why")
	if !strings.Contains(why, "window-2") || !strings.Contains(why, "held by "+idle) {
		t.Fatalf("why panel: %q", why)
	}
	b.screenshot(t, "web-view-idle-partition")
	// Stopped, the page says the job ended.
	b.jobGone()
	if code := apiCall(t, "POST", api+"/api/stop", "", "application/json", "{}", nil); code != http.StatusAccepted {
		t.Fatalf("stop: %d", code)
	}
	if code := <-done; code != exitOK {
		t.Fatalf("run: exit %d\n%s", code, stderr)
	}
	b.do(t, "the ended banner", waitJS(`!document.getElementById('banner').classList.contains('hidden')`))
	banner := text(t, b, "#banner")
	if !strings.Contains(banner, "job has ended") {
		t.Fatalf("banner after the job ended: %q", banner)
	}
	b.screenshot(t, "web-view-ended")

	// The recommender box.
	recTopic := kafkatest.CreateTopic(t, brokers, kafkatest.UniqueName("web-recs"), 1)
	seen := map[int64]map[int64]bool{}
	var msgs []kafkago.Message
	const users, items = 30, 40
	for u := int64(1); u <= users; u++ {
		seen[u] = map[int64]bool{}
		for j := int64(0); j < 8; j++ {
			it := 100 + (u*7+j*j*3)%items
			seen[u][it] = true
			msgs = append(msgs, kafkago.Message{Value: []byte(fmt.Sprintf(`{"user_id":%d,"item_id":%d}`, u, it))})
		}
	}
	kafkatest.Produce(t, brokers, recTopic, msgs)
	recJob := writeRecsJob(t, dir, "recs", brokers, recTopic, "update: {every: 50, interval: 100ms, prequential: {k: 5, window: 50}}")
	recAdmin := freeAddr(t)
	const token = "tok-e2e"
	recDone, recErr := startCLI(t, "run", "--admin-addr", recAdmin, "--admin-token", token, "--checkpoint-dir", filepath.Join(dir, "ck"),
		"--checkpoint-interval", "200ms", "--progress", "never", recJob)
	recAPI := "http://" + recAdmin
	waitFor(t, "the model to have every interaction", recDone, recErr, func() bool {
		var r apiRecommender
		return apiCall(t, "GET", recAPI+"/api/recommender", "", "", "", &r) == 200 && r.Serving && r.Users == users
	})
	b.do(t, "open the recommender's page", chromedp.Navigate(recAPI+"/"),
		waitJS(`document.getElementById('rec-summary').textContent.includes('30 users')`),
		chromedp.SetValue(chromedp.CSS("#rec-user"), "7"),
		chromedp.Click(chromedp.CSS("#rec-go")),
		waitJS(`document.querySelectorAll('#rec-result li.rec-item').length > 0`))
	got := get(t, b, "read the recommendations", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#rec-result li.rec-item')).map(li => li.textContent)`))
	if len(got) != 10 { // k=10 asked; 40 items, 8 seen at most
		t.Fatalf("the lookup lists %d items, want 10: %v", len(got), got)
	}
	for _, s := range got {
		var it int64
		if _, err := fmt.Sscanf(s, "item %d", &it); err != nil || it < 100 || it >= 100+items || seen[7][it] {
			t.Fatalf("recommended %q: want an item of the catalogue user 7 has not seen (%v)", s, seen[7])
		}
	}
	// The live prequential curve: more events for the same users, scored
	// against the model before it learns them.
	var round2 []kafkago.Message
	for u := int64(1); u <= users; u++ {
		for j := int64(0); j < 4; j++ {
			round2 = append(round2, kafkago.Message{Value: []byte(fmt.Sprintf(`{"user_id":%d,"item_id":%d}`, u, 100+(u*5+j*11+1)%items))})
		}
	}
	kafkatest.Produce(t, brokers, recTopic, round2)
	var rec apiRecommender
	waitFor(t, "the second round applied and sampled", recDone, recErr, func() bool {
		rec = apiRecommender{}
		if apiCall(t, "GET", recAPI+"/api/recommender", "", "", "", &rec) != 200 || rec.Stats == nil || rec.Stats.Prequential == nil {
			return false
		}
		c := rec.PrequentialCurve
		return rec.Stats.Applied == int64(len(msgs)+len(round2)) && rec.Stats.Pending == 0 && len(c) > 0 &&
			c[len(c)-1].Events == rec.Stats.Prequential.Counts.Events
	})
	if p := rec.Stats.Prequential; p.Model.Events == 0 || p.Counts.Events < int64(len(round2)) { // and part of the first round, if updates split it
		t.Fatalf("the second round should be scored: %+v", *p)
	}
	b.do(t, "the prequential curve",
		waitJS(fmt.Sprintf(`document.getElementById('preq-summary').textContent.includes('over %d scored events')`, rec.Stats.Prequential.Model.Events)),
		waitJS(`document.querySelectorAll('#preq-chart path.preq-line').length === 4 && document.getElementById('preq-chart').getBoundingClientRect().height > 50`))
	// The savepoint button, with the token typed in.
	sp := filepath.Join(dir, "sp-from-page")
	b.do(t, "a savepoint from the page",
		chromedp.SetValue(chromedp.CSS("#token"), token),
		chromedp.SetValue(chromedp.CSS("#savepoint-dir"), sp),
		chromedp.Click(chromedp.CSS("#savepoint-btn")),
		waitJS(`document.getElementById('action-result').textContent.startsWith('done: ')`),
		waitJS(`document.getElementById('checkpoints').textContent.includes('(savepoint)')`))
	if res := text(t, b, "#action-result"); res != "done: "+sp {
		t.Fatalf("savepoint result on the page: %q, want done: %s", res, sp)
	}
	if _, err := checkpoint.Load(sp); err != nil {
		t.Fatalf("the page's savepoint does not load: %v", err)
	}
	b.screenshot(t, "web-view-recommender")
	stopRun(t, recDone, recErr)
	b.check(t)
}
