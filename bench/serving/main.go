// Command serving measures the latency of a live model's GET /recommend
// while the model learns: one goroutine applies generated interactions to
// an ml.Online at a fixed rate (--ingest per second, in batches every
// --batch-every, each followed by Live.Sync, as the streaming recommend
// operator does), while an open-loop load generator sends GET
// /recommend?user=ID&k=10 at --rps over HTTP to a server of package
// ml/serve in the same process. Each request is scheduled at a fixed time
// and its latency is measured from that time, not from when it was sent,
// so a stalled server or client does not hide its own delay (no
// coordinated omission). Reports p50, p99, p99.9 and max, the updates
// (Syncs) that ran during the measurement and how long they took.
//
//	go run ./bench/serving --users 100000 --items 20000 --factors 64 --ingest 50000 --rps 1000 --duration 30s
//
// Before measuring, --warm interactions are applied in batches of 50k
// (every user and item appears) and the live copy is synced once.
//
// With --kafka it measures instead the end-to-end latency from an
// interaction produced to Kafka to a changed recommendation served, for
// each --triggers setting of the recommend step's update: (every=N,
// interval=D): a fresh topic on the broker (--brokers, default
// RIFFLE_KAFKA_BROKERS) gets --kafka-warm interactions, then the
// streaming recommend job (job.Parse of a Kafka source, the recommend step
// with that update:, a file sink; no checkpoints) runs in the process with
// ml/serve on loopback. Once the job has applied the warm data (observed
// update by update) a background producer sends --bg-rate interactions/s
// and --probes probes arrive as a Poisson process (mean gap --probe-gap):
// a probe asks GET /recommend for a random user's top-1 item, produces
// (user, item) to Kafka, stamping the time before the produce call, and
// waits on Live.Updated, asking again after each model update, until the
// item is no longer served (the user has it now). Reports p50, p99 and max
// of that latency per setting, the produce acknowledgement time and the
// updates that ran.
//
//	go run ./bench/serving --kafka --users 100000 --items 20000 --factors 64 --kafka-warm 1000000 --bg-rate 10000
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/riffle-dev/riffle/bench/internal/benchenv"
	"github.com/riffle-dev/riffle/ml"
	"github.com/riffle-dev/riffle/ml/serve"
)

func main() {
	users := flag.Int("users", 100_000, "distinct users")
	items := flag.Int("items", 20_000, "distinct items")
	factors := flag.Int("factors", 64, "factors K")
	warm := flag.Int("warm", 1_000_000, "interactions applied before measuring")
	ingest := flag.Int("ingest", 50_000, "interactions applied per second while measuring")
	batchEvery := flag.Duration("batch-every", 100*time.Millisecond, "one Apply + Sync this often")
	rps := flag.Int("rps", 1000, "requests per second (open loop)")
	duration := flag.Duration("duration", 30*time.Second, "measurement time")
	k := flag.Int("k", 10, "recommendations per request")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the measurement here")
	kafka := flag.Bool("kafka", false, "measure the end-to-end latency Kafka -> changed recommendation served instead (see the command's doc)")
	brokers := flag.String("brokers", os.Getenv("RIFFLE_KAFKA_BROKERS"), "--kafka: the broker")
	triggers := flag.String("triggers", "every=1000,every=10000,interval=100ms,interval=1s", "--kafka: update: settings, one run each")
	kafkaWarm := flag.Int("kafka-warm", 200_000, "--kafka: interactions the job learns before the probes")
	bgRate := flag.Int("bg-rate", 10_000, "--kafka: background interactions per second")
	probes := flag.Int("probes", 200, "--kafka: probes per setting")
	probeGap := flag.Duration("probe-gap", 50*time.Millisecond, "--kafka: mean time between probes (Poisson arrivals)")
	maxBatchDelay := flag.Duration("max-batch-delay", 5*time.Millisecond, "--kafka: the Kafka source's max_batch_delay")
	partitions := flag.Int("partitions", 1, "--kafka: topic partitions")
	flag.Parse()
	if *kafka {
		if *brokers == "" {
			fmt.Fprintln(os.Stderr, "serving: --kafka needs --brokers or RIFFLE_KAFKA_BROKERS")
			os.Exit(2)
		}
		c := e2eConfig{brokers: *brokers, users: *users, items: *items, factors: *factors, warm: *kafkaWarm, rate: *bgRate,
			probes: *probes, probeGap: *probeGap, triggers: strings.Split(*triggers, ","), maxBatchDelay: *maxBatchDelay,
			sourcePar: 1, partitions: *partitions}
		if err := runE2E(c); err != nil {
			fmt.Fprintln(os.Stderr, "serving:", err)
			os.Exit(1)
		}
		return
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "serving:", err)
			os.Exit(1)
		}
		profile = f
	}
	if err := run(*users, *items, *factors, *warm, *ingest, *batchEvery, *rps, *duration, *k); err != nil {
		fmt.Fprintln(os.Stderr, "serving:", err)
		os.Exit(1)
	}
}

