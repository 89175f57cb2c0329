package dev.riffle.nexmark;

import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.types.Row;
import org.apache.flink.types.RowKind;

/**
 * Runs one Nexmark query on Flink in a local MiniCluster and prints one
 * JSON line: events, result rows, the job's wall time and the JVM's CPU
 * time, both in all (cpu_s: every thread, GC and JIT included, from JVM
 * start) and for the job phase alone (job_cpu_s: the process CPU time
 * spent inside execute(), which still holds the MiniCluster's start and
 * stop and the JIT's warm-up; start-up before it, class loading and, for
 * SQL, planning, is cpu_s - job_cpu_s). gc_s is the collectors' time over
 * the whole run (wall time of the pauses, a part of cpu_s).
 *
 * rows counts the records the sink received; for SQL queries whose result
 * is a changelog (q4) net_rows is the size of the result table once the
 * changelog is applied (+I and +U add a row, -U and -D take one away).
 *
 * <pre>
 * java -cp 'target/classes:target/dependency/*' dev.riffle.nexmark.Main \
 *     --query q1 --api datastream|sql --events 10000000 [--parallelism 2] [--seed 1] [--rate 10000]
 * </pre>
 *
 * {@code --print true} also writes every result record (its toString())
 * to stdout before the JSON line, for the checks in queries_test.go.
 *
 * Setup as issue 15 asks: parallelism 2, object reuse on, in-memory (heap)
 * state, no checkpoints, results counted and discarded.
 */
public final class Main {
    private Main() {}

    static final AtomicLong ROWS = new AtomicLong();
    static final AtomicLong NET_ROWS = new AtomicLong();
    /** Set by --print: the sink writes every record's toString() to stdout. */
    static volatile boolean print;

    /** Counts what it receives and discards it. */
    static final class CountingSink<T> implements Sink<T> {
        private static final long serialVersionUID = 1L;

        @Override
        public SinkWriter<T> createWriter(WriterInitContext ctx) {
            return new SinkWriter<T>() {
                private long n, net;

                @Override
                public void write(T element, Context c) {
                    n++;
                    if (print) {
                        synchronized (System.out) {
                            System.out.println(element);
                        }
                    }
                    if (element instanceof Row) {
                        RowKind k = ((Row) element).getKind();
                        net += k == RowKind.INSERT || k == RowKind.UPDATE_AFTER ? 1 : -1;
                    } else {
                        net++;
                    }
                }

                @Override
                public void flush(boolean endOfInput) {}

                @Override
                public void close() {
                    ROWS.addAndGet(n);
                    NET_ROWS.addAndGet(net);
                }
            };
        }
    }

    private static void usage(String msg) {
        System.err.println("usage: Main --query q0..q8 --api datastream|sql --events N [--parallelism 2] [--seed 1] [--rate 10000] [--print false]");
        if (msg != null) {
            System.err.println(msg);
            System.exit(2);
        }
        System.exit(0);
    }

    public static void main(String[] args) throws Exception {
        String query = null, api = "datastream";
        long events = 10_000_000, seed = 1, rate = 10_000;
        int parallelism = 2;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--help") || a.equals("-h")) {
                usage(null);
            }
            if (i + 1 >= args.length) {
                usage("flag " + a + " needs a value");
            }
            String v = args[++i];
            switch (a) {
                case "--query": query = v; break;
                case "--api": api = v; break;
                case "--events": events = Long.parseLong(v); break;
                case "--parallelism": parallelism = Integer.parseInt(v); break;
                case "--seed": seed = Long.parseLong(v); break;
                case "--rate": rate = Long.parseLong(v); break;
                case "--print": print = Boolean.parseBoolean(v); break;
                default: usage("unknown flag " + a);
            }
        }
        if (query == null) {
            usage("--query is required");
        }
        Configuration conf = new Configuration();
        StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(parallelism, conf);
        env.getConfig().enableObjectReuse();
        Gen g = new Gen(seed, rate);
        DataStream<?> out;
        switch (api) {
            case "datastream": out = DataStreamQueries.build(query, env, g, events); break;
            case "sql": out = SqlQueries.build(query, env, g, events); break;
            default: usage("unknown --api " + api); return;
        }
        sink(out);
        com.sun.management.OperatingSystemMXBean os =
                (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        long cpu0 = os.getProcessCpuTime();
        long t0 = System.nanoTime();
        env.execute("nexmark-" + query + "-" + api);
        double wall = (System.nanoTime() - t0) / 1e9;
        long cpu1 = os.getProcessCpuTime();
        long gcMillis = 0;
        for (GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans()) {
            gcMillis += Math.max(gc.getCollectionTime(), 0);
        }
        System.out.printf("{\"engine\":\"flink\",\"query\":\"%s\",\"api\":\"%s\",\"events\":%d,\"rows\":%d,\"net_rows\":%d,"
                        + "\"parallelism\":%d,\"wall_s\":%.3f,\"cpu_s\":%.3f,\"job_cpu_s\":%.3f,\"gc_s\":%.3f}%n",
                query, api, events, ROWS.get(), NET_ROWS.get(), parallelism, wall, cpu1 / 1e9, (cpu1 - cpu0) / 1e9, gcMillis / 1e3);
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    private static void sink(DataStream<?> out) {
        ((DataStream) out).sinkTo(new CountingSink<>()).name("count");
    }
}
