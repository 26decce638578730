package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/punchflow/punchflow/platform/natstest"
	"github.com/punchflow/punchflow/platform/servicetest"
	"github.com/punchflow/punchflow/services/collector/internal/admssim"
	"github.com/punchflow/punchflow/services/collector/internal/apisim"
	"github.com/punchflow/punchflow/services/collector/internal/extract"
)

func startAPISim(t *testing.T, cfg apisim.Config) *apisim.Server {
	t.Helper()
	s, err := apisim.Start(cfg, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOnceAPISources: with --once every API source reads from now minus
// its initial window to now, publishes a heartbeat, and leaves its cursor;
// "collector backfill" then fills in the older days.
func TestOnceAPISourcesThenBackfill(t *testing.T) {
	ns := natstest.Run(t)
	now := time.Now().UTC().Truncate(time.Hour)
	sim := startAPISim(t, apisim.Config{Seed: 11, From: now.AddDate(0, 0, -5), To: now.Add(-time.Minute), Records: 500})
	file := writeTemp(t, "sources.yaml", "defaults: {initial: 48h}\napi:\n"+
		apisim.SourceYAML("shop-orders", sim.URL(), "page", apisim.Orders, 40, "type: api_key\nkey_env: SHOP_KEY")+
		apisim.SourceYAML("helpdesk", sim.URL(), "cursor", apisim.Tickets, 40, ""))
	env := map[string]string{"SHOP_KEY": "k1"}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	logs := &servicetest.Buffer{}
	args := []string{"--http-addr", servicetest.FreeAddr(t), "--log-format", "json", "--nats-url", ns.ClientURL(), "--js-memory", "--once", "--sources-file", file}
	if err := Run(ctx, args, func(k string) string { return env[k] }, &servicetest.Buffer{}, logs); err != nil {
		t.Fatalf("Run: %v\n%s", err, logs.String())
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	// The run read [cursor − 48 h, cursor) of each source.
	kv, err := js.KeyValue(ctx, "collector_checkpoints")
	if err != nil {
		t.Fatal(err)
	}
	counts := streamSubjects(t, js, "RAW", "raw.>")
	for name, ds := range map[string]apisim.Dataset{"shop-orders": apisim.Orders, "helpdesk": apisim.Tickets} {
		c, ok, err := extract.LoadCursor(ctx, kv, name)
		if err != nil || !ok || time.Since(c.Until) > time.Minute {
			t.Fatalf("%s cursor %+v %v %v", name, c, ok, err)
		}
		want := uint64(sim.Count(ds, c.Until.Add(-48*time.Hour), c.Until))
		if counts["raw.record."+name] != want || want < 100 || want > 300 {
			t.Fatalf("RAW %v, want %d records of %s from the last 48 h", counts, want, name)
		}
	}
	hb := streamSubjects(t, js, "HEALTH", "health.>")
	if hb["health.source.shop-orders"] != 1 || hb["health.source.helpdesk"] != 1 {
		t.Fatalf("heartbeats %v", hb)
	}

	// The older days through the backfill subcommand; the days already read
	// add nothing.
	var out strings.Builder
	from := now.AddDate(0, 0, -5).Format("2006-01-02")
	to := now.Format("2006-01-02")
	args = []string{"backfill", "--sources-file", file, "--nats-url", ns.ClientURL(), "--js-memory", "--from", from, "--to", to,
		"--chunk-days", "shop-orders:2,helpdesk:1", "--mode", "shop-orders:parallel,helpdesk:sequential", "--progress", "0"}
	if err := Run(ctx, args, func(k string) string { return env[k] }, &out, logs); err != nil {
		t.Fatalf("backfill: %v\n%s", err, out.String())
	}
	counts = streamSubjects(t, js, "RAW", "raw.>")
	if counts["raw.record.shop-orders"] != 500 || counts["raw.record.helpdesk"] != 500 {
		t.Fatalf("RAW after the backfill %v, want 500 each\n%s", counts, out.String())
	}
}

// TestADMSEndpoint: the collector serves pushing devices next to the API
// sources' live loops; an unknown serial is refused; the operators' API
// lists the device.
func TestADMSEndpointAndLiveSources(t *testing.T) {
	ns := natstest.Run(t)
	now := time.Now().UTC()
	sim := startAPISim(t, apisim.Config{Seed: 12, From: now.Add(-2 * time.Hour), To: now.Add(-time.Minute), Records: 120})
	file := writeTemp(t, "sources.yaml", "defaults: {interval: 200ms, initial: 3h}\napi:\n"+apisim.SourceYAML("pay", sim.URL(), "offset", apisim.Payments, 25, ""))
	devices := writeTemp(t, "adms.yaml", "devices:\n  - serial: PUSH01\n    site: hq\n    time_zone: UTC\n")
	admsAddr := servicetest.FreeAddr(t)
	r := startCollector(t, "adms", "--nats-url", ns.ClientURL(), "--js-memory", "--sources-file", file,
		"--adms-addr", admsAddr, "--adms-devices", devices, "--adms-delay", "1s")
	r.waitReady(t)

	var punches []admssim.Punch
	for i := range 30 {
		punches = append(punches, admssim.Punch{PIN: fmt.Sprint(100 + i%5), Time: now.Add(time.Duration(-i) * time.Minute).Truncate(time.Second), Status: i % 2, Verify: 1})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dev := admssim.New(admssim.Config{Serial: "PUSH01", URL: "http://" + admsAddr, Punches: punches, Delay: 50 * time.Millisecond, ErrorDelay: 50 * time.Millisecond})
	stranger := admssim.New(admssim.Config{Serial: "NOPE", URL: "http://" + admsAddr, Punches: punches, ErrorDelay: 50 * time.Millisecond})
	go dev.Run(ctx)
	go stranger.Run(ctx)
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if err := dev.WaitSynced(wctx); err != nil {
		t.Fatalf("device not synced: %v %+v", err, dev.Stats())
	}

	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	deadline := time.Now().Add(20 * time.Second)
	for {
		counts := streamSubjects(t, js, "RAW", "raw.>")
		if counts["raw.punch.hq.PUSH01"] == 30 && counts["raw.record.pay"] == 120 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("RAW %v, want 30 pushed punches and 120 payments", counts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if stranger.Stats().Refused == 0 || stranger.Stats().Acked != 0 {
		t.Fatalf("unknown device %+v", stranger.Stats())
	}
	resp, err := http.Get("http://" + r.Addr + "/api/adms/devices")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var views []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&views); err != nil || len(views) != 1 || views[0]["serial"] != "PUSH01" {
		t.Fatalf("admin API %v %v", views, err)
	}
	metrics, err := http.Get("http://" + r.Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer metrics.Body.Close()
	body, _ := io.ReadAll(metrics.Body)
	if !strings.Contains(string(body), `punchflow_collector_adms_rejected_total{reason="unknown_serial"}`) {
		t.Fatal("no adms_rejected_total metric for the unknown serial")
	}
}
