package dev.riffle.nexmark;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import org.apache.flink.api.common.functions.AggregateFunction;
import org.apache.flink.api.common.functions.CoGroupFunction;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.api.java.tuple.Tuple3;
import org.apache.flink.api.java.tuple.Tuple4;
import org.apache.flink.api.java.tuple.Tuple5;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.co.KeyedCoProcessFunction;
import org.apache.flink.streaming.api.functions.windowing.ProcessWindowFunction;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.BoundedOneInput;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.api.windowing.assigners.SlidingEventTimeWindows;
import org.apache.flink.streaming.api.windowing.assigners.TumblingEventTimeWindows;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.util.Collector;

/**
 * Nexmark q0–q8 in Flink's DataStream API, written for this project from
 * the queries' definitions (see SqlQueries for the SQL texts they mirror).
 * Each returns the query's result stream; Main counts and discards it.
 */
final class DataStreamQueries {
    private DataStreamQueries() {}

    static final Duration WINDOW = Duration.ofSeconds(10);
    static final Duration SLIDE = Duration.ofSeconds(2);

    static DataStream<?> build(String query, StreamExecutionEnvironment env, Gen g, long events) {
        switch (query) {
            case "q0":
                return Sources.bids(env, g, events, false);
            case "q1":
                return Sources.bids(env, g, events, false).map(b -> {
                    b.price = (long) (b.price * 0.908);
                    return b;
                }).name("q1-currency");
            case "q2":
                return Sources.bids(env, g, events, false)
                        .filter(b -> b.auction % 123 == 0)
                        .map(b -> Tuple2.of(b.auction, b.price))
                        .returns(Types.TUPLE(Types.LONG, Types.LONG)).name("q2-select");
            case "q3":
                return q3(env, g, events);
            case "q4":
                return q4(env, g, events);
            case "q5":
                return q5(env, g, events);
            case "q6":
                return q6(env, g, events);
            case "q7":
                return q7(env, g, events);
            case "q8":
                return q8(env, g, events);
            default:
                throw new IllegalArgumentException("unknown query " + query + " (want q0..q8)");
        }
    }

    // q3: persons in OR, ID or CA joined with the category-10 auctions they
    // sell, a regular inner join on seller = id (no time bound).
    static DataStream<Tuple4<String, String, String, Long>> q3(StreamExecutionEnvironment env, Gen g, long events) {
        DataStream<Person> p = Sources.persons(env, g, events, false)
                .filter(x -> x.state.equals("OR") || x.state.equals("ID") || x.state.equals("CA"));
        DataStream<Auction> a = Sources.auctions(env, g, events, false).filter(x -> x.category == 10);
        return p.connect(a).keyBy(x -> x.id, x -> x.seller).process(new Q3Join())
                .returns(Types.TUPLE(Types.STRING, Types.STRING, Types.STRING, Types.LONG)).name("q3-join");
    }

    static final class Q3Join extends KeyedCoProcessFunction<Long, Person, Auction, Tuple4<String, String, String, Long>> {
        private transient ValueState<Person> person;
        private transient ListState<Long> pending;

        @Override
        public void open(OpenContext ctx) {
            person = getRuntimeContext().getState(new ValueStateDescriptor<>("person", Person.class));
            pending = getRuntimeContext().getListState(new ListStateDescriptor<>("pending", Long.class));
        }

        @Override
        public void processElement1(Person p, Context ctx, Collector<Tuple4<String, String, String, Long>> out) throws Exception {
            person.update(p);
            Iterable<Long> ids = pending.get();
            if (ids != null) {
                for (Long id : ids) {
                    out.collect(Tuple4.of(p.name, p.city, p.state, id));
                }
            }
            pending.clear();
        }

        @Override
        public void processElement2(Auction a, Context ctx, Collector<Tuple4<String, String, String, Long>> out) throws Exception {
            Person p = person.value();
            if (p != null) {
                out.collect(Tuple4.of(p.name, p.city, p.state, a.id));
            } else {
                pending.add(a.id);
            }
        }
    }

