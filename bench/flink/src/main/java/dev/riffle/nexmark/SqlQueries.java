package dev.riffle.nexmark;

import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.table.api.Schema;
import org.apache.flink.table.api.Table;
import org.apache.flink.table.api.bridge.java.StreamTableEnvironment;
import org.apache.flink.types.Row;

/**
 * Nexmark q0–q8 in Flink SQL over the same generator, registered as the
 * views person, auction and bid with a rowtime column date_time (the
 * event's dateTime as TIMESTAMP_LTZ(3)) and the watermark date_time - 4 s,
 * as Nexmark's Flink DDL declares. q6 has no SQL form Flink runs (an OVER
 * window over an updating input), as in Flink's own Nexmark suite.
 */
final class SqlQueries {
    private SqlQueries() {}

    static String text(String query) {
        switch (query) {
            case "q0":
                return "SELECT auction, bidder, price, date_time, extra FROM bid";
            case "q1":
                return "SELECT auction, bidder, 0.908 * price AS price, date_time, extra FROM bid";
            case "q2":
                return "SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0";
            case "q3":
                return "SELECT P.name, P.city, P.state, A.id FROM auction AS A INNER JOIN person AS P ON A.seller = P.id "
                        + "WHERE A.category = 10 AND (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA')";
            case "q4":
                return "SELECT Q.category, AVG(Q.final) FROM ("
                        + " SELECT MAX(B.price) AS final, A.category FROM auction A, bid B"
                        + " WHERE A.id = B.auction AND B.`dateTime` BETWEEN A.`dateTime` AND A.expires"
                        + " GROUP BY A.id, A.category) Q GROUP BY Q.category";
            case "q5":
                String counts = "SELECT auction, COUNT(*) AS num, window_start AS starttime, window_end AS endtime"
                        + " FROM TABLE(HOP(TABLE bid, DESCRIPTOR(date_time), INTERVAL '2' SECOND, INTERVAL '10' SECOND))"
                        + " GROUP BY auction, window_start, window_end";
                return "SELECT AuctionBids.auction, AuctionBids.num FROM (" + counts + ") AS AuctionBids JOIN ("
                        + " SELECT MAX(CountBids.num) AS maxn, CountBids.starttime, CountBids.endtime FROM (" + counts + ") AS CountBids"
                        + " GROUP BY CountBids.starttime, CountBids.endtime) AS MaxBids"
                        + " ON AuctionBids.starttime = MaxBids.starttime AND AuctionBids.endtime = MaxBids.endtime"
                        + " AND AuctionBids.num >= MaxBids.maxn";
            case "q7":
                return "SELECT B.auction, B.price, B.bidder, B.date_time, B.extra FROM bid B JOIN ("
                        + " SELECT MAX(price) AS maxprice, window_end AS date_time"
                        + " FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(date_time), INTERVAL '10' SECOND))"
                        + " GROUP BY window_start, window_end) B1"
                        + " ON B.price = B1.maxprice WHERE B.date_time BETWEEN B1.date_time - INTERVAL '10' SECOND AND B1.date_time";
            case "q8":
                return "SELECT P.id, P.name, P.starttime FROM ("
                        + " SELECT id, name, window_start AS starttime, window_end AS endtime"
                        + " FROM TABLE(TUMBLE(TABLE person, DESCRIPTOR(date_time), INTERVAL '10' SECOND))"
                        + " GROUP BY id, name, window_start, window_end) P JOIN ("
                        + " SELECT seller, window_start AS starttime, window_end AS endtime"
                        + " FROM TABLE(TUMBLE(TABLE auction, DESCRIPTOR(date_time), INTERVAL '10' SECOND))"
                        + " GROUP BY seller, window_start, window_end) A"
                        + " ON P.id = A.seller AND P.starttime = A.starttime AND P.endtime = A.endtime";
            case "q6":
                throw new IllegalArgumentException("q6 has no Flink SQL form (OVER window on an updating input): use --api datastream");
            default:
                throw new IllegalArgumentException("unknown query " + query + " (want q0..q8)");
        }
    }

    private static Schema rowtime() {
        return Schema.newBuilder()
                .columnByExpression("date_time", "TO_TIMESTAMP_LTZ(`dateTime`, 3)")
                .watermark("date_time", "date_time - INTERVAL '4' SECOND")
                .build();
    }

    static DataStream<Row> build(String query, StreamExecutionEnvironment env, Gen g, long events) {
        String sql = text(query);
        StreamTableEnvironment t = StreamTableEnvironment.create(env);
        if (sql.contains(" bid")) {
            t.createTemporaryView("bid", t.fromDataStream(Sources.bids(env, g, events, false), rowtime()));
        }
        if (sql.contains(" auction")) {
            t.createTemporaryView("auction", t.fromDataStream(Sources.auctions(env, g, events, false), rowtime()));
        }
        if (sql.contains(" person")) {
            t.createTemporaryView("person", t.fromDataStream(Sources.persons(env, g, events, false), rowtime()));
        }
        Table result = t.sqlQuery(sql);
        return t.toChangelogStream(result);
    }
}
