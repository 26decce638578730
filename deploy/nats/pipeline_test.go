package natsdeploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/punchflow/punchflow/deploy/internal/manifest"
	"github.com/punchflow/punchflow/deploy/internal/pod"
	"github.com/punchflow/punchflow/deploy/internal/svctest"
	"github.com/punchflow/punchflow/platform/dbtest"
	"github.com/punchflow/punchflow/platform/servicetest"
)

// TestPipelineWithProductionCredentials runs the four real services exactly
// as the prod overlay configures them (its settings files, environment and
// mounted Secrets: NKey seeds, the CA, the database URL as a file) against
// nats-server with punchflow-accounts.conf and mutual TLS, on the streams
// and consumers the prod overlay's NACK resources create. Punches dropped as
// a CSV file must reach PostgreSQL, a bad line the DLQ, the heartbeat
// healthwatch, and the readers' mirror of RAW, with no permission refused
// to any service on the way.
func TestPipelineWithProductionCredentials(t *testing.T) {
	s := startSecured(t)
	s.provision(t)
	pg := dbtest.PostgresURL(t)
	objs, err := manifest.Render("../k8s/overlays/prod")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(s.certs.CA)
	if err != nil {
		t.Fatal(err)
	}
	ext := pod.External{
		"nats-ca":         {"ca.crt": ca},
		"loader-database": {"postgres-url": []byte(pg + "\n")},
	}
	for _, svc := range svctest.Services {
		seed, err := os.ReadFile(s.seeds[svc.Name])
		if err != nil {
			t.Fatal(err)
		}
		ext["punchflow-nats-"+svc.Name] = map[string][]byte{"nkey": seed}
	}
	// The fleet: one device that does not answer. The collector seeds and
	// prunes its work queue, holds the device and reports it unreachable.
	ext["collector-fleet"] = map[string][]byte{"fleet.yaml": []byte(`defaults:
  site: hq
  time_zone: Europe/Berlin
  poll_interval: 1s
devices:
  - serial: TEST0001
    address: 127.0.0.1
    port: 9
    timeout: 200ms
    comm_key_file: /etc/punchflow/comm-keys/hq.key
`)}
	ext["collector-comm-keys"] = map[string][]byte{"hq.key": []byte("12345\n")}

	// A work item of a device no longer in the fleet file: the collector
	// must prune it.
	admin := s.connect(t, "admin", "")
	if _, err := admin.js.Publish(context.Background(), "fleet.poll.GONE0001", []byte(`{"serial":"GONE0001","mode":"poll"}`)); err != nil {
		t.Fatal(err)
	}

	var inbox string
	running := map[string]*svctest.Running{}
	for _, svc := range svctest.Services {
		c, err := pod.FromDeployment(objs, svc.Name, t.TempDir(), ext)
		if err != nil {
			t.Fatal(err)
		}
		if svc.Name == "collector" {
			inbox = c.Local("/var/lib/punchflow/inbox")
		}
		// Only the server's address differs from the cluster, and the
		// server here also asks for a client certificate.
		args := append(c.Args, "--nats-url", s.url, "--nats-tls-cert", s.certs.ClientCert, "--nats-tls-key", s.certs.ClientKey, "--log-format", "json")
		switch svc.Name {
		case "collector":
			args = append(args, "--csv-poll", "100ms", "--csv-settle", "0s")
		case "loader":
			args = append(args, "--batch-age", "50ms")
		}
		r := svctest.Start(t, svc, args, c.Getenv)
		r.WaitReady(t, 60*time.Second)
		running[svc.Name] = r
	}
	defer func() {
		if t.Failed() {
			for name, r := range running {
				t.Logf("---- %s logs\n%s", name, svctest.Tail(r.Logs.String(), 3000))
			}
		}
	}()

	const punches = 40
	day := time.Now().UTC().AddDate(0, 0, -2).Format("2006-01-02")
	var csv strings.Builder
	csv.WriteString("site,device_serial,user_id,device_time,state,verify_mode\n")
	for i := 0; i < punches; i++ {
		fmt.Fprintf(&csv, "hq,hq-DEV01,%05d,%s %02d:%02d:00,%d,1\n", 1000+i/2, day, 8+i%2*9, i%60, i%2)
	}
	csv.WriteString("hq,hq-DEV01,,not a time,x,1\n") // a bad line: dead-lettered by the collector
	tmp := filepath.Join(inbox, ".export.csv.part")
	if err := os.WriteFile(tmp, []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(inbox, "export.csv")); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	db, err := pgx.Connect(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	servicetest.WaitFor(t, "every punch in PostgreSQL", 60*time.Second, func() (bool, string) {
		var n int
		err := db.QueryRow(ctx, "select count(*) from attendance_events").Scan(&n)
		return err == nil && n == punches, fmt.Sprintf("rows=%d err=%v", n, err)
	})

	servicetest.WaitFor(t, "the bad line in the DLQ", 20*time.Second, func() (bool, string) {
		st, err := admin.js.Stream(ctx, "DLQ")
		if err != nil {
			return false, err.Error()
		}
		info, err := st.Info(ctx)
		if err != nil {
			return false, err.Error()
		}
		return info.State.Msgs >= 1, fmt.Sprintf("DLQ holds %d", info.State.Msgs)
	})
	servicetest.WaitFor(t, "the CSV source's and the device's heartbeats in healthwatch", 30*time.Second, func() (bool, string) {
		code, body, err := running["healthwatch"].Get("/api/sources")
		return err == nil && code == 200 && strings.Contains(body, `"source":"csv"`) && strings.Contains(body, "TEST0001"),
			fmt.Sprintf("%d %s %v", code, body, err)
	})

	servicetest.WaitFor(t, "the removed device's work item pruned", 10*time.Second, func() (bool, string) {
		st, err := admin.js.Stream(ctx, "FLEET")
		if err != nil {
			return false, err.Error()
		}
		info, err := st.Info(ctx, jetstream.WithSubjectFilter("fleet.>"))
		if err != nil {
			return false, err.Error()
		}
		_, stale := info.State.Subjects["fleet.poll.GONE0001"]
		return !stale, fmt.Sprintf("subjects %v", info.State.Subjects)
	})

	// A platform team's consumer on the readers' mirror sees every punch.
	reader := s.connect(t, "reader", "")
	if err := reader.do(func(ctx context.Context) error { return createConsumer("RAW", "platform-team").run(ctx, reader) }); err != nil {
		t.Fatalf("reader consumer: %v", err)
	}
	servicetest.WaitFor(t, "every punch in the readers' mirror", 20*time.Second, func() (bool, string) {
		cons, err := reader.js.Consumer(ctx, "RAW", "platform-team")
		if err != nil {
			return false, err.Error()
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return false, err.Error()
		}
		return info.NumPending >= punches, fmt.Sprintf("pending %d", info.NumPending)
	})

	for name, r := range running {
		m, err := r.Metrics()
		if err != nil {
			t.Fatal(err)
		}
		for series, v := range m {
			if strings.Contains(series, "nats_async_errors_total") && strings.Contains(series, `kind="permission"`) && v > 0 {
				t.Errorf("%s was refused %v subjects: %s", name, v, series)
			}
		}
		if strings.Contains(r.Logs.String(), "Permissions Violation") {
			t.Errorf("%s logged a permission violation:\n%s", name, svctest.Tail(r.Logs.String(), 3000))
		}
	}
	for _, name := range []string{"collector", "transformer", "loader", "healthwatch"} {
		if err := running[name].Stop(30 * time.Second); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