var profile *os.File

// gen draws interactions: users uniform, items Zipf-like (a few popular).
type gen struct {
	rng          *rand.Rand
	zipf         *rand.Zipf
	users, items int
	ukeys, ikeys [][]byte
}

func newGen(users, items int) *gen {
	rng := rand.New(rand.NewPCG(1, 2))
	g := &gen{rng: rng, zipf: rand.NewZipf(rng, 1.1, 2, uint64(items-1)), users: users, items: items}
	for u := range users {
		g.ukeys = append(g.ukeys, ml.Int64Key(int64(u)))
	}
	for i := range items {
		g.ikeys = append(g.ikeys, ml.Int64Key(int64(i)))
	}
	return g
}

func (g *gen) batch(dst []ml.Interaction, n int) []ml.Interaction {
	dst = dst[:0]
	for range n {
		dst = append(dst, ml.Interaction{User: g.ukeys[g.rng.IntN(g.users)], Item: g.ikeys[g.zipf.Uint64()], Weight: 1})
	}
	return dst
}

func run(users, items, factors, warm, ingest int, batchEvery time.Duration, rps int, duration time.Duration, k int) error {
	ctx := context.Background()
	o, err := ml.NewOnline(ml.OnlineOptions{Config: ml.Config{Factors: factors, Seed: 1, Threads: 1}})
	if err != nil {
		return err
	}
	g := newGen(users, items)
	// Warm-up: every user and item once, then random interactions.
	var b []ml.Interaction
	t0 := time.Now()
	for u := 0; u < users; u += 50_000 {
		b = b[:0]
		for j := u; j < min(u+50_000, users); j++ {
			b = append(b, ml.Interaction{User: g.ukeys[j], Item: g.ikeys[j%items], Weight: 1})
		}
		if _, err := o.Apply(ctx, b); err != nil {
			return err
		}
	}
	for done := users; done < warm; done += 50_000 {
		if _, err := o.Apply(ctx, g.batch(b, min(50_000, warm-done))); err != nil {
			return err
		}
	}
	live, err := ml.NewLiveOf(factors, arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Int64)
	if err != nil {
		return err
	}
	if err := live.Sync(o); err != nil {
		return err
	}
	log.Printf("warm: %d users, %d items, %d interactions in %v", o.NumUsers(), o.NumItems(), o.NumInteractions(), time.Since(t0).Round(time.Millisecond))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	serve.Register(mux, func() *ml.Live { return live })
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String() + "/recommend?k=" + strconv.Itoa(k) + "&user="
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 0}}

	// Ingest: one Apply + Sync per tick, catching up when behind.
	stop := make(chan struct{})
	var ingestWG sync.WaitGroup
	var applied, syncs int64
	var syncTimes, applyTimes []time.Duration
	per := int(float64(ingest) * batchEvery.Seconds())
	ingestWG.Add(1)
	go func() {
		defer ingestWG.Done()
		var b []ml.Interaction
		start := time.Now()
		for n := 1; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			time.Sleep(time.Until(start.Add(time.Duration(n) * batchEvery)))
			a0 := time.Now()
			if _, err := o.Apply(ctx, g.batch(b, per)); err != nil {
				log.Fatal(err)
			}
			s0 := time.Now()
			if err := live.Sync(o); err != nil {
				log.Fatal(err)
			}
			syncTimes = append(syncTimes, time.Since(s0))
			applyTimes = append(applyTimes, s0.Sub(a0))
			applied += int64(per)
			syncs++
		}
	}()

	// Open-loop load: request i is due at start + i/rps.
	n := int(duration.Seconds() * float64(rps))
	lat := make([]time.Duration, n)
	var failed atomic.Int64
	var wg sync.WaitGroup
	urng := rand.New(rand.NewPCG(3, 4))
	interval := time.Second / time.Duration(rps)
	var l0, l1 [3]float64
	l0 = loadavg()
	if profile != nil {
		if err := pprof.StartCPUProfile(profile); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	cpu0 := benchenv.CPUSelf()
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(due))
		url := base + strconv.Itoa(urng.IntN(users))
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(url)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("%s", resp.Status)
				}
			}
			lat[i] = time.Since(due)
			if err != nil {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	ingestWG.Wait()
	cpu := benchenv.CPUSelf() - cpu0
	l1 = loadavg()

	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(n-1, int(math.Ceil(p*float64(n)))-1)] }
	slices.Sort(syncTimes)
	slices.Sort(applyTimes)
	sq := func(ds []time.Duration, p float64) time.Duration {
		if len(ds) == 0 {
			return 0
		}
		return ds[min(len(ds)-1, int(math.Ceil(p*float64(len(ds))))-1)]
	}
	fmt.Printf("model: %d users × %d items × %d factors, %d interactions at the end\n", o.NumUsers(), o.NumItems(), factors, o.NumInteractions())
	fmt.Printf("requests: %d at %d/s over %v (open loop), %d failed; k=%d\n", n, rps, elapsed.Round(time.Millisecond), failed.Load(), k)
	fmt.Printf("latency from the scheduled send: p50 %v  p99 %v  p99.9 %v  max %v\n",
		q(0.50).Round(time.Microsecond), q(0.99).Round(time.Microsecond), q(0.999).Round(time.Microsecond), lat[n-1].Round(time.Microsecond))
	fmt.Printf("updates: %d (Apply + Sync of %d interactions each, %d applied: %.0f/s)\n", syncs, per, applied, float64(applied)/elapsed.Seconds())
	fmt.Printf("  Apply p50 %v max %v; Sync p50 %v max %v\n", sq(applyTimes, 0.5).Round(time.Microsecond), sq(applyTimes, 1).Round(time.Microsecond),
		sq(syncTimes, 0.5).Round(time.Microsecond), sq(syncTimes, 1).Round(time.Microsecond))
	ls := live.Stats()
	fmt.Printf("  Sync copy (readers go on): mean %v, max %v; waiting for readers of the old copy: mean %v, max %v; over %d Syncs (the warm-up's first Sync included)\n",
		(ls.Copy / time.Duration(max(ls.Syncs, 1))).Round(time.Microsecond), ls.MaxCopy.Round(time.Microsecond),
		(ls.Wait / time.Duration(max(ls.Syncs, 1))).Round(time.Microsecond), ls.MaxWait.Round(time.Microsecond), ls.Syncs)
	fmt.Printf("  model work per query (Live.Stats, %d queries): ", ls.Queries)
	for j, c := range ls.Latency {
		if c == 0 {
			continue
		}
		if j < len(ml.LiveLatencyBuckets) {
			fmt.Printf("≤%v: %d  ", ml.LiveLatencyBuckets[j], c)
		} else {
			fmt.Printf(">%v: %d", ml.LiveLatencyBuckets[j-1], c)
		}
	}
	fmt.Println()
	fmt.Printf("process CPU %.1f s over %.1f s (%.2f cores); GOMAXPROCS %d; load average %.2f → %.2f (%s)\n",
		cpu.Seconds(), elapsed.Seconds(), cpu.Seconds()/elapsed.Seconds(), runtime.GOMAXPROCS(0), l0[0], l1[0], strings.TrimSpace(cpuModel()))
	return nil
}

func loadavg() [3]float64 {
	var l [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l
	}
	f := strings.Fields(string(b))
	for i := range l {
		if i < len(f) {
			l[i], _ = strconv.ParseFloat(f[i], 64)
		}
	}
	return l
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") {
			if _, v, ok := strings.Cut(line, ":"); ok {
				return v
			}
		}
	}
	return "unknown CPU"
}
