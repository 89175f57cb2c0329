package main

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/riffle-dev/riffle/internal/metrics"
)

// TestAdminLoopback: an admin address without a host listens on
// loopback only.
func TestAdminLoopback(t *testing.T) {
	a, err := adminFor(nil, ":0", "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(true)
	if !strings.HasPrefix(a.addr, "127.0.0.1:") {
		t.Fatalf("admin listens on %s, want 127.0.0.1", a.addr)
	}
}

// TestAdminMetrics: the admin endpoint's GET /metrics is a 404 until a
// run gives it its collector, then serves the Prometheus text format.
func TestAdminMetrics(t *testing.T) {
	a, err := startAdmin("127.0.0.1:0", "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(true)
	get := func() (int, string) {
		res, err := http.Get("http://" + a.addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, string(b)
	}
	if code, _ := get(); code != http.StatusNotFound {
		t.Fatalf("GET /metrics before a collector: %d, want 404", code)
	}
	a.serveMetrics(&metrics.Collector{})
	code, body := get()
	if code != http.StatusOK || !strings.Contains(body, "# TYPE go_goroutines gauge") {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
}
