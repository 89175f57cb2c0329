package dev.riffle.nexmark;

import java.lang.management.ManagementFactory;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/**
 * Runs one Nexmark query on Flink in a local MiniCluster and prints one
 * JSON line: events, result rows, the job's wall time and the JVM's CPU
 * time (all threads, GC and JIT included, from JVM start).
 *
 * <pre>
 * java -cp 'target/classes:target/dependency/*' dev.riffle.nexmark.Main \
 *     --query q1 --api datastream|sql --events 10000000 [--parallelism 2] [--seed 1] [--rate 10000]
 * </pre>
 *
 * Setup as issue 15 asks: parallelism 2, object reuse on, in-memory (heap)
 * state, no checkpoints, results counted and discarded.
 */
public final class Main {
    private Main() {}

    static final AtomicLong ROWS = new AtomicLong();

    /** Counts what it receives and discards it. */
    static final class CountingSink<T> implements Sink<T> {
        private static final long serialVersionUID = 1L;

        @Override
        public SinkWriter<T> createWriter(WriterInitContext ctx) {
            return new SinkWriter<T>() {
                private long n;

                @Override
                public void write(T element, Context c) {
                    n++;
                }

                @Override
                public void flush(boolean endOfInput) {}

                @Override
                public void close() {
                    ROWS.addAndGet(n);
                }
            };
        }
    }

    private static void usage(String msg) {
        System.err.println("usage: Main --query q0..q8 --api datastream|sql --events N [--parallelism 2] [--seed 1] [--rate 10000]");
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
        long t0 = System.nanoTime();
        env.execute("nexmark-" + query + "-" + api);
        double wall = (System.nanoTime() - t0) / 1e9;
        com.sun.management.OperatingSystemMXBean os =
                (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        double cpu = os.getProcessCpuTime() / 1e9;
        System.out.printf("{\"engine\":\"flink\",\"query\":\"%s\",\"api\":\"%s\",\"events\":%d,\"rows\":%d,\"parallelism\":%d,\"wall_s\":%.3f,\"cpu_s\":%.3f}%n",
                query, api, events, ROWS.get(), parallelism, wall, cpu);
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    private static void sink(DataStream<?> out) {
        ((DataStream) out).sinkTo(new CountingSink<>()).name("count");
    }
}
