package k8s

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/punchflow/punchflow/deploy/internal/manifest"
	"github.com/punchflow/punchflow/deploy/internal/nack"
	"github.com/punchflow/punchflow/deploy/internal/pod"
	"github.com/punchflow/punchflow/deploy/internal/svctest"
	"github.com/punchflow/punchflow/platform/dbtest"
	"github.com/punchflow/punchflow/platform/natstest"
)

// assets is what a JetStream server holds, as the server reports it.
type assets struct {
	Streams   map[string]jetstream.StreamConfig
	Consumers map[string]jetstream.ConsumerConfig // "STREAM/durable"
}

func snapshot(t *testing.T, js jetstream.JetStream) assets {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := assets{Streams: map[string]jetstream.StreamConfig{}, Consumers: map[string]jetstream.ConsumerConfig{}}
	streams := js.ListStreams(ctx)
	for si := range streams.Info() {
		a.Streams[si.Config.Name] = si.Config
		s, err := js.Stream(ctx, si.Config.Name)
		if err != nil {
			t.Fatal(err)
		}
		cons := s.ListConsumers(ctx)
		for ci := range cons.Info() {
			// Ephemeral consumers (a KV watch, an ordered reader) come and
			// go with the process that made them; manifests declare only
			// durable ones.
			if ci.Config.Durable != "" {
				a.Consumers[si.Config.Name+"/"+ci.Name] = ci.Config
			}
		}
		if err := cons.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := streams.Err(); err != nil {
		t.Fatal(err)
	}
	return a
}

func connect(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// servicesRun is one start of the four services as an overlay configures
// them, provisioning for themselves (--provision=true, what they do in dev
// and tests), on an embedded server.
type servicesRun struct {
	created assets
	metrics map[string]bool // metric names the services served
}

var (
	runMu   sync.Mutex
	runDone = map[string]servicesRun{}
	runErr  = map[string]string{}
)

// runServices starts the services as overlay dir configures them, once per
// test binary and overlay, in the first test that asks (which stops them
// when it ends), and returns what they made.
func runServices(t *testing.T, dir string) servicesRun {
	t.Helper()
	runMu.Lock()
	defer runMu.Unlock()
	if msg := runErr[dir]; msg != "" {
		t.Fatal(msg)
	}
	if r, ok := runDone[dir]; ok {
		return r
	}
	runErr[dir] = "starting the services of " + dir + " failed in " + t.Name()
	r := startServices(t, dir) // t.Fatal leaves runErr set
	delete(runErr, dir)
	runDone[dir] = r
	return r
}

func startServices(t *testing.T, dir string) servicesRun {
	ns := natstest.Run(t)
	pg := dbtest.PostgresURL(t)
	objs := render(t, dir)
	var running []*svctest.Running
	for _, svc := range svctest.Services {
		c, err := pod.FromDeployment(objs, svc.Name, t.TempDir(), externalFiles())
		if err != nil {
			t.Fatal(err)
		}
		// The embedded server has no users and no TLS; the rest is the
		// overlay's.
		args := append(c.Args, "--nats-url", ns.ClientURL(), "--nats-nkey-file=", "--nats-tls-ca=", "--nats-inbox-prefix=_INBOX",
			"--provision=true", "--log-format", "json")
		if svc.Name == "loader" {
			args = append(args, "--postgres-url", pg)
		}
		r := svctest.Start(t, svc, args, c.Getenv)
		r.WaitReady(t, 60*time.Second)
		running = append(running, r)
	}
	out := servicesRun{created: snapshot(t, connect(t, ns.ClientURL())), metrics: map[string]bool{}}
	for _, r := range running {
		m, err := r.Metrics()
		if err != nil {
			t.Fatal(err)
		}
		for series := range m {
			out.metrics[strings.SplitN(series, "{", 2)[0]] = true
		}
	}
	return out
}

// TestJetStreamMatchesServices creates every overlay's NACK Streams,
// Consumers and KeyValues on an embedded server, as the NACK controller
// would, and compares them, as the server reports them, with what the
// services create for themselves when started with the same overlay's
// configuration: the same streams, buckets and consumers with the same
// settings, nothing missing and nothing extra. Replicas are compared
// separately (one embedded server holds one replica).
func TestJetStreamMatchesServices(t *testing.T) {
	for _, ov := range overlays {
		t.Run(ov.dir, func(t *testing.T) {
			want := runServices(t, ov.dir).created
			if len(want.Streams) == 0 || len(want.Consumers) == 0 {
				t.Fatalf("the services created nothing: %+v", want)
			}
			top, err := nack.FromObjects(render(t, ov.dir), ov.account)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range top.Streams {
				if s.Replicas != ov.replicas {
					t.Errorf("Stream %s replicas = %d, want %d", s.Name, s.Replicas, ov.replicas)
				}
			}
			for _, b := range top.Buckets {
				if b.Replicas != ov.replicas {
					t.Errorf("KeyValue %s replicas = %d, want %d", b.Bucket, b.Replicas, ov.replicas)
				}
			}
			ns := natstest.Run(t)
			js := connect(t, ns.ClientURL())
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := top.WithReplicas(1).Apply(ctx, js); err != nil {
				t.Fatal(err)
			}
			got := snapshot(t, js)
			if diff := cmp.Diff(sortedKeys(want.Streams), sortedKeys(got.Streams)); diff != "" {
				t.Errorf("streams and buckets (-services +manifests):\n%s", diff)
			}
			if diff := cmp.Diff(sortedKeys(want.Consumers), sortedKeys(got.Consumers)); diff != "" {
				t.Errorf("consumers (-services +manifests):\n%s", diff)
			}
			for name, w := range want.Streams {
				if g, ok := got.Streams[name]; ok {
					if diff := cmp.Diff(w, g); diff != "" {
						t.Errorf("stream %s (-services +manifests):\n%s", name, diff)
					}
				}
			}
			for name, w := range want.Consumers {
				if g, ok := got.Consumers[name]; ok {
					if diff := cmp.Diff(w, g); diff != "" {
						t.Errorf("consumer %s (-services +manifests):\n%s", name, diff)
					}
				}
			}
		})
	}
}

// TestRawStreamsProtected: RAW survives the deletion of its resource and
// refuses deletes and purges.
func TestRawStreamsProtected(t *testing.T) {
	for _, ov := range overlays {
		for _, o := range manifest.Select(render(t, ov.dir), "Stream", "") {
			name := manifest.String(o.Content, "spec", "name")
			if name != "RAW" && name != "DLQ" {
				continue
			}
			for _, f := range []string{"preventDelete", "denyDelete"} {
				if manifest.Lookup(o.Content, "spec", f) != true {
					t.Errorf("%s: %s stream without %s", ov.dir, name, f)
				}
			}
			if manifest.String(o.Content, "spec", "retention") != "limits" {
				t.Errorf("%s: %s stream must use limits retention so consumers can be added", ov.dir, name)
			}
		}
	}
}
