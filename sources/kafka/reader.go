package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/riffle-dev/riffle/arrowexec"
	"github.com/riffle-dev/riffle/internal/kafkaretry"
)

// partState is one partition owned by a reader.
type partState struct {
	Partition
	split int   // index in Source.parts: the watermark split
	next  int64 // offset after the last message consumed (emitted or dropped)
	done  bool  // bounded: reached End
}

// chunk is what a partition's fetcher hands to the reader: the messages of
// one fetch, in offset order.
type chunk struct {
	p    *partState
	recs []record
	next int64 // fetch position after recs
	done bool  // bounded partition finished: recs is empty
	err  error
}

// Reader is the SourceReader of one subtask. It implements
// arrowexec.Checkpointer, arrowexec.CheckpointListener and
// arrowexec.WatermarkSource.
type Reader struct {
	s      *Source
	t      *arrowexec.Task
	parts  []*partState
	chunks chan chunk
	cancel context.CancelFunc
	wg     sync.WaitGroup
	dec    *decoder
	cur    *chunk
	curIdx int
	timer  *time.Timer
	left   int // partitions not done (bounded)

	wms     *arrowexec.Watermarks
	tsCol   int
	rowPart []int32 // split of every row of the batch being built
	tsBuf   []int64
	maxBy   map[int]int64

	pending map[uint64]map[string]map[int]int64 // snapshots awaiting completion (GroupID)
	recPool sync.Pool                           // []record slices handed back by Next to the fetchers
	failed  error                               // returned by every Next after the batch it ended
	closed  bool
	dlOpen  bool
}

var (
	_ arrowexec.SourceReader       = (*Reader)(nil)
	_ arrowexec.Checkpointer       = (*Reader)(nil)
	_ arrowexec.CheckpointListener = (*Reader)(nil)
	_ arrowexec.WatermarkSource    = (*Reader)(nil)
)

// Open creates the reader of subtask t.Subtask: it owns partitions i with
// i % t.Parallelism == t.Subtask, resolves where each starts (restored
// position, else Options.Start) and starts one fetcher per partition.
func (s *Source) Open(ctx context.Context, t *arrowexec.Task) (arrowexec.SourceReader, error) {
	r := &Reader{s: s, t: t, tsCol: -1, maxBy: map[int]int64{}, pending: map[uint64]map[string]map[int]int64{}}
	var mine []Partition
	for i, p := range s.parts {
		if i%t.Parallelism == t.Subtask {
			r.parts = append(r.parts, &partState{Partition: p, split: i, next: -1})
			mine = append(mine, p)
		}
	}
	if err := r.resolveStart(ctx, mine); err != nil {
		return nil, err
	}
	if s.o.Watermark.Column != "" {
		r.tsCol = s.schema.FieldIndices(s.o.Watermark.Column)[0]
		r.wms = arrowexec.NewWatermarks(s.o.Watermark, nil)
		if t.Metrics != nil {
			r.wms.ReportTo(t.Metrics, func(split int) string {
				return s.parts[split].Topic + "/" + strconv.Itoa(s.parts[split].ID)
			})
		}
	}
	for _, p := range r.parts {
		if s.o.Bounded && p.next >= p.End {
			p.done = true
			if r.wms != nil {
				r.wms.FinishSplit(p.split)
			}
			continue
		}
		r.left++
		if r.wms != nil {
			r.wms.AddSplit(p.split)
		}
	}
	if s.dl != nil {
		if err := s.dl.Open(); err != nil {
			return nil, err
		}
		r.dlOpen = true
	}
	s.readerOpened()
	r.dec = newDecoder(s.o, s.schema, t.Mem)
	r.chunks = make(chan chunk, 2*len(r.parts)+1)
	fctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	for _, p := range r.parts {
		if p.done {
			continue
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.fetch(fctx, p)
		}()
	}
	return r, nil
}