    /**
     * The winning bid of every auction that had one: the highest price
     * among the bids on it with date_time in [auction.date_time,
     * auction.expires], emitted when the watermark passes expires, as
     * (auction id, category, seller, final price, auction date_time).
     */
    static DataStream<Tuple5<Long, Long, Long, Long, Long>> winningBids(StreamExecutionEnvironment env, Gen g, long events) {
        DataStream<Auction> a = Sources.auctions(env, g, events, true);
        DataStream<Bid> b = Sources.bids(env, g, events, true);
        return a.connect(b).keyBy(x -> x.id, x -> x.auction).process(new WinningBid())
                .returns(Types.TUPLE(Types.LONG, Types.LONG, Types.LONG, Types.LONG, Types.LONG)).name("winning-bid");
    }

    static final class WinningBid extends KeyedCoProcessFunction<Long, Auction, Bid, Tuple5<Long, Long, Long, Long, Long>> {
        private transient ValueState<Auction> auction;
        private transient ValueState<Long> best;
        private transient ValueState<Boolean> closed;
        private transient ListState<Tuple2<Long, Long>> early; // (date_time, price) of bids before their auction

        @Override
        public void open(OpenContext ctx) {
            auction = getRuntimeContext().getState(new ValueStateDescriptor<>("auction", Auction.class));
            best = getRuntimeContext().getState(new ValueStateDescriptor<>("best", Long.class));
            closed = getRuntimeContext().getState(new ValueStateDescriptor<>("closed", Boolean.class));
            early = getRuntimeContext().getListState(new ListStateDescriptor<>("early", Types.TUPLE(Types.LONG, Types.LONG)));
        }

        private void offer(Auction a, long time, long price) throws Exception {
            if (time < a.dateTime || time > a.expires) {
                return;
            }
            Long cur = best.value();
            if (cur == null || price > cur) {
                best.update(price);
            }
        }

        @Override
        public void processElement1(Auction a, Context ctx, Collector<Tuple5<Long, Long, Long, Long, Long>> out) throws Exception {
            auction.update(a);
            Iterable<Tuple2<Long, Long>> bs = early.get();
            if (bs != null) {
                for (Tuple2<Long, Long> t : bs) {
                    offer(a, t.f0, t.f1);
                }
            }
            early.clear();
            ctx.timerService().registerEventTimeTimer(a.expires);
        }

        @Override
        public void processElement2(Bid b, Context ctx, Collector<Tuple5<Long, Long, Long, Long, Long>> out) throws Exception {
            Auction a = auction.value();
            if (a != null) {
                offer(a, b.dateTime, b.price);
            } else if (closed.value() == null) {
                early.add(Tuple2.of(b.dateTime, b.price));
            }
        }

        @Override
        public void onTimer(long ts, OnTimerContext ctx, Collector<Tuple5<Long, Long, Long, Long, Long>> out) throws Exception {
            Auction a = auction.value();
            Long p = best.value();
            if (a != null && p != null) {
                out.collect(Tuple5.of(a.id, a.category, a.seller, p, a.dateTime));
            }
            auction.clear();
            best.clear();
            closed.update(true);
        }
    }

    // q4: average closing price per category, updated on every closed auction.
    static DataStream<Tuple2<Long, Double>> q4(StreamExecutionEnvironment env, Gen g, long events) {
        return winningBids(env, g, events).keyBy(t -> t.f1).process(new RunningAverage(0))
                .returns(Types.TUPLE(Types.LONG, Types.DOUBLE)).name("q4-avg");
    }

    // q6: average selling price per seller over its last 10 closed auctions.
    static DataStream<Tuple2<Long, Double>> q6(StreamExecutionEnvironment env, Gen g, long events) {
        return winningBids(env, g, events).keyBy(t -> t.f2).process(new RunningAverage(10))
                .returns(Types.TUPLE(Types.LONG, Types.DOUBLE)).name("q6-avg");
    }

