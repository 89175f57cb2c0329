package nexmark

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Table selects which of the three Nexmark streams a source emits.
type Table int

const (
	Person Table = iota
	Auction
	Bid
)

// Tables lists the tables in event-kind order (the order of their share of
// every epoch of TotalProportion events).
var Tables = [3]Table{Person, Auction, Bid}

func (t Table) String() string {
	switch t {
	case Person:
		return "person"
	case Auction:
		return "auction"
	case Bid:
		return "bid"
	}
	return fmt.Sprintf("Table(%d)", int(t))
}

// ParseTable parses "person", "auction" or "bid" (any case; plural allowed).
func ParseTable(s string) (Table, error) {
	switch strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), "s") {
	case "person", "people":
		return Person, nil
	case "auction":
		return Auction, nil
	case "bid":
		return Bid, nil
	}
	return 0, fmt.Errorf("nexmark: unknown table %q (want person, auction or bid)", s)
}

// The fixed constants of the Nexmark specification.
const (
	// Of every TotalProportion consecutive event numbers, the first
	// PersonProportion are persons, the next AuctionProportion auctions and
	// the rest bids.
	PersonProportion  = 1
	AuctionProportion = 3
	BidProportion     = 46
	TotalProportion   = PersonProportion + AuctionProportion + BidProportion

	FirstPersonID   = 1000 // id of the first person
	FirstAuctionID  = 1000 // id of the first auction
	FirstCategoryID = 10   // categories are FirstCategoryID .. +NumCategories-1
	NumCategories   = 5

	// A hot auction is the first of the last block of hotAuctionBlock
	// auctions; a hot seller the first, a hot bidder the second person of
	// the last block of hotPersonBlock persons.
	hotAuctionBlock = 100
	hotPersonBlock  = 100
	// Cold picks may reach this many ids past the last one generated.
	personIDLead  = 10
	auctionIDLead = 10

	// Channels: 1 in hotChannelsRatio bids come from one of the numbered
	// channels, the others from one of the hot ones.
	hotChannelsRatio = 2
	numChannels      = 10_000

	// maxAvgBytes bounds AvgPersonBytes, AvgAuctionBytes and AvgBidBytes.
	maxAvgBytes = 128 << 10
)

// Defaults of Options (those of the Beam and Flink Nexmark configurations).
var (
	DefaultRate                int64 = 10_000 // events per second of event time
	DefaultHotAuctionRatio           = 2
	DefaultHotSellersRatio           = 4
	DefaultHotBiddersRatio           = 4
	DefaultAvgPersonBytes            = 200
	DefaultAvgAuctionBytes           = 500
	DefaultAvgBidBytes               = 100
	DefaultNumInFlightAuctions       = 100
	DefaultNumActivePeople           = 1000
	DefaultOutOfOrderGroupSize       = 1
	DefaultWatermarkDelay            = 4 * time.Second // Flink's Nexmark DDL: dateTime - INTERVAL '4' SECOND
	DefaultBaseTime                  = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	DefaultBatchEvents               = 8192
)

// NoWatermarkDelay as Options.WatermarkDelay makes the watermark trail the
// generator's exact lower bound on future event times by nothing.
const NoWatermarkDelay time.Duration = -1

// Options configure a Generator and a Source. The zero value of every field
// selects its default; Validate checks the rest.
type Options struct {
	// Table is the stream a Source emits (Person by zero value: set it).
	Table Table
	// Events is the number of event numbers of the whole stream, over all
	// three tables and all subtasks; 0 is unbounded. A table gets its
	// share: Events·46/50 bids, roughly.
	Events int64
	// Seed selects the data; 0 is a seed like any other.
	Seed int64
	// Rate is in events (of all tables) per second of event time: event
	// number n has date_time BaseTime + floor(n·1000/Rate) ms. Default
	// 10,000 (Beam's firstEventRate).
	Rate int64
	// Pace holds a Source back to Rate in wall-clock time: no event is
	// emitted before start + (its date_time - BaseTime). Off by default
	// (as fast as the consumer takes them).
	Pace bool
	// BaseTime is the date_time of event number 0; default
	// 2025-01-01T00:00:00Z.
	BaseTime time.Time

	// HotAuctionRatio: 1 - 1/HotAuctionRatio of the bids go to the hot
	// auction. HotSellersRatio and HotBiddersRatio likewise for the
	// sellers of auctions and the bidders of bids. Defaults 2, 4, 4.
	HotAuctionRatio, HotSellersRatio, HotBiddersRatio int
	// AvgPersonBytes, AvgAuctionBytes and AvgBidBytes are the average
	// sizes the extra column pads each event to (counting 8 bytes per
	// number and the bytes of every string). Defaults 200, 500, 100.
	AvgPersonBytes, AvgAuctionBytes, AvgBidBytes int
	// NumInFlightAuctions is how many recent auctions a cold bid picks
	// from (and sets the auctions' average length); NumActivePeople how
	// many recent persons a cold seller or bidder is picked from.
	// Defaults 100 and 1000.
	NumInFlightAuctions, NumActivePeople int
	// OutOfOrderGroupSize > 1 permutes the events within each group of
	// that many consecutive event numbers (Beam's outOfOrderGroupSize);
	// default 1: event times never decrease.
	OutOfOrderGroupSize int
	// WatermarkDelay is subtracted from the generator's exact watermark
	// (the smallest date_time it can still emit, minus 1 ms). Default 4s
	// as in Flink's Nexmark table; NoWatermarkDelay for none.
	WatermarkDelay time.Duration

	// BatchEvents is the number of consecutive event numbers (of all
	// tables) one batch covers; the batch holds the events of Table
	// among them. Subtask i of p generates blocks i, i+p, i+2p, ... of
	// BatchEvents event numbers. Default 8192. The union of every
	// subtask's output is the same whatever BatchEvents and parallelism.
	BatchEvents int
	// Mem allocates the Arrow buffers of a Generator used outside a job
	// (a Source uses the Task's); default memory.DefaultAllocator.
	Mem memory.Allocator
}