// resolveStart sets every partition's start position.
func (r *Reader) resolveStart(ctx context.Context, mine []Partition) error {
	o := r.s.o
	if rs := r.t.Restore; rs != nil {
		restored := map[string]map[int]int64{}
		for i, blob := range rs.Operator {
			if len(blob) == 0 {
				continue
			}
			var m map[string]map[int]int64
			if err := json.Unmarshal(blob, &m); err != nil {
				return fmt.Errorf("kafka: restoring subtask %d of checkpoint %d: %w", i, rs.CheckpointID, err)
			}
			for t, ps := range m {
				if restored[t] == nil {
					restored[t] = map[int]int64{}
				}
				for p, off := range ps {
					restored[t][p] = off
				}
			}
		}
		// Partitions the checkpoint does not know (new partitions or
		// topics) start at the earliest offset, so nothing is missed.
		var fresh []*partState
		var freshP []Partition
		for _, p := range r.parts {
			if off, ok := restored[p.Topic][p.ID]; ok {
				p.next = off
			} else {
				fresh = append(fresh, p)
				freshP = append(freshP, p.Partition)
			}
		}
		offs, err := r.s.listOffsets(ctx, freshP, func(Partition) int64 { return kafkago.FirstOffset })
		if err != nil {
			return err
		}
		for i, p := range fresh {
			p.next = offs[i]
		}
		return nil
	}
	var offs []int64
	var err error
	switch o.Start {
	case StartEarliest:
		offs, err = r.s.listOffsets(ctx, mine, func(Partition) int64 { return kafkago.FirstOffset })
	case StartLatest:
		offs = make([]int64, len(mine))
		for i, p := range mine {
			offs[i] = p.End // the end recorded by New: the job's start
		}
	case StartTimestamp:
		ms := o.StartTime.UnixMilli()
		offs, err = r.s.listOffsets(ctx, mine, func(Partition) int64 { return ms })
	case StartCommitted:
		offs, err = r.s.committedOffsets(ctx, mine)
		if err == nil {
			var first []int64
			first, err = r.s.listOffsets(ctx, mine, func(Partition) int64 { return kafkago.FirstOffset })
			for i := range offs {
				if err == nil && (offs[i] < 0 || offs[i] < first[i]) {
					offs[i] = first[i]
				}
			}
		}
	}
	if err != nil {
		return err
	}
	for i, p := range r.parts {
		p.next = offs[i]
	}
	return nil
}

