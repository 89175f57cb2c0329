// Readiness probe for scripts/kafka/start.sh, run with the broker's own jars:
//   java -cp 'libs/*' Probe.java BOOTSTRAP TIMEOUT_SECONDS
// Exits 0 once the cluster answers DescribeCluster with at least one broker
// (a KRaft broker only appears there after it registered and was unfenced),
// 1 on timeout. Prints nothing on success; the last error on failure.
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterResult;

public class Probe {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Long.parseLong(args[1]));
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "2000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "3000");
        p.put(AdminClientConfig.RECONNECT_BACKOFF_MS_CONFIG, "100");
        p.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "250");
        String last = "no answer";
        try (Admin admin = Admin.create(p)) {
            while (System.nanoTime() < deadline) {
                try {
                    DescribeClusterResult r = admin.describeCluster();
                    int n = r.nodes().get(3, TimeUnit.SECONDS).size();
                    if (n > 0 && r.controller().get(3, TimeUnit.SECONDS) != null) {
                        return;
                    }
                    last = "cluster has no registered broker yet";
                } catch (Exception e) {
                    last = e.toString();
                }
                Thread.sleep(200);
            }
        }
        System.err.println("probe: broker at " + bootstrap + " not ready: " + last);
        System.exit(1);
    }
}
