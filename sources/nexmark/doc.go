// Package nexmark generates the Nexmark benchmark's streams (persons opening
// accounts, auctions, bids) as Arrow record batches, following the
// semantics of the Beam and Flink Nexmark generators, and serves them as an
// arrowexec.Source, as Parquet files and as Kafka topics.
//
// # Events
//
// The stream is a sequence of event numbers n = 0, 1, 2, ... Of every 50
// consecutive numbers (an epoch), the first is a person, the next 3 are
// auctions and the other 46 bids (Kind). Persons and auctions are numbered
// in order from FirstPersonID and FirstAuctionID (1000): the person of epoch
// e has id 1000+e, its auctions 1000+3e .. 1000+3e+2. An event's date_time
// is BaseTime + floor(n·1000/Rate) ms: Rate events per second of event
// time.
//
// Every field other than ids and times is drawn from random bits that are a
// hash of (Seed, n, field): an event is a pure function of the seed and its
// event number, never of what was generated before. That is what makes the
// generator splittable and vectorized: a batch fills each column in one loop
// over its event numbers, with no per-event objects and no shared random
// state.
//
// The fields follow Beam's generator (and Flink's, which adds channel and
// url to bids):
//
//   - bid.auction: with probability 1 - 1/HotAuctionRatio the hot auction
//     (the first of the last block of 100 auctions), otherwise uniform over
//     the NumInFlightAuctions last auctions and 10 ahead.
//   - bid.bidder and auction.seller: with probability 1 - 1/HotBiddersRatio
//     (HotSellersRatio) a hot person (the second, for sellers the first, of
//     the last block of 100 persons), otherwise uniform over the
//     NumActivePeople last persons and 10 ahead.
//   - bid.price, auction.initial_bid: round(10^(6u)·100) for u uniform in
//     [0, 1), log-uniform cents from 100 to 10^8; auction.reserve is
//     initial_bid plus another such price.
//   - auction.category: uniform over 10 .. 14; auction.expires: date_time +
//     1 + U[0, 2h) ms, h being the event time NumInFlightAuctions more
//     auctions take (so about that many auctions are open at a time).
//   - bid.channel and url: half the bids from one of 4 hot channels (Google,
//     Facebook, Baidu, Apple), each with a fixed url, the others from
//     "channel-N", N uniform below 10,000, with a url of its own (9 in 10
//     of them ending in "&channel_id=" and N's bits reversed). Urls look
//     like https://www.nexmark.com/abc/de_f/ghi/item.htm?query=1.
//   - person.name (first and last name from fixed lists), city (10 US
//     cities), state (AZ, CA, ID, OR, WA, WY), email_address (x@y.com, x of
//     3 to 6 and y of 3 or 4 random characters), credit_card (4 groups of 4
//     digits); auction.item_name and description: 3 to 19 and 3 to 99
//     random letters and spaces, trimmed.
//   - extra pads each event to an average size (AvgPersonBytes 200,
//     AvgAuctionBytes 500, AvgBidBytes 100; counting 8 bytes per number and
//     the bytes of the strings, as Beam does): for d missing bytes, a string
//     of random letters of d - δ + U[0, 2δ) characters, δ = round(0.2·d).
//     Bids, whose 4 numbers count 32 bytes, carry 54 to 81 bytes of extra.
//
// Random strings are not drawn character by character: they are substrings
// of pools of random characters drawn once per seed (256 KiB of letters for
// extra, 64 KiB of letters and spaces for the others) at random offsets,
// and channels and urls come from tables built once per seed. Their lengths
// and characters have the specified distributions, but they repeat pool
// content, so they compress better than independent random strings would.
//
// With OutOfOrderGroupSize g > 1 the events within each group of g
// consecutive positions come out permuted (position p carries event number
// ⌊p/g⌋·g + (953·p mod g), as in Beam); with the default of 1, date_time
// never decreases along a subtask's output.
//
// # Tables and schemas
//
// Person, Auction and Bid are three tables with the schemas PersonSchema,
// AuctionSchema and BidSchema (Beam's and Flink's fields, snake_cased), and
// a Source emits one table, chosen by Options.Table. The three are exact
// partitions of one event stream: sources of the three tables with the same
// options generate together exactly the events of the union, and a source
// skips the event numbers of other tables at no cost, since no event
// depends on another. Separate sources are what the Nexmark queries read
// (Flink's SQL defines person, auction and bid as views filtering its
// union table on event_type); a job that needs the union reads the three
// sources (a source per table, or a Generator's Batch for each).
//
// # Splitting, batches and determinism
//
// Positions are cut into blocks of BatchEvents (default 8192); subtask i of
// p generates blocks i, i+p, i+2p, ..., in order, one batch per block (the
// events of its table among the block's positions; with Pace, the part of
// the block that is due). With Events > 0 the
// stream is bounded to positions [0, Events); with Events = 0 it is
// unbounded. The union of the subtasks' output is the same set of rows
// whatever the parallelism and BatchEvents, and the same seed gives the same
// rows on any machine.
//
// A Reader builds its batches from a recycling allocator over the task's
// allocator: the buffers of a batch, once its last consumer releases it,
// serve a later batch of the same reader (unzeroed: the generator writes
// every byte of every column), so a running source costs neither Go
// allocations nor garbage collection per batch; Close hands what it keeps
// back to the task's allocator (recycle.go). String columns are gathered
// from the pools in 16-byte chunks, for bids a fixed number per column
// (strings.go); hot-or-cold choices are selected by arithmetic, not
// branches, and prices computed in a loop of their own (generator.go).
//
// # Checkpoints and rescaling
//
// A Reader is an arrowexec.Checkpointer: its state is the streams of
// blocks it has left (a fresh subtask has one: blocks i, i+p, ..., from a
// position inside block i), a few varints, since an event depends on
// nothing but its position. A restore pools the streams of every subtask
// of the previous run and shares them out among the new subtasks,
// splitting each into several of a larger stride when there are fewer
// streams than subtasks, so a job restores at any parallelism and emits
// exactly the events the checkpoint had not covered. A reader holding
// several streams generates from the one furthest behind. Restoring with
// another seed, table, BatchEvents or Events is an error (checkpoint.go
// has the format).
//
// # Time, pacing and watermarks
//
// Without Pace a reader generates as fast as it is asked; with Pace it
// emits no event before start + (date_time - BaseTime) of wall-clock time,
// returning (nil, nil) after at most 100 ms of waiting so that the runtime
// can inject barriers and watermarks. A Reader implements
// arrowexec.WatermarkSource: the generator knows the smallest date_time it
// can still emit (that of the first event number of the out-of-order group
// at its next position), and its watermark is that minus 1 ms minus
// WatermarkDelay (default 4 s, the bound Flink's Nexmark table declares;
// NoWatermarkDelay for the exact watermark). Event-time windows over a
// Nexmark source fire without any watermark strategy in the job.
//
// # Files and topics
//
// WriteParquet writes tables to Parquet files through the writer of
// internal/gen (atomic, zstd, one row group per chunk), and Produce
// replays a table into a Kafka topic through sinks/kafka.Produce, one JSON
// message per row; riffle nexmark gen does both from the command line.
package nexmark