// fetch reads partition p from its start position until the context ends
// (or, bounded, until End), handing chunks to the reader.
//
// An empty fetch (the broker held the request for FetchMaxWait and had
// nothing: kafka-go reports it as RequestTimedOut on a connection that stays
// usable) is no data, not a failure. Failures (dial, leader lookup, fetch)
// are retried with backoff, each retry logged at warn level, until they
// have lasted Options.RetryTimeout; then the reader fails with a
// *FetchError. Authorization failures, a partition that no longer exists
// and an offset deleted by retention fail at once.
func (r *Reader) fetch(ctx context.Context, p *partState) {
	if r.s.o.Isolation != IsolationNone {
		r.fetchTxn(ctx, p)
		return
	}
	o := r.s.o
	st, off, end, send := r.startFetch(ctx, p)
	var (
		conn      *kafkago.Conn
		stopWatch func() bool
	)
	// closeConn closes the connection; a context watcher also closes it
	// when the reader closes, so a fetch blocked on the network returns.
	closeConn := func() {
		if conn != nil {
			stopWatch()
			conn.Close()
			conn = nil
		}
	}
	defer closeConn()
	streak := kafkaretry.Streak{Backoff: o.RetryBackoff, Timeout: o.RetryTimeout}
	log := r.t.Log
	if log == nil {
		log = slog.Default()
	}
	// fail handles a failed step: it reports whether to try again (after a
	// backoff) or the reader failed.
	fail := func(step string, err error) bool {
		closeConn()
		if ctx.Err() != nil {
			return false
		}
		kind := kafkaretry.Kind(step, err)
		if !streak.Failed(err) {
			st.setRetrying("")
			send(chunk{p: p, err: &FetchError{Topic: p.Topic, Partition: p.ID, Offset: off, Step: kind,
				Attempts: streak.Attempts(), For: streak.Lasted(), Brokers: r.s.brokers(), Err: err}})
			return false
		}
		st.setRetrying(kind + ": " + err.Error())
		log.Warn("kafka: retrying partition", "topic", p.Topic, "partition", p.ID, "offset", off,
			"attempt", streak.Attempts(), "step", kind, "err", err, "retrying_for", streak.Lasted().Round(time.Millisecond),
			"retry_timeout", o.RetryTimeout)
		return streak.Wait(ctx)
	}
	for ctx.Err() == nil {
		if end >= 0 && off >= end {
			send(chunk{p: p, next: off, done: true})
			return
		}
		if conn == nil {
			c, err := r.dial(ctx, p)
			if err != nil {
				if errors.Is(err, kafkago.UnknownTopicOrPartition) {
					send(chunk{p: p, err: fmt.Errorf("kafka: topic %q partition %d: %w", p.Topic, p.ID, err)})
					return
				}
				step := kafkaretry.Dial
				var se *stepError
				if errors.As(err, &se) {
					step = se.step
				}
				if !fail(step, err) {
					return
				}
				continue
			}
			conn = c
			stopWatch = context.AfterFunc(ctx, func() { c.Close() })
			if _, err := conn.Seek(off, kafkago.SeekAbsolute|kafkago.SeekDontCheck); err != nil {
				if !fail(kafkaretry.Dial, err) {
					return
				}
				continue
			}
		}
		conn.SetReadDeadline(time.Now().Add(o.FetchMaxWait + o.ConnectTimeout))
		batch := conn.ReadBatchWith(kafkago.ReadBatchConfig{MinBytes: 1, MaxBytes: o.FetchMaxBytes, MaxWait: o.FetchMaxWait})
		// Messages go out in fixed-size slabs, recycled by Next, so the
		// steady state allocates no record slices.
		recs := r.getRecs()
		sent := false
		var err error
		for {
			var m kafkago.Message
			m, err = batch.ReadMessage()
			if err != nil {
				break
			}
			if end >= 0 && m.Offset >= end {
				continue
			}
			recs = append(recs, record{offset: m.Offset, ts: m.Time.UnixMilli(), key: m.Key, value: m.Value})
			if len(recs) == slabSize {
				off = m.Offset + 1
				if !send(chunk{p: p, recs: recs, next: off}) {
					batch.Close()
					return
				}
				sent = true
				recs = r.getRecs()
			}
		}
		cerr := batch.Close()
		got := sent || len(recs) > 0
		if len(recs) > 0 {
			off = recs[len(recs)-1].offset + 1
			if !send(chunk{p: p, recs: recs, next: off}) {
				return
			}
		} else {
			r.putRecs(recs)
			if !sent {
				if bo := batch.Offset(); bo > off {
					off = bo // skipped control records or compacted gaps
				}
			}
		}
		if err != nil && errors.Is(err, io.EOF) {
			err = nil
		}
		if err == nil {
			err = cerr
		}
		if errors.Is(err, kafkago.RequestTimedOut) {
			// An empty long poll: no data, and the connection is fine.
			err = nil
		}
		if err == nil {
			if streak.Attempts() > 0 {
				log.Info("kafka: partition recovered", "topic", p.Topic, "partition", p.ID, "offset", off,
					"attempts", streak.Attempts(), "after", streak.Lasted().Round(time.Millisecond))
				streak.Reset()
				st.setRetrying("")
			}
			st.fetched(batch.HighWaterMark(), got)
			continue
		}
		if errors.Is(err, kafkago.OffsetOutOfRange) {
			send(chunk{p: p, err: fmt.Errorf("kafka: topic %q partition %d offset %d: %w (data deleted by retention before it was read?)", p.Topic, p.ID, off, err)})
			return
		}
		if ctx.Err() != nil {
			return
		}
		if !fail(stepFetch, err) {
			return
		}
	}
}

