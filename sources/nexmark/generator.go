package nexmark

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Pool sizes: the extra columns are substrings of a pool of random
// lowercase letters, item names, descriptions and e-mail parts substrings
// of a pool of letters and spaces (1 in 13).
const (
	extraPoolBytes = 256 << 10
	textPoolBytes  = 64 << 10
	arenaSlack     = 128 // chunked copies read past a string's end
)

// The standard value lists of the Person fields.
var (
	firstNames = [...]string{"Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"}
	lastNames  = [...]string{"Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"}
	usCities   = [...]string{"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"}
	usStates   = [...]string{"AZ", "CA", "ID", "OR", "WA", "WY"}
	hotChannel = [...]string{"Google", "Facebook", "Baidu", "Apple"}
)

// span is a string in the generator's arena.
type span struct{ off, len uint32 }

// Generator computes Nexmark events. Every event is a pure function of the
// seed and its event number (see doc.go), so a Generator is read-only after
// New and safe for concurrent use.
type Generator struct {
	o     Options
	key   uint64
	arena []byte

	extraPool, textPool span
	// Channel names and urls: the numbered channels, then the hot ones.
	chanName, chanURL []span
	names             []span // first × last
	cities            [len(usCities)]span
	states            [len(usStates)]span

	// extra sizes: minimum and spread of the bid extra (fixed base size).
	bidExtraMin, bidExtraDelta uint32
	maxChanLen, maxURLLen      int // longest channel name and url
	// auctionEvents is the number of event numbers NumInFlightAuctions
	// auctions span (sets the auction length).
	auctionEvents int64
	// event time: date_time(n) = base + (n·1000)/rate.
	base   int64
	dq, dr int64 // 1000 / rate, 1000 % rate
}

// New returns a generator for the options (defaults applied).
func New(o Options) (*Generator, error) {
	o = o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	g := &Generator{o: o, key: mix64(uint64(o.Seed) ^ 0x6e65786d61726b31)}
	g.base = o.BaseTime.UnixMilli()
	g.dq, g.dr = 1000/o.Rate, 1000%o.Rate
	g.auctionEvents = int64(o.NumInFlightAuctions) * TotalProportion / AuctionProportion
	d := max(o.AvgBidBytes-4*8, 0)
	delta := int(math.Floor(float64(d)*0.2 + 0.5))
	g.bidExtraMin, g.bidExtraDelta = uint32(d-delta), uint32(2*delta)
	g.buildArena()
	return g, nil
}

// Options returns the options with defaults applied.
func (g *Generator) Options() Options { return g.o }

func (g *Generator) add(s string) span {
	sp := span{uint32(len(g.arena)), uint32(len(s))}
	g.arena = append(g.arena, s...)
	return sp
}

// buildArena draws the pools and the value tables from a random stream of
// the seed's own.
func (g *Generator) buildArena() {
	rng := rand.New(rand.NewPCG(g.key, 0x7461626c6573))
	g.arena = make([]byte, 0, extraPoolBytes+textPoolBytes+numChannels*96+4096)
	g.extraPool = span{uint32(len(g.arena)), extraPoolBytes}
	for range extraPoolBytes {
		g.arena = append(g.arena, byte('a'+rng.IntN(26)))
	}
	g.textPool = span{uint32(len(g.arena)), textPoolBytes}
	for range textPoolBytes {
		c := byte(' ')
		if rng.IntN(13) != 0 {
			c = byte('a' + rng.IntN(26))
		}
		g.arena = append(g.arena, c)
	}
	word := func() string { // Beam's nextString(5, '_'): 3 or 4 characters
		b := make([]byte, 3+rng.IntN(2))
		for i := range b {
			b[i] = '_'
			if rng.IntN(13) != 0 {
				b[i] = byte('a' + rng.IntN(26))
			}
		}
		return string(b)
	}
	baseURL := func() string {
		return "https://www.nexmark.com/" + word() + "/" + word() + "/" + word() + "/item.htm?query=1"
	}
	g.chanName = make([]span, numChannels+len(hotChannel))
	g.chanURL = make([]span, numChannels+len(hotChannel))
	for i, c := range hotChannel {
		g.chanName[numChannels+i] = g.add(c)
		g.chanURL[numChannels+i] = g.add(baseURL())
		g.maxChanLen = max(g.maxChanLen, int(g.chanName[numChannels+i].len))
		g.maxURLLen = max(g.maxURLLen, int(g.chanURL[numChannels+i].len))
	}
	for n := range numChannels {
		g.chanName[n] = g.add("channel-" + strconv.Itoa(n))
		u := baseURL()
		if rng.IntN(10) > 0 {
			id := int32(bits.Reverse32(uint32(n)))
			if id < 0 {
				id = -id // as Java's Math.abs: -MinInt32 stays negative
			}
			u += "&channel_id=" + strconv.Itoa(int(id))
		}
		g.chanURL[n] = g.add(u)
		g.maxChanLen = max(g.maxChanLen, int(g.chanName[n].len))
		g.maxURLLen = max(g.maxURLLen, int(g.chanURL[n].len))
	}
	for _, f := range firstNames {
		for _, l := range lastNames {
			g.names = append(g.names, g.add(f+" "+l))
		}
	}
	for i, c := range usCities {
		g.cities[i] = g.add(c)
	}
	for i, s := range usStates {
		g.states[i] = g.add(s)
	}
	g.arena = append(g.arena, make([]byte, arenaSlack)...)
}