    /** Average of the final prices of the key's auctions, over the last n (0: all). */
    static final class RunningAverage extends KeyedProcessFunction<Long, Tuple5<Long, Long, Long, Long, Long>, Tuple2<Long, Double>> {
        private final int last;
        private transient ValueState<Tuple2<Long, Long>> sum; // (sum, count)
        private transient ListState<Long> recent;

        RunningAverage(int last) {
            this.last = last;
        }

        @Override
        public void open(OpenContext ctx) {
            sum = getRuntimeContext().getState(new ValueStateDescriptor<>("sum", Types.TUPLE(Types.LONG, Types.LONG)));
            recent = getRuntimeContext().getListState(new ListStateDescriptor<>("recent", Long.class));
        }

        @Override
        public void processElement(Tuple5<Long, Long, Long, Long, Long> w, Context ctx, Collector<Tuple2<Long, Double>> out) throws Exception {
            if (last == 0) {
                Tuple2<Long, Long> s = sum.value();
                if (s == null) {
                    s = Tuple2.of(0L, 0L);
                }
                s.f0 += w.f3;
                s.f1++;
                sum.update(s);
                out.collect(Tuple2.of(ctx.getCurrentKey(), (double) s.f0 / s.f1));
                return;
            }
            List<Long> prices = new ArrayList<>();
            Iterable<Long> it = recent.get();
            if (it != null) {
                it.forEach(prices::add);
            }
            prices.add(w.f3);
            if (prices.size() > last) {
                prices.remove(0);
            }
            recent.update(prices);
            long total = 0;
            for (long p : prices) {
                total += p;
            }
            out.collect(Tuple2.of(ctx.getCurrentKey(), (double) total / prices.size()));
        }
    }

    // q5: the auctions with the most bids in each 10 s window sliding by 2 s.
    static DataStream<Tuple3<Long, Long, Long>> q5(StreamExecutionEnvironment env, Gen g, long events) {
        return Sources.bids(env, g, events, true)
                .keyBy(b -> b.auction)
                .window(SlidingEventTimeWindows.of(WINDOW, SLIDE))
                .aggregate(new CountBids(), new WithWindowEnd())
                .keyBy(t -> t.f2)
                .process(new MaxPerWindow())
                .returns(Types.TUPLE(Types.LONG, Types.LONG, Types.LONG)).name("q5-hot-items");
    }

    static final class CountBids implements AggregateFunction<Bid, Long, Long> {
        @Override public Long createAccumulator() { return 0L; }
        @Override public Long add(Bid b, Long acc) { return acc + 1; }
        @Override public Long getResult(Long acc) { return acc; }
        @Override public Long merge(Long a, Long b) { return a + b; }
    }

    static final class WithWindowEnd extends ProcessWindowFunction<Long, Tuple3<Long, Long, Long>, Long, TimeWindow> {
        @Override
        public void process(Long auction, Context ctx, Iterable<Long> counts, Collector<Tuple3<Long, Long, Long>> out) {
            out.collect(Tuple3.of(auction, counts.iterator().next(), ctx.window().getEnd()));
        }
    }

    /** Keeps, per window end, the auctions whose count is the window's maximum; emits them at the window's end. */
    static final class MaxPerWindow extends KeyedProcessFunction<Long, Tuple3<Long, Long, Long>, Tuple3<Long, Long, Long>> {
        private transient ValueState<Long> max;
        private transient ListState<Long> top;

        @Override
        public void open(OpenContext ctx) {
            max = getRuntimeContext().getState(new ValueStateDescriptor<>("max", Long.class));
            top = getRuntimeContext().getListState(new ListStateDescriptor<>("top", Long.class));
        }

        @Override
        public void processElement(Tuple3<Long, Long, Long> t, Context ctx, Collector<Tuple3<Long, Long, Long>> out) throws Exception {
            Long m = max.value();
            if (m == null) {
                ctx.timerService().registerEventTimeTimer(t.f2 - 1);
            }
            if (m == null || t.f1 > m) {
                max.update(t.f1);
                top.clear();
                top.add(t.f0);
            } else if (t.f1.equals(m)) {
                top.add(t.f0);
            }
        }