// startFetch returns what a partition's fetcher starts from: the
// partition's status (marked started), its start offset, its end (-1 when
// unbounded) and the function that hands a chunk to the reader (false once
// ctx ended).
func (r *Reader) startFetch(ctx context.Context, p *partState) (st *partStatus, off, end int64, send func(chunk) bool) {
	st = r.s.status[p.split]
	off = p.next
	st.start(off)
	end = -1
	if r.s.o.Bounded {
		end = p.End
	}
	send = func(c chunk) bool {
		select {
		case r.chunks <- c:
			return true
		case <-ctx.Done():
			return false
		}
	}
	return st, off, end, send
}

// slabSize is the number of messages in one chunk.
const slabSize = 2048

func (r *Reader) getRecs() []record {
	if v, ok := r.recPool.Get().(*[]record); ok {
		return (*v)[:0]
	}
	return make([]record, 0, slabSize)
}

// putRecs recycles a consumed chunk's slice (its messages are dropped).
func (r *Reader) putRecs(recs []record) {
	clear(recs)
	recs = recs[:0]
	r.recPool.Put(&recs)
}

// dial connects to the leader of p through the first bootstrap broker that
// answers, within ConnectTimeout. The error is wrapped with the step that
// failed (leader lookup or dial leader; kafkaretry.Kind tells a refused
// connection from a metadata failure).
func (r *Reader) dial(ctx context.Context, p *partState) (*kafkago.Conn, error) {
	d := &kafkago.Dialer{Timeout: r.s.o.ConnectTimeout, ClientID: "riffle"}
	// kafka-go's lookup retries temporary errors until its context ends:
	// bound it.
	ctx, cancel := context.WithTimeout(ctx, r.s.o.ConnectTimeout)
	defer cancel()
	var err error
	for _, b := range r.s.o.Brokers {
		var part kafkago.Partition
		part, err = d.LookupPartition(ctx, "tcp", b, p.Topic, p.ID)
		if errors.Is(err, kafkago.UnknownTopicOrPartition) {
			return nil, err
		}
		if err != nil {
			err = &stepError{step: stepLookup, err: err}
			continue
		}
		var c *kafkago.Conn
		c, err = d.DialPartition(ctx, "tcp", b, part)
		if err == nil {
			return c, nil
		}
		err = &stepError{step: stepLeaderDial, err: fmt.Errorf("leader %s:%d: %w", part.Leader.Host, part.Leader.Port, err)}
	}
	return nil, err
}