// Kind returns the table of event number n.
func Kind(n int64) Table {
	switch r := n % TotalProportion; {
	case r < PersonProportion:
		return Person
	case r < PersonProportion+AuctionProportion:
		return Auction
	}
	return Bid
}

// EventNumber returns the event number at stream position p: p itself,
// or with OutOfOrderGroupSize g > 1 a permutation within each group of g
// positions (Beam's nextAdjustedEventNumber).
func (g *Generator) EventNumber(p int64) int64 {
	n := int64(g.o.OutOfOrderGroupSize)
	if n == 1 {
		return p
	}
	return p/n*n + p*953%n
}

// EventTime returns the date_time of event number n in milliseconds.
func (g *Generator) EventTime(n int64) int64 {
	return g.base + n*1000/g.o.Rate
}

// minTimeFrom returns the smallest date_time of the events at positions p
// and later.
func (g *Generator) minTimeFrom(p int64) int64 {
	n := int64(g.o.OutOfOrderGroupSize)
	return g.EventTime(p / n * n)
}

// lastAuction is Beam's lastBase0AuctionId: the 0-based id of the last
// auction at or before event number n.
func lastAuction(n int64) int64 {
	epoch, off := n/TotalProportion, n%TotalProportion
	switch {
	case off < PersonProportion:
		epoch--
		off = AuctionProportion - 1
	case off >= PersonProportion+AuctionProportion:
		off = AuctionProportion - 1
	default:
		off -= PersonProportion
	}
	return epoch*AuctionProportion + off
}

// lastPerson is Beam's lastBase0PersonId.
func lastPerson(n int64) int64 {
	epoch, off := n/TotalProportion, n%TotalProportion
	if off >= PersonProportion {
		off = PersonProportion - 1
	}
	return epoch*PersonProportion + off
}

// person picks the seller (hot = 0) or bidder (hot = 1) of event number n
// from 64 random bits: with probability 1 - 1/ratio the hot one, the
// person hot places into the last block of hotPersonBlock persons,
// otherwise a cold one, among the NumActivePeople last ones plus
// personIDLead ahead (Beam's nextBase0PersonId). Both are computed and one
// selected: a 1 in 2 to 1 in 4 choice, a branch would be mispredicted a
// third of the time.
func (g *Generator) person(n int64, h, ratio uint64, hot int64) int64 {
	last := lastPerson(n)
	active := min(last+1, int64(g.o.NumActivePeople))
	cold := last + 1 - active + below(uint32(h>>32), active+personIDLead)
	return pick((uint64(uint32(h))*ratio)>>32, last/hotPersonBlock*hotPersonBlock+hot, cold) + FirstPersonID
}