        @Override
        public void onTimer(long ts, OnTimerContext ctx, Collector<Tuple3<Long, Long, Long>> out) throws Exception {
            Long m = max.value();
            for (Long a : top.get()) {
                out.collect(Tuple3.of(a, m, ctx.getCurrentKey()));
            }
            max.clear();
            top.clear();
        }
    }

    // q7: the highest bid of every 10 s tumbling window. Each source
    // subtask first keeps the highest bid of its current window (LocalMax,
    // chained to the source: no bid crosses a thread), then one task takes
    // the max of the subtasks' candidates per window.
    static DataStream<Bid> q7(StreamExecutionEnvironment env, Gen g, long events) {
        return Sources.bids(env, g, events, true)
                .transform("q7-local-max", TypeInformation.of(Bid.class), new LocalMax(WINDOW.toMillis()))
                .windowAll(TumblingEventTimeWindows.of(WINDOW))
                .reduce((x, y) -> y.price > x.price ? y : x)
                .name("q7-highest-bid");
    }

    /**
     * The highest bid of the current tumbling window of one subtask's
     * input, emitted (with its own timestamp) when a bid of a later window
     * arrives, when a watermark reaches the window's end, or at the end of
     * the input. Relies on what Sources gives it: a subtask's bids are in
     * event-time order and new objects each, so keeping a reference is
     * safe and a window is complete once a later one starts.
     */
    static final class LocalMax extends AbstractStreamOperator<Bid> implements OneInputStreamOperator<Bid, Bid>, BoundedOneInput {
        private static final long serialVersionUID = 1L;
        private final long size;
        private transient Bid best;
        private transient long windowEnd;

        LocalMax(long size) {
            this.size = size;
        }

        private void flush() {
            if (best != null) {
                output.collect(new StreamRecord<>(best, best.dateTime));
                best = null;
            }
        }

        @Override
        public void processElement(StreamRecord<Bid> r) {
            Bid b = r.getValue();
            if (best != null && b.dateTime >= windowEnd) {
                flush();
            }
            if (best == null) {
                best = b;
                windowEnd = b.dateTime - Math.floorMod(b.dateTime, size) + size;
            } else if (b.price > best.price) {
                best = b;
            }
        }

        @Override
        public void processWatermark(Watermark mark) throws Exception {
            if (best != null && mark.getTimestamp() >= windowEnd - 1) {
                flush();
            }
            super.processWatermark(mark);
        }

        @Override
        public void endInput() {
            flush();
        }
    }

    // q8: persons who opened an account and put up an auction in the same
    // 10 s tumbling window.
    static DataStream<Tuple3<Long, String, Long>> q8(StreamExecutionEnvironment env, Gen g, long events) {
        DataStream<Person> p = Sources.persons(env, g, events, true);
        DataStream<Auction> a = Sources.auctions(env, g, events, true);
        return p.coGroup(a).where(x -> x.id).equalTo(x -> x.seller)
                .window(TumblingEventTimeWindows.of(WINDOW))
                .apply(new NewUsers())
                .returns(Types.TUPLE(Types.LONG, Types.STRING, Types.LONG)).name("q8-new-users");
    }

    static final class NewUsers implements CoGroupFunction<Person, Auction, Tuple3<Long, String, Long>> {
        @Override
        public void coGroup(Iterable<Person> ps, Iterable<Auction> as, Collector<Tuple3<Long, String, Long>> out) {
            if (!as.iterator().hasNext()) {
                return;
            }
            for (Person p : ps) {
                long size = WINDOW.toMillis();
                out.collect(Tuple3.of(p.id, p.name, p.dateTime - Math.floorMod(p.dateTime, size)));
                return; // one row per (person, window), as the SQL's GROUP BY id, name, window
            }
        }
    }
}