// stepError tags an error with the step of reaching a partition that
// returned it.
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// Next returns the next batch: when MaxBatchRows rows are decoded, when
// MaxBatchDelay passed since the call with at least one row, (nil, nil) when
// the delay passed without any, and (nil, io.EOF) once a bounded source read
// every partition to its end.
func (r *Reader) Next(ctx context.Context) (arrow.RecordBatch, error) {
	if r.closed {
		return nil, errors.New("kafka: Next on closed reader")
	}
	if r.failed != nil {
		return nil, r.failed
	}
	o := r.s.o
	rows := 0
	r.rowPart = r.rowPart[:0]
	var timeout <-chan time.Time
	start := true
	deadline := time.Now().Add(o.MaxBatchDelay)
	for rows < o.MaxBatchRows {
		if r.cur == nil {
			if r.left == 0 && o.Bounded {
				break
			}
			// The delay bounds the call even when data keeps arriving but
			// decodes to no rows (bad messages), so barriers never wait.
			wait := time.Until(deadline)
			if wait <= 0 {
				break
			}
			var c chunk
			select {
			case c = <-r.chunks:
			default:
				if timeout == nil {
					if r.timer == nil {
						r.timer = time.NewTimer(wait)
					} else {
						r.timer.Reset(wait)
					}
					timeout = r.timer.C
				}
				select {
				case c = <-r.chunks:
				case <-timeout:
					timeout = nil
					goto done
				case <-ctx.Done():
					r.stopTimer(timeout)
					return nil, r.abandon(context.Cause(ctx), rows)
				}
			}
			if c.err != nil {
				r.stopTimer(timeout)
				if rows > 0 {
					r.failed = c.err
					goto done
				}
				return nil, r.abandon(c.err, rows)
			}
			if c.done {
				c.p.done = true
				if c.next > c.p.next {
					c.p.next = c.next
				}
				r.left--
				if r.wms != nil {
					r.wms.FinishSplit(c.p.split)
				}
				continue
			}
			r.cur, r.curIdx = &c, 0
			if r.wms != nil {
				r.wms.Touch(c.p.split)
			}
			if start {
				r.dec.reserve(min(o.MaxBatchRows, len(c.recs)+len(r.chunks)*slabSize))
				start = false
			}
		}
		c := r.cur
		p := c.p
		n := min(len(c.recs)-r.curIdx, o.MaxBatchRows-rows)
		for _, m := range c.recs[r.curIdx : r.curIdx+n] {
			if err := r.dec.add(&m, p.Topic, p.ID); err != nil {
				merr := &MessageError{Topic: p.Topic, Partition: p.ID, Offset: m.offset, Reason: err}
				switch o.OnError {
				case OnErrorSkip:
					r.s.stats.skipped.Add(1)
				case OnErrorDeadLetter:
					if werr := writeDeadLetter(r.s.dl, p.Topic, p.ID, m.offset, err, m.value); werr != nil {
						r.stopTimer(timeout)
						return r.failAfter(werr, rows)
					}
					r.s.stats.deadLettered.Add(1)
				default:
					r.stopTimer(timeout)
					return r.failAfter(merr, rows)
				}
			} else {
				rows++
				r.rowPart = append(r.rowPart, int32(p.split))
			}
			p.next = m.offset + 1
		}
		var nbytes int64
		for _, m := range c.recs[r.curIdx : r.curIdx+n] {
			nbytes += int64(len(m.key) + len(m.value))
		}
		r.s.stats.bytes.Add(nbytes)
		r.s.stats.messages.Add(int64(n))
		r.t.Metrics.BytesIn.Add(nbytes)
		r.curIdx += n
		if r.curIdx == len(c.recs) {
			if c.next > p.next {
				p.next = c.next
			}
			r.putRecs(c.recs)
			r.cur = nil
		}
		r.s.status[p.split].offset.Store(p.next)
	}
	r.stopTimer(timeout)
done:
	if rows == 0 {
		r.dec.finish().Release() // drop reservations
		if o.Bounded && r.left == 0 && r.cur == nil {
			return nil, io.EOF
		}
		return nil, nil
	}
	return r.emit(rows)
}

// emit finishes the batch being built, of rows rows.
func (r *Reader) emit(rows int) (arrow.RecordBatch, error) {
	b := r.dec.finish()
	r.s.stats.rows.Add(int64(rows))
	if r.wms != nil {
		if err := r.observe(b); err != nil {
			b.Release()
			return nil, err
		}
	}
	return b, nil
}

func (r *Reader) stopTimer(timeout <-chan time.Time) {
	if timeout != nil && !r.timer.Stop() {
		select {
		case <-r.timer.C:
		default:
		}
	}
}

// failAfter ends the reader with err in the middle of a chunk: the rows
// decoded so far (messages before the one that failed) are returned as a
// batch and err by every later call, so positions and output agree.
func (r *Reader) failAfter(err error, rows int) (arrow.RecordBatch, error) {
	r.failed = err
	if rows == 0 {
		return nil, r.abandon(err, rows)
	}
	return r.emit(rows)
}

