package dev.riffle.nexmark;

import java.time.Duration;

import org.apache.flink.api.common.eventtime.SerializableTimestampAssigner;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.connector.datagen.source.GeneratorFunction;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/**
 * The three Nexmark tables as bounded parallel sources over the event
 * numbers [0, events): each source generates only its own table's events
 * (as riffle's person, auction and bid sources do), one new object per
 * event, from a DataGeneratorSource split evenly across the subtasks.
 */
final class Sources {
    private Sources() {}

    /** Nexmark's bounded out-of-orderness in its Flink DDL: date_time - 4 s. */
    static final Duration OUT_OF_ORDERNESS = Duration.ofSeconds(4);

    static <T> WatermarkStrategy<T> watermarks(boolean eventTime, SerializableTimestampAssigner<T> ts) {
        if (!eventTime) {
            return WatermarkStrategy.noWatermarks();
        }
        return WatermarkStrategy.<T>forBoundedOutOfOrderness(OUT_OF_ORDERNESS).withTimestampAssigner(ts);
    }

    static DataStream<Bid> bids(StreamExecutionEnvironment env, Gen g, long events, boolean eventTime) {
        GeneratorFunction<Long, Bid> f = i -> g.bid(Gen.eventNumber(2, i), new Bid());
        DataGeneratorSource<Bid> src = new DataGeneratorSource<>(f, Gen.count(2, events), TypeInformation.of(Bid.class));
        return env.fromSource(src, watermarks(eventTime, (Bid b, long prev) -> b.dateTime), "bid");
    }

    static DataStream<Auction> auctions(StreamExecutionEnvironment env, Gen g, long events, boolean eventTime) {
        GeneratorFunction<Long, Auction> f = i -> g.auction(Gen.eventNumber(1, i), new Auction());
        DataGeneratorSource<Auction> src = new DataGeneratorSource<>(f, Gen.count(1, events), TypeInformation.of(Auction.class));
        return env.fromSource(src, watermarks(eventTime, (Auction a, long prev) -> a.dateTime), "auction");
    }

    static DataStream<Person> persons(StreamExecutionEnvironment env, Gen g, long events, boolean eventTime) {
        GeneratorFunction<Long, Person> f = i -> g.person(Gen.eventNumber(0, i), new Person());
        DataGeneratorSource<Person> src = new DataGeneratorSource<>(f, Gen.count(0, events), TypeInformation.of(Person.class));
        return env.fromSource(src, watermarks(eventTime, (Person p, long prev) -> p.dateTime), "person");
    }
}
