package nexmark

import (
	"flag"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestDeterminismAcrossSplits: the union of the subtasks' rows is the same
// multiset whatever the parallelism and batch size, for every table, with
// and without out-of-order groups; a subtask's event times never decrease
// without them; another seed gives other rows.
func TestDeterminismAcrossSplits(t *testing.T) {
	for _, tab := range Tables {
		for _, group := range []int{1, 7} {
			t.Run(fmt.Sprintf("%s/group=%d", tab, group), func(t *testing.T) {
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				base := Options{Table: tab, Events: 30_011, Seed: 7, OutOfOrderGroupSize: group}
				ref := readAll(t, base, 1, mem)
				want := sortedCopy(rowStrings(ref[0]))
				releaseAll(ref)
				if len(want) == 0 {
					t.Fatal("no rows")
				}
				for _, c := range []struct{ par, batch int }{{2, 1000}, {3, 777}, {5, 50}, {4, 1}} {
					o := base
					o.BatchEvents = c.batch
					parts := readAll(t, o, c.par, mem)
					var got []string
					for _, p := range parts {
						got = append(got, rowStrings(p)...)
						if group == 1 {
							checkTimesNonDecreasing(t, p)
						}
					}
					releaseAll(parts)
					if got = sortedCopy(got); !slices.Equal(got, want) {
						t.Fatalf("parallelism %d, batch %d: %d rows differ from the %d rows at parallelism 1", c.par, c.batch, len(got), len(want))
					}
				}
				o := base
				o.Seed = 8
				other := readAll(t, o, 1, mem)
				diff := sortedCopy(rowStrings(other[0]))
				releaseAll(other)
				if slices.Equal(diff, want) {
					t.Fatal("seed 8 gives the rows of seed 7")
				}
			})
		}
	}
}

func checkTimesNonDecreasing(t *testing.T, bs []arrow.RecordBatch) {
	t.Helper()
	last := int64(math.MinInt64)
	for _, b := range bs {
		ts := timesOf(b)
		for _, v := range ts {
			if v < last {
				t.Fatalf("date_time %d after %d within a subtask", v, last)
			}
			last = v
		}
	}
}

// TestIDsAndTimes checks ids and event times against their closed forms
// (big-integer arithmetic for the times) at several rates.
func TestIDsAndTimes(t *testing.T) {
	const n = 20_000
	base := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, rate := range []int64{1, 7, 333, 10_000, 3_000_001} {
		for _, tab := range Tables {
			tb := readTable(t, Options{Table: tab, Events: n, Rate: rate, BaseTime: base})
			ns := eventNumbers(tab, n)
			if tb.n != len(ns) {
				t.Fatalf("rate %d %s: %d rows, want %d", rate, tab, tb.n, len(ns))
			}
			for i, e := range ns {
				tm := new(big.Int).Mul(big.NewInt(e), big.NewInt(1000))
				tm.Quo(tm, big.NewInt(rate))
				want := base.UnixMilli() + tm.Int64()
				if got := tb.ints["date_time"][i]; got != want {
					t.Fatalf("rate %d %s event %d: date_time %d, want %d", rate, tab, e, got, want)
				}
				switch tab {
				case Person:
					if got := tb.ints["id"][i]; got != FirstPersonID+int64(i) {
						t.Fatalf("person %d has id %d", i, got)
					}
				case Auction:
					if got := tb.ints["id"][i]; got != FirstAuctionID+int64(i) {
						t.Fatalf("auction %d has id %d", i, got)
					}
				}
			}
		}
	}
}

// TestBidDistributions checks the bids of 2M events: hot auction and bidder
// shares against their exact expectations, the cold picks' ranges, the
// price distribution's moments, channels, urls and extra sizes. Tolerances
// are 5 standard deviations of the estimate (a false failure has odds
// below 1 in a million per check).
func TestBidDistributions(t *testing.T) {
	const n = 2_000_000
	o := Options{Table: Bid, Events: n, Seed: 3}.EnsureDefaults()
	tb := readTable(t, o)
	ns := eventNumbers(Bid, n)
	var hotA, hotB share
	var logP, sizes moments
	chanHot := map[string]int{}
	chanURL := map[string]string{}
	for i, e := range ns {
		la, lp := lastAuction(e), lastPerson(e)
		hot := la/100*100 + FirstAuctionID
		lo := max(la-int64(o.NumInFlightAuctions), 0) + FirstAuctionID
		hi := la + auctionIDLead + FirstAuctionID // inclusive
		a := tb.ints["auction"][i]
		if a != hot && (a < lo || a > hi) {
			t.Fatalf("bid of event %d: auction %d outside the hot one %d and [%d, %d]", e, a, hot, lo, hi)
		}
		hotA.add(a == hot, hotProb(o.HotAuctionRatio, hot, lo, hi))
		hotP, plo, phi := personRange(o, lp, 1)
		b := tb.ints["bidder"][i]
		if b != hotP && (b < plo || b > phi) {
			t.Fatalf("bid of event %d: bidder %d outside the hot one %d and [%d, %d]", e, b, hotP, plo, phi)
		}
		hotB.add(b == hotP, hotProb(o.HotBiddersRatio, hotP, plo, phi))
		p := tb.ints["price"][i]
		if p < 100 || p > 100_000_000 {
			t.Fatalf("price %d outside [100, 1e8]", p)
		}
		logP.add(math.Log10(float64(p) / 100))
		x := len(tb.strs["extra"][i])
		if x < 54 || x > 81 {
			t.Fatalf("bid extra of %d bytes, want 54 to 81", x)
		}
		sizes.add(float64(32 + x))
		ch, u := tb.strs["channel"][i], tb.strs["url"][i]
		if prev, ok := chanURL[ch]; ok && prev != u {
			t.Fatalf("channel %q has urls %q and %q", ch, prev, u)
		}
		chanURL[ch] = u
		chanHot[ch]++
	}
	hotA.check(t, "hot auction share")
	hotB.check(t, "hot bidder share")
	// log10(price/100) is uniform on [0, 6): mean 3, variance 3, fourth
	// central moment 6^4/80.
	logP.checkMean(t, "log10(price/100)", 3, math.Sqrt(3))
	logP.checkVar(t, "log10(price/100)", 3, 6*6*6*6/80.0)
	// Extra is uniform on 54..81: mean 67.5, variance (28^2-1)/12.
	sizes.checkMean(t, "bid size", 32+67.5, math.Sqrt((28*28-1)/12.0))

	urlRe := regexp.MustCompile(`^https://www\.nexmark\.com/[a-z_]{3,4}/[a-z_]{3,4}/[a-z_]{3,4}/item\.htm\?query=1(&channel_id=-?[0-9]+)?$`)
	var hotN, withID, cold int
	for ch, c := range chanHot {
		if !urlRe.MatchString(chanURL[ch]) {
			t.Fatalf("url %q", chanURL[ch])
		}
		if slices.Contains(hotChannel[:], ch) {
			hotN += c
			if strings.Contains(chanURL[ch], "channel_id") {
				t.Fatalf("hot channel %s has url %q", ch, chanURL[ch])
			}
			continue
		}
		if !regexp.MustCompile(`^channel-[0-9]{1,4}$`).MatchString(ch) {
			t.Fatalf("channel %q", ch)
		}
		cold++
		if strings.Contains(chanURL[ch], "&channel_id=") {
			withID++
		}
	}
	var hs share
	for range hotN {
		hs.add(true, 0.5)
	}
	for range len(ns) - hotN {
		hs.add(false, 0.5)
	}
	hs.check(t, "hot channel share")
	if cold < 9_990 { // 10,000 channels, ~920k draws
		t.Fatalf("only %d numbered channels seen", cold)
	}
	var ids share
	for k := range cold {
		ids.add(k < withID, 0.9)
	}
	ids.check(t, "share of channel urls with channel_id")
}

// personRange returns the hot person (the first, +hot, of the block of 100
// holding the last person lp) and the range [lo, hi] of cold picks.
func personRange(o Options, lp, hot int64) (hotP, lo, hi int64) {
	num := lp + 1
	active := min(num, int64(o.NumActivePeople))
	return lp/100*100 + hot + FirstPersonID, num - active + FirstPersonID, num - 1 + personIDLead + FirstPersonID
}

// hotProb is the probability that a pick is the hot id: 1 - 1/ratio, plus
// 1/ratio times the chance the uniform cold pick over [lo, hi] hits it.
func hotProb(ratio int, hot, lo, hi int64) float64 {
	p := 1 - 1/float64(ratio)
	if hot >= lo && hot <= hi {
		p += 1 / float64(ratio) / float64(hi-lo+1)
	}
	return p
}

// TestAuctionDistributions checks auctions: hot sellers, categories,
// reserve above the initial bid, expiry against its closed-form mean, the
// string fields and the average size.
func TestAuctionDistributions(t *testing.T) {
	const n = 3_000_000
	o := Options{Table: Auction, Events: n, Seed: 11}.EnsureDefaults()
	tb := readTable(t, o)
	ns := eventNumbers(Auction, n)
	g, _ := New(o)
	var hotS share
	var length, size, logP moments
	var expMean, expVar float64
	cats := make([]int, NumCategories)
	textRe := regexp.MustCompile(`^[a-z]([a-z ]*[a-z])?$`)
	for i, e := range ns {
		hotP, plo, phi := personRange(o, lastPerson(e), 0)
		s := tb.ints["seller"][i]
		if s != hotP && (s < plo || s > phi) {
			t.Fatalf("auction of event %d: seller %d outside the hot one %d and [%d, %d]", e, s, hotP, plo, phi)
		}
		hotS.add(s == hotP, hotProb(o.HotSellersRatio, hotP, plo, phi))
		c := tb.ints["category"][i] - FirstCategoryID
		if c < 0 || c >= NumCategories {
			t.Fatalf("category %d", c+FirstCategoryID)
		}
		cats[c]++
		ib, rs := tb.ints["initial_bid"][i], tb.ints["reserve"][i]
		if ib < 100 || rs < ib+100 {
			t.Fatalf("initial bid %d, reserve %d", ib, rs)
		}
		logP.add(math.Log10(float64(ib) / 100))
		ts := tb.ints["date_time"][i]
		h := float64(g.EventTime(e+g.auctionEvents) - ts)
		d := tb.ints["expires"][i] - ts
		if d < 1 || float64(d) > 2*h {
			t.Fatalf("auction lasts %d ms, horizon %g", d, h)
		}
		length.add(float64(d))
		expMean += 1 + (2*h-1)/2
		expVar += (4*h*h - 1) / 12
		name, desc := tb.strs["item_name"][i], tb.strs["description"][i]
		if len(name) > 19 || len(desc) > 99 || (name != "" && !textRe.MatchString(name)) || (desc != "" && !textRe.MatchString(desc)) {
			t.Fatalf("item_name %q, description %q", name, desc)
		}
		size.add(float64(8 + len(name) + len(desc) + 5*8 + len(tb.strs["extra"][i])))
	}
	hotS.check(t, "hot seller share")
	chiSquare(t, "category", cats)
	logP.checkMean(t, "log10(initial_bid/100)", 3, math.Sqrt(3))
	k := float64(len(ns))
	if diff := math.Abs(length.mean() - expMean/k); diff > 5*math.Sqrt(expVar)/k {
		t.Fatalf("mean auction length %.3f ms, want %.3f ± %.3f", length.mean(), expMean/k, 5*math.Sqrt(expVar)/k)
	}
	// Extra pads to 500 bytes: d - δ + U[0, 2δ), mean one half below.
	if m := size.mean(); math.Abs(m-499.5) > 0.5 {
		t.Fatalf("average auction size %.2f, want 499.5 ± 0.5", m)
	}
}

// TestPersonFields checks persons: the value lists, e-mail and credit card
// formats, and the average size.
func TestPersonFields(t *testing.T) {
	const n = 5_000_000
	tb := readTable(t, Options{Table: Person, Events: n, Seed: 5})
	emailRe := regexp.MustCompile(`^([a-z]([a-z ]{0,4}[a-z])?)?@([a-z]([a-z ]{0,2}[a-z])?)?\.com$`)
	ccRe := regexp.MustCompile(`^[0-9]{4} [0-9]{4} [0-9]{4} [0-9]{4}$`)
	var size moments
	states := make([]int, len(usStates))
	for i := range tb.n {
		name, email, cc := tb.strs["name"][i], tb.strs["email_address"][i], tb.strs["credit_card"][i]
		city, state := tb.strs["city"][i], tb.strs["state"][i]
		first, last, _ := strings.Cut(name, " ")
		if !slices.Contains(firstNames[:], first) || !slices.Contains(lastNames[:], last) {
			t.Fatalf("name %q", name)
		}
		if !slices.Contains(usCities[:], city) {
			t.Fatalf("city %q", city)
		}
		si := slices.Index(usStates[:], state)
		if si < 0 {
			t.Fatalf("state %q", state)
		}
		states[si]++
		if !emailRe.MatchString(email) {
			t.Fatalf("email %q", email)
		}
		if !ccRe.MatchString(cc) {
			t.Fatalf("credit card %q", cc)
		}
		size.add(float64(8 + len(name) + len(email) + len(cc) + len(city) + len(state) + len(tb.strs["extra"][i])))
	}
	chiSquare(t, "state", states)
	if m := size.mean(); math.Abs(m-199.5) > 1 {
		t.Fatalf("average person size %.2f, want 199.5 ± 1", m)
	}
}

// TestPow10 compares the price kernel's power of ten with math.Pow.
func TestPow10(t *testing.T) {
	for i := range 1_000_000 {
		x := 6 * float64(i) / 1_000_000
		want := math.Pow(10, x)
		if got := pow10(x); math.Abs(got-want) > 1e-13*want {
			t.Fatalf("pow10(%g) = %.17g, want %.17g", x, got, want)
		}
	}
}

// TestSchemaGolden pins the schemas and the first rows of each table for
// seed 1 (go test -run TestSchemaGolden -update rewrites the file).
func TestSchemaGolden(t *testing.T) {
	var sb strings.Builder
	for _, tab := range Tables {
		fmt.Fprintf(&sb, "== %s\n%s\n", tab, tab.Schema())
		bs := readAll(t, Options{Table: tab, Events: 100, Seed: 1}, 1, memory.DefaultAllocator)
		for _, r := range rowStrings(bs[0])[:2] {
			fmt.Fprintln(&sb, r)
		}
		releaseAll(bs)
	}
	checkGolden(t, "tables.golden", sb.String(), *update)
}

// checkGolden compares got with testdata/name, which update rewrites
// first.
func checkGolden(t *testing.T, name, got string, update bool) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("output differs from %s (rerun with -update if intended):\n%s", path, got)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options{
		{Events: -1}, {Rate: -5}, {HotAuctionRatio: -1}, {BatchEvents: 1 << 21}, {AvgBidBytes: -3},
		{Table: Table(9)}, {WatermarkDelay: -2 * time.Second},
		{AvgBidBytes: 300_000}, {AvgAuctionBytes: 1 << 20}, // longer than the extra pool
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	for _, s := range []string{"person", "Auctions", "bid"} {
		if _, err := ParseTable(s); err != nil {
			t.Error(err)
		}
	}
	if _, err := ParseTable("bids2"); err == nil {
		t.Error("ParseTable(bids2) accepted")
	}
}

// share compares a count of successes with the sum of their probabilities.
type share struct{ hits, exp, vr float64 }

func (s *share) add(hit bool, p float64) {
	if hit {
		s.hits++
	}
	s.exp += p
	s.vr += p * (1 - p)
}

func (s *share) check(t *testing.T, what string) {
	t.Helper()
	if d := math.Abs(s.hits - s.exp); d > 5*math.Sqrt(s.vr)+1e-9 {
		t.Fatalf("%s: %.0f hits, want %.1f ± %.1f", what, s.hits, s.exp, 5*math.Sqrt(s.vr))
	}
}

type moments struct{ n, sum, sum2 float64 }

func (m *moments) add(x float64) { m.n++; m.sum += x; m.sum2 += x * x }
func (m *moments) mean() float64 { return m.sum / m.n }
func (m *moments) variance() float64 {
	mu := m.mean()
	return m.sum2/m.n - mu*mu
}

func (m *moments) checkMean(t *testing.T, what string, want, sd float64) {
	t.Helper()
	if tol := 5 * sd / math.Sqrt(m.n); math.Abs(m.mean()-want) > tol {
		t.Fatalf("%s: mean %.5f, want %.5f ± %.5f", what, m.mean(), want, tol)
	}
}

// checkVar: the sample variance has standard deviation sqrt((μ4-σ⁴)/n).
func (m *moments) checkVar(t *testing.T, what string, want, mu4 float64) {
	t.Helper()
	if tol := 5 * math.Sqrt((mu4-want*want)/m.n); math.Abs(m.variance()-want) > tol {
		t.Fatalf("%s: variance %.5f, want %.5f ± %.5f", what, m.variance(), want, tol)
	}
}

// chiSquare fails when counts are not uniform at the 1e-6 level (the
// critical values of chi-square up to 9 degrees of freedom are below 40).
func chiSquare(t *testing.T, what string, counts []int) {
	t.Helper()
	var total float64
	for _, c := range counts {
		total += float64(c)
	}
	e := total / float64(len(counts))
	var x2 float64
	for _, c := range counts {
		x2 += (float64(c) - e) * (float64(c) - e) / e
	}
	if x2 > 40 {
		t.Fatalf("%s: chi-square %.1f over %d values: not uniform (%v)", what, x2, len(counts), counts)
	}
}

// TestLargestExtras generates bids and auctions at the largest average
// sizes allowed: every extra is lowercase letters of a length within ±20%
// of the bytes missing (the chunked copies of bids must not read past
// what the pools hold).
func TestLargestExtras(t *testing.T) {
	for _, tab := range []Table{Bid, Auction} {
		o := Options{Table: tab, Events: 2000, AvgBidBytes: maxAvgBytes, AvgAuctionBytes: maxAvgBytes}
		tb := readTable(t, o)
		for i, x := range tb.strs["extra"] {
			if l := len(x); l < maxAvgBytes*3/4 || l > maxAvgBytes*5/4 {
				t.Fatalf("%s %d: extra of %d bytes, want about %d", tab, i, l, maxAvgBytes)
			}
			if strings.Trim(x, "abcdefghijklmnopqrstuvwxyz") != "" {
				t.Fatalf("%s %d: extra has characters other than letters", tab, i)
			}
		}
	}
}
