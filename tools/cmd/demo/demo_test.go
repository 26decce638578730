package main

import (
	"bytes"
	"context"
	"database/sql"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/punchflow/punchflow/platform/servicetest"
)

// TestDemo runs the demo as make demo does, smaller: every program built
// from this checkout, a fleet of simulated devices, the simulated API and a
// CSV file. It checks that the demo catches up with every stored and CSV
// punch, loads the API's records (the orders typed), dead-letters nothing,
// and stops every program cleanly.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs six programs")
	}
	bin := t.TempDir()
	for _, pkg := range []string{"collector", "transformer", "loader", "healthwatch", "collector/cmd/zksim", "collector/cmd/apisim"} {
		out := filepath.Join(bin, filepath.Base(pkg))
		if b, err := exec.Command("go", "build", "-o", out, "github.com/punchflow/punchflow/services/"+pkg).CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", pkg, err, b)
		}
	}
	data := filepath.Join(t.TempDir(), "demo-data")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	const punches, devices, perDevice = 3000, 3, 400
	err := run(ctx, []string{"--bin", bin, "--data", data, "--punches", "3000", "--devices", "3", "--device-records", "400",
		"--punch-rate", "0", "--api-records", "300", "--base-port", strconv.Itoa(servicetest.FreePortRange(t, 4)), "--exit-when-done"}, &out)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	text := out.String()
	if !strings.Contains(text, "caught up in") {
		t.Fatalf("the demo did not catch up within 3 minutes:\n%s", text)
	}
	for _, p := range []string{"collector", "transformer", "loader", "healthwatch", "zksim", "apisim"} {
		if !strings.Contains(text, p+" stopped cleanly") {
			t.Errorf("%s did not stop cleanly:\n%s", p, text)
		}
	}

	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "punchflow.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	count := func(query string) int {
		t.Helper()
		var n int
		if err := db.QueryRow(query).Scan(&n); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return n
	}
	if n := count(`select count(*) from attendance_events`); n != punches+devices*perDevice {
		t.Errorf("%d punches loaded, want the CSV's %d and the devices' %d", n, punches, devices*perDevice)
	}
	if n := count(`select count(*) from attendance_events where site = 'sim'`); n != devices*perDevice {
		t.Errorf("%d punches of the simulated devices loaded, want %d", n, devices*perDevice)
	}
	if n := count(`select count(*) from records_orders where order_id like 'ORD-%' and total > 0`); n == 0 {
		t.Error("no typed orders loaded from the simulated API")
	}
	for _, src := range []string{"tickets", "payments"} {
		if n := count(`select count(*) from business_records where source = '` + src + `'`); n == 0 {
			t.Errorf("no %s loaded from the simulated API", src)
		}
	}
	if !strings.Contains(text, "0 messages dead-lettered") {
		t.Errorf("the demo dead-lettered messages:\n%s", text)
	}
}
