package app

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/punchflow/punchflow/proto"
)

// BenchmarkHeartbeats measures the service end to end: heartbeats of 500
// devices published to an embedded JetStream server, consumed by one
// healthwatch, each folded into its device's state with a compare-and-swap
// write to KV. The figure is heartbeats folded per second.
func BenchmarkHeartbeats(b *testing.B) {
	ns := natsServer(b)
	// Keep every heartbeat in the stream, so none is discarded unread.
	startReplica(b, "bench", ns, "--evaluate-every", "1s", "--log-level", "warn", "--stream-health-per-subject", "1000000")
	f := newFleetSim(b, ns)
	base := time.Now().Add(-time.Hour)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		serial := fmt.Sprintf("DEV%03d", i%500)
		at := base.Add(time.Duration(i) * time.Millisecond)
		hb := proto.NewHeartbeat(proto.Heartbeat{Source: serial, Kind: proto.HeartbeatDevice, Site: "hq", ObservedAt: at,
			RunID: fmt.Sprintf("r%d", i), Reachable: true, LatencyMS: 20, Records: 1000, RecordCapacity: 100000})
		data, _ := proto.Encode(&hb)
		if _, err := f.js.PublishAsync(hb.Subject(), data, jetstream.WithMsgID(hb.ID)); err != nil {
			b.Fatal(err)
		}
	}
	<-f.js.PublishAsyncComplete()
	ctx := context.Background()
	cons, err := f.js.Consumer(ctx, "HEALTH", "healthwatch")
	if err != nil {
		b.Fatal(err)
	}
	for {
		info, err := cons.Info(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if info.NumPending == 0 && info.NumAckPending == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "heartbeats/s")
}