// auction picks the auction of bid n from 64 random bits: with
// probability 1 - 1/ratio the hot one (the first of the last block of
// hotAuctionBlock auctions), otherwise one among the NumInFlightAuctions
// last ones plus auctionIDLead ahead (Beam's nextBase0AuctionId); as
// person, without a branch.
func (g *Generator) auction(n int64, h, ratio uint64) int64 {
	last := lastAuction(n)
	lo := max(last-int64(g.o.NumInFlightAuctions), 0)
	cold := lo + below(uint32(h>>32), last-lo+1+auctionIDLead)
	return pick((uint64(uint32(h))*ratio)>>32, last/hotAuctionBlock*hotAuctionBlock, cold) + FirstAuctionID
}

// pick returns hot if v > 0, else cold, by arithmetic (the compiler
// would branch on an if, and move the hot value's computation into it).
func pick(v uint64, hot, cold int64) int64 {
	mask := -int64(min(v, 1))
	return cold ^ ((cold ^ hot) & mask)
}

// below maps 32 random bits to [0, n) (n < 2^32).
func below(r uint32, n int64) int64 { return int64((uint64(r) * uint64(n)) >> 32) }

// mix64 is the SplitMix64 finalizer: a bijective 64-bit hash.
func mix64(z uint64) uint64 {
	z ^= z >> 30
	z *= 0xbf58476d1ce4e5b9
	z ^= z >> 27
	z *= 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Random draws of an event: draw k of event number n is
// mix64(key + n·φ + k·c), independent of any other event.
const (
	golden  = 0x9e3779b97f4a7c15
	drawMul = 0xd1b54a32d192ed03
)

func (g *Generator) draw(n int64, k uint64) uint64 {
	return mix64(g.key + uint64(n)*golden + k*drawMul)
}

// Batch generates the events of table t at stream positions [lo, hi) as a
// record batch owned by the caller, allocated from mem (nil: the
// Options' Mem). It may hold no rows.
func (g *Generator) Batch(mem memory.Allocator, t Table, lo, hi int64) (arrow.RecordBatch, error) {
	if lo < 0 || hi < lo {
		return nil, fmt.Errorf("nexmark: bad position range [%d, %d)", lo, hi)
	}
	if mem == nil {
		mem = g.o.Mem
	}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	ns := g.select_(sc, t, lo, hi)
	switch t {
	case Person:
		return g.persons(mem, sc, ns), nil
	case Auction:
		return g.auctions(mem, sc, ns), nil
	default:
		return g.bids(mem, sc, ns), nil
	}
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// spans returns scratch vector k of n spans.
func (sc *scratch) span(k, n int) []span {
	if cap(sc.spans[k]) < n {
		sc.spans[k] = make([]span, n)
	}
	return sc.spans[k][:n]
}

// scratch holds a batch's temporary vectors.
type scratch struct {
	ns    []int64
	times []int64 // date_time of consecutive event numbers from t0
	t0    int64
	spans [4][]span
}

// select_ fills sc.ns with the event numbers of table t at positions
// [lo, hi) in position order, and sc.times with the event times of the
// event numbers they can take.
func (g *Generator) select_(sc *scratch, t Table, lo, hi int64) []int64 {
	gs := int64(g.o.OutOfOrderGroupSize)
	ns := sc.ns[:0]
	if gs == 1 {
		// Straight to the event numbers of the table, epoch by epoch.
		from, to := int64(0), int64(PersonProportion)
		switch t {
		case Auction:
			from, to = PersonProportion, PersonProportion+AuctionProportion
		case Bid:
			from, to = PersonProportion+AuctionProportion, TotalProportion
		}
		for e := lo / TotalProportion * TotalProportion; e < hi; e += TotalProportion {
			for n := max(e+from, lo); n < min(e+to, hi); n++ {
				ns = append(ns, n)
			}
		}
	} else {
		for p := lo; p < hi; p++ {
			if n := p/gs*gs + p*953%gs; Kind(n) == t {
				ns = append(ns, n)
			}
		}
	}
	sc.ns = ns
	// Times of every event number the positions map to, incrementally:
	// one division for the batch, not one per row.
	t0 := lo / gs * gs
	t1 := (hi + gs - 1) / gs * gs
	if int64(cap(sc.times)) < t1-t0 {
		sc.times = make([]int64, t1-t0)
	}
	times := sc.times[:t1-t0]
	q, r := t0*1000/g.o.Rate, t0*1000%g.o.Rate
	rate := g.o.Rate
	for i := range times {
		times[i] = g.base + q
		q += g.dq
		r += g.dr
		if r >= rate {
			r -= rate
			q++
		}
	}
	sc.times, sc.t0 = times, t0
	return ns
}

// int64s allocates a fixed-width buffer of n values.
func int64s(mem memory.Allocator, n int) (*memory.Buffer, []int64) {
	buf := memory.NewResizableBuffer(mem)
	buf.Resize(n * 8)
	return buf, arrow.Int64Traits.CastFromBytes(buf.Bytes())
}

func fixed(t arrow.DataType, n int, buf *memory.Buffer) arrow.Array {
	d := array.NewData(t, n, []*memory.Buffer{nil, buf}, nil, 0, 0)
	buf.Release()
	a := array.MakeFromData(d)
	d.Release()
	return a
}

func record(s *arrow.Schema, n int, cols []arrow.Array) arrow.RecordBatch {
	rec := array.NewRecordBatch(s, cols, int64(n))
	for _, c := range cols {
		c.Release()
	}
	return rec
}

// price draws Beam's price distribution, round(10^(6u)·100) cents for u
// uniform in [0, 1): log-uniform over [1 dollar, 1M dollars].
func price(h uint64) int64 {
	u := float64(int64(h>>11)) * 0x1p-53 // exact either way; a signed conversion is one instruction
	return int64(pow10(6*u)*100 + 0.5)   // positive: truncation rounds down
}

// prices_ turns the random bits in ps into prices in place. A loop of its
// own: the power of ten is a long chain of dependent floating-point
// operations, and in a short loop the processor overlaps those of many
// rows (in the loop drawing every bid field it waited on each; a third of
// a bid's time).
func prices_(ps []int64) {
	for i, h := range ps {
		ps[i] = price(uint64(h))
	}
}

// pow10Table[j] = 10^(j/pow10Steps); pow10 interpolates with a polynomial.
const pow10Steps = 256

var pow10Table = func() (t [6*pow10Steps + 1]float64) {
	for j := range t {
		t[j] = math.Pow(10, float64(j)/pow10Steps)
	}
	return t
}()

// pow10 returns 10^x for x in [0, 6), within 1e-14 relative error (the
// next term, f^6/720 with f < 0.009, is below 1e-15): a
// table lookup and a Taylor polynomial of exp over a step of 1/256.
func pow10(x float64) float64 {
	t := x * pow10Steps
	j := int(t)
	f := (t - float64(j)) * (math.Ln10 / pow10Steps)
	p := 1 + f*(1+f*(1.0/2+f*(1.0/6+f*(1.0/24+f*(1.0/120)))))
	return pow10Table[j] * p
}

// bids fills the bid columns for event numbers ns.
func (g *Generator) bids(mem memory.Allocator, sc *scratch, ns []int64) arrow.RecordBatch {
	n := len(ns)
	aBuf, auction := int64s(mem, n)
	bBuf, bidder := int64s(mem, n)
	pBuf, prices := int64s(mem, n)
	tBuf, times := int64s(mem, n)
	chans, urls, extras := sc.span(0, n), sc.span(1, n), sc.span(2, n)
	hotA, hotB := uint64(g.o.HotAuctionRatio), uint64(g.o.HotBiddersRatio)
	exMin, exDelta := g.bidExtraMin, uint64(g.bidExtraDelta)
	poolRange := uint64(g.extraPool.len - exMin - g.bidExtraDelta)
	for i, e := range ns {
		times[i] = sc.times[e-sc.t0]
		auction[i] = g.auction(e, g.draw(e, 1), hotA)
		bidder[i] = g.person(e, g.draw(e, 2), hotB, 1)
		prices[i] = int64(g.draw(e, 3)) // made a price below
		// Hot or numbered channel, a coin toss: the index is selected
		// without a branch.
		h := g.draw(e, 4)
		c := pick((uint64(uint32(h))*hotChannelsRatio)>>32,
			int64(numChannels+(h>>32)*uint64(len(hotChannel))>>32), int64((h>>32)*numChannels>>32))
		chans[i], urls[i] = g.chanName[c], g.chanURL[c]
		h = g.draw(e, 5)
		l := exMin + uint32((uint64(uint32(h))*exDelta)>>32)
		extras[i] = span{g.extraPool.off + uint32(((h>>32)*poolRange)>>32), l}
	}
	prices_(prices)
	return record(BidSchema, n, []arrow.Array{
		fixed(i64, n, aBuf), fixed(i64, n, bBuf), fixed(i64, n, pBuf),
		g.strings(mem, chans, g.maxChanLen), g.strings(mem, urls, g.maxURLLen),
		fixed(tsMillis, n, tBuf), g.strings(mem, extras, int(exMin+g.bidExtraDelta)),
	})
}

// textString is Beam's nextString(maxLen): 3 to maxLen-1 characters of
// letters and spaces, trimmed, from 32 random bits (length) and 32 more
// (where in the text pool).
func (g *Generator) textString(h uint64, maxLen uint32) span {
	l := 3 + uint32((uint64(uint32(h))*uint64(maxLen-3))>>32)
	off := g.textPool.off + uint32(((h>>32)*uint64(g.textPool.len-maxLen))>>32)
	for l > 0 && g.arena[off] == ' ' {
		off++
		l--
	}
	for l > 0 && g.arena[off+l-1] == ' ' {
		l--
	}
	return span{off, l}
}

// extraSpan is Beam's nextExtra: letters padding an event of size cur to
// avg bytes on average (±20%, uniform), from 64 random bits.
func (g *Generator) extraSpan(h uint64, cur, avg int) span {
	if cur > avg {
		return span{g.extraPool.off, 0}
	}
	d := avg - cur
	delta := int(math.Floor(float64(d)*0.2 + 0.5))
	l := uint32(d - delta)
	if delta > 0 {
		l += uint32((uint64(uint32(h)) * uint64(2*delta)) >> 32)
	}
	off := g.extraPool.off + uint32(((h>>32)*uint64(g.extraPool.len-l))>>32)
	return span{off, l}
}

// auctions fills the auction columns for event numbers ns.
func (g *Generator) auctions(mem memory.Allocator, sc *scratch, ns []int64) arrow.RecordBatch {
	n := len(ns)
	idBuf, ids := int64s(mem, n)
	ibBuf, initial := int64s(mem, n)
	rBuf, reserve := int64s(mem, n)
	tBuf, times := int64s(mem, n)
	xBuf, expires := int64s(mem, n)
	sBuf, seller := int64s(mem, n)
	cBuf, category := int64s(mem, n)
	names, descs, extras := sc.span(0, n), sc.span(1, n), sc.span(2, n)
	hotS := uint64(g.o.HotSellersRatio)
	for i, e := range ns {
		ts := sc.times[e-sc.t0]
		times[i] = ts
		ids[i] = lastAuction(e) + FirstAuctionID
		seller[i] = g.person(e, g.draw(e, 1), hotS, 0)
		h := g.draw(e, 2)
		category[i] = FirstCategoryID + below(uint32(h), NumCategories)
		initial[i] = int64(g.draw(e, 3)) // made prices below
		reserve[i] = int64(g.draw(e, 4))
		// Auctions last 1 + U[0, 2·horizon) ms, horizon being the time
		// until NumInFlightAuctions more auctions are generated.
		horizon := g.EventTime(e+g.auctionEvents) - ts
		expires[i] = ts + 1 + int64(g.draw(e, 8)%uint64(max(2*horizon, 1)))
		names[i] = g.textString(g.draw(e, 5), 20)
		descs[i] = g.textString(g.draw(e, 6), 100)
		cur := 8 + int(names[i].len) + int(descs[i].len) + 5*8
		extras[i] = g.extraSpan(g.draw(e, 7), cur, g.o.AvgAuctionBytes)
	}
	prices_(initial)
	prices_(reserve)
	for i, p := range initial {
		reserve[i] += p
	}
	return record(AuctionSchema, n, []arrow.Array{
		fixed(i64, n, idBuf), g.strings(mem, names, 0), g.strings(mem, descs, 0),
		fixed(i64, n, ibBuf), fixed(i64, n, rBuf), fixed(tsMillis, n, tBuf), fixed(tsMillis, n, xBuf),
		fixed(i64, n, sBuf), fixed(i64, n, cBuf), g.strings(mem, extras, 0),
	})
}

// persons fills the person columns for event numbers ns.
func (g *Generator) persons(mem memory.Allocator, sc *scratch, ns []int64) arrow.RecordBatch {
	n := len(ns)
	idBuf, ids := int64s(mem, n)
	tBuf, times := int64s(mem, n)
	names, cities, states, extras := sc.span(0, n), sc.span(1, n), sc.span(2, n), sc.span(3, n)
	// E-mail addresses (x@y.com, at most 6+1+4+4 bytes) and credit card
	// numbers (4 groups of 4 digits) are composed in place.
	emails := newComposer(mem, n, 15)
	cards := newComposer(mem, n, 19)
	for i, e := range ns {
		times[i] = sc.times[e-sc.t0]
		ids[i] = lastPerson(e) + FirstPersonID
		h := g.draw(e, 1)
		names[i] = g.names[below(uint32(h), int64(len(g.names)))]
		cities[i] = g.cities[below(uint32(h>>32), int64(len(usCities)))]
		h = g.draw(e, 2)
		states[i] = g.states[below(uint32(h), int64(len(usStates)))]
		user, host := g.textString(g.draw(e, 3), 7), g.textString(g.draw(e, 4), 5)
		emails.add(g.bytes(user), '@', g.bytes(host), ".com")
		h = g.draw(e, 5)
		var cc [19]byte
		for k := range 4 {
			v := ((h >> (16 * k)) & 0xffff) * 10000 >> 16 // uniform in [0, 10000)
			cc[5*k], cc[5*k+1], cc[5*k+2], cc[5*k+3] = byte('0'+v/1000), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10)
			if k < 3 {
				cc[5*k+4] = ' '
			}
		}
		cards.add(cc[:], 0, nil, "")
		cur := 8 + int(names[i].len) + emails.last() + 19 + int(cities[i].len) + int(states[i].len)
		extras[i] = g.extraSpan(g.draw(e, 6), cur, g.o.AvgPersonBytes)
	}
	return record(PersonSchema, n, []arrow.Array{
		fixed(i64, n, idBuf), g.strings(mem, names, 0), emails.finish(), cards.finish(),
		g.strings(mem, cities, 0), g.strings(mem, states, 0), fixed(tsMillis, n, tBuf), g.strings(mem, extras, 0),
	})
}

func (g *Generator) bytes(s span) []byte { return g.arena[s.off : s.off+s.len] }

// composer builds a string column row by row into buffers sized for a
// maximum length per row.
type composer struct {
	n          int
	offBuf     *memory.Buffer
	dataBuf    *memory.Buffer
	offs       []int32
	data       []byte
	rows, size int
}

func newComposer(mem memory.Allocator, n, maxLen int) *composer {
	c := &composer{n: n, offBuf: memory.NewResizableBuffer(mem), dataBuf: memory.NewResizableBuffer(mem)}
	c.offBuf.Resize((n + 1) * 4)
	c.dataBuf.Resize(n * maxLen)
	c.offs = arrow.Int32Traits.CastFromBytes(c.offBuf.Bytes())
	c.data = c.dataBuf.Bytes()
	c.offs[0] = 0
	return c
}

// add appends a row: a, then sep unless 0, then b and tail.
func (c *composer) add(a []byte, sep byte, b []byte, tail string) {
	c.size += copy(c.data[c.size:], a)
	if sep != 0 {
		c.data[c.size] = sep
		c.size++
	}
	c.size += copy(c.data[c.size:], b)
	c.size += copy(c.data[c.size:], tail)
	c.rows++
	c.offs[c.rows] = int32(c.size)
}

func (c *composer) last() int { return int(c.offs[c.rows] - c.offs[c.rows-1]) }

func (c *composer) finish() arrow.Array {
	c.dataBuf.ResizeNoShrink(c.size)
	d := array.NewData(str, c.n, []*memory.Buffer{nil, c.offBuf, c.dataBuf}, nil, 0, 0)
	c.offBuf.Release()
	c.dataBuf.Release()
	a := array.MakeFromData(d)
	d.Release()
	return a
}

// EventTimeOf returns the date_time of event number n as a time.Time.
func (g *Generator) EventTimeOf(n int64) time.Time { return time.UnixMilli(g.EventTime(n)).UTC() }