// abandon drops the rows of a batch that will not be emitted and returns err.
func (r *Reader) abandon(err error, rows int) error {
	r.dec.finish().Release()
	return err
}

// observe feeds the per-partition maxima of the event-time column of b.
func (r *Reader) observe(b arrow.RecordBatch) error {
	col := b.Column(r.tsCol)
	ts, err := arrowexec.EventTimesMillis(col, r.tsBuf)
	if err != nil {
		return err
	}
	r.tsBuf = ts
	clear(r.maxBy)
	nulls := col.NullN() > 0
	for i, v := range ts {
		if nulls && col.IsNull(i) {
			continue
		}
		sp := int(r.rowPart[i])
		if cur, ok := r.maxBy[sp]; !ok || v > cur {
			r.maxBy[sp] = v
		}
	}
	for sp, v := range r.maxBy {
		r.wms.ObserveMax(sp, v)
		if st := r.s.status[sp]; v > st.maxTS.Load() {
			st.maxTS.Store(v) // one reader per partition: no race
		}
	}
	return nil
}

// CurrentWatermark is the minimum over this reader's active partitions (see
// arrowexec.Watermarks). A reader without partitions is idle.
func (r *Reader) CurrentWatermark() (int64, bool) {
	if r.wms == nil {
		return arrowexec.MinWatermark, false
	}
	if len(r.parts) == 0 && !r.s.o.Bounded {
		return arrowexec.MinWatermark, true
	}
	return r.wms.Current()
}

// positions returns {topic: {partition: next offset}} for the owned
// partitions.
func (r *Reader) positions() map[string]map[int]int64 {
	m := map[string]map[int]int64{}
	for _, p := range r.parts {
		if m[p.Topic] == nil {
			m[p.Topic] = map[int]int64{}
		}
		m[p.Topic][p.ID] = p.next
	}
	return m
}

// SnapshotState returns the position of every owned partition as JSON
// {topic: {partition: next offset}}, after making the dead-letter file
// durable.
func (r *Reader) SnapshotState(ctx context.Context, id uint64) (arrowexec.SubtaskSnapshot, error) {
	if r.dlOpen {
		if err := r.s.dl.Sync(); err != nil {
			return arrowexec.SubtaskSnapshot{}, err
		}
	}
	pos := r.positions()
	blob, err := json.Marshal(pos)
	if err != nil {
		return arrowexec.SubtaskSnapshot{}, err
	}
	if r.s.o.GroupID != "" && id != 0 {
		r.pending[id] = pos
	}
	return arrowexec.SubtaskSnapshot{Operator: blob}, nil
}

// NotifyCheckpointComplete commits the positions of checkpoint id to
// Options.GroupID. A failed commit is logged and counted, not fatal: the
// checkpoint, not the group, is the source of truth.
func (r *Reader) NotifyCheckpointComplete(ctx context.Context, id uint64) error {
	pos, ok := r.pending[id]
	if !ok {
		return nil
	}
	for k := range r.pending {
		if k <= id {
			delete(r.pending, k)
		}
	}
	if len(r.parts) == 0 {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, r.s.o.ConnectTimeout)
	defer cancel()
	if err := r.s.commit(cctx, pos); err != nil {
		r.s.stats.commitErrors.Add(1)
		if r.t.Log != nil {
			r.t.Log.Warn("kafka: offset commit failed", "checkpoint", id, "err", err)
		}
		return nil
	}
	r.s.stats.commits.Add(1)
	return nil
}

// Close stops the fetchers and releases the builders. Safe to call twice.
func (r *Reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.cancel()
	r.wg.Wait()
	if r.timer != nil {
		r.timer.Stop()
	}
	r.dec.release()
	r.s.readerClosed()
	var err error
	if r.dlOpen {
		err = r.s.dl.Close()
	}
	return err
}