// EnsureDefaults returns a copy of o with every unset field set to its default.
func (o Options) EnsureDefaults() Options {
	setInt := func(p *int, d int) {
		if *p == 0 {
			*p = d
		}
	}
	if o.Rate == 0 {
		o.Rate = DefaultRate
	}
	if o.BaseTime.IsZero() {
		o.BaseTime = DefaultBaseTime
	}
	setInt(&o.HotAuctionRatio, DefaultHotAuctionRatio)
	setInt(&o.HotSellersRatio, DefaultHotSellersRatio)
	setInt(&o.HotBiddersRatio, DefaultHotBiddersRatio)
	setInt(&o.AvgPersonBytes, DefaultAvgPersonBytes)
	setInt(&o.AvgAuctionBytes, DefaultAvgAuctionBytes)
	setInt(&o.AvgBidBytes, DefaultAvgBidBytes)
	setInt(&o.NumInFlightAuctions, DefaultNumInFlightAuctions)
	setInt(&o.NumActivePeople, DefaultNumActivePeople)
	setInt(&o.OutOfOrderGroupSize, DefaultOutOfOrderGroupSize)
	setInt(&o.BatchEvents, DefaultBatchEvents)
	switch o.WatermarkDelay {
	case 0:
		o.WatermarkDelay = DefaultWatermarkDelay
	case NoWatermarkDelay:
		o.WatermarkDelay = 0
	}
	if o.Mem == nil {
		o.Mem = memory.DefaultAllocator
	}
	return o
}

// Validate checks options after EnsureDefaults.
func (o Options) Validate() error {
	var errs []error
	if o.Table < Person || o.Table > Bid {
		errs = append(errs, fmt.Errorf("unknown table %d", int(o.Table)))
	}
	if o.Events < 0 {
		errs = append(errs, fmt.Errorf("events %d: must not be negative", o.Events))
	}
	if o.Rate < 1 || o.Rate > 1_000_000_000 {
		errs = append(errs, fmt.Errorf("rate %d: want 1 to 1e9 events per second", o.Rate))
	}
	for _, r := range []struct {
		name string
		v    int
	}{{"hot auction ratio", o.HotAuctionRatio}, {"hot sellers ratio", o.HotSellersRatio}, {"hot bidders ratio", o.HotBiddersRatio},
		{"in-flight auctions", o.NumInFlightAuctions}, {"active people", o.NumActivePeople}, {"out-of-order group size", o.OutOfOrderGroupSize},
		{"batch events", o.BatchEvents}} {
		if r.v < 1 {
			errs = append(errs, fmt.Errorf("%s %d: must be positive", r.name, r.v))
		}
	}
	for _, r := range []struct {
		name string
		v    int
	}{{"person", o.AvgPersonBytes}, {"auction", o.AvgAuctionBytes}, {"bid", o.AvgBidBytes}} {
		// Extras are cut from a pool of extraPoolBytes: at most 1.2 times
		// the average size, and the bid's chunked copies read up to a
		// fifth of it past a string's end, into the next pool.
		if r.v < 1 || r.v > maxAvgBytes {
			errs = append(errs, fmt.Errorf("average %s size %d: want 1 to %d", r.name, r.v, maxAvgBytes))
		}
	}
	if o.BatchEvents > 1<<20 {
		errs = append(errs, fmt.Errorf("batch events %d: at most 1Mi", o.BatchEvents))
	}
	if o.WatermarkDelay < 0 {
		errs = append(errs, fmt.Errorf("negative watermark delay %s", o.WatermarkDelay))
	}
	if len(errs) > 0 {
		return fmt.Errorf("nexmark: %w", errors.Join(errs...))
	}
	return nil
}
