package k8s

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/punchflow/punchflow/deploy/internal/manifest"
	"github.com/punchflow/punchflow/deploy/internal/svctest"
	"github.com/punchflow/punchflow/platform/metrics"
)

// exporterMetrics are the JetStream series of the NATS Prometheus exporter
// and their labels, as the NATS Helm chart (2.14.2) runs it: exporter
// v0.20.1 with -jsz=all and -prefix=nats (nats-io/prometheus-nats-exporter,
// collector/jsz.go at v0.20.1; the prefix replaces "jetstream").
var exporterMetrics = func() map[string][]string {
	server := []string{"server_id", "server_name", "cluster", "domain", "meta_leader", "is_meta_leader"}
	account := append(append([]string(nil), server...), "account", "account_name", "account_id")
	stream := append(append([]string(nil), account...), "stream_name", "stream_leader", "is_stream_leader", "stream_raft_group")
	consumer := append(append([]string(nil), stream...), "consumer_name", "consumer_leader", "is_consumer_leader", "consumer_desc")
	source := append(append([]string(nil), stream...), "source_name", "source_api", "source_deliver")
	mirror := append(append([]string(nil), stream...), "mirror_name", "mirror_api", "mirror_deliver")
	m := map[string][]string{}
	add := func(labels []string, names ...string) {
		for _, n := range names {
			m["nats_"+n] = labels
		}
	}
	add(server, "server_jetstream_disabled", "server_total_streams", "server_total_consumers", "server_total_messages",
		"server_total_message_bytes", "server_max_memory", "server_max_storage")
	add(account, "account_max_memory", "account_max_storage", "account_storage_used", "account_memory_used")
	add(stream, "stream_total_messages", "stream_limit_messages", "stream_total_bytes", "stream_limit_bytes", "stream_first_seq",
		"stream_last_seq", "stream_consumer_count", "stream_subject_count")
	add(consumer, "consumer_delivered_consumer_seq", "consumer_delivered_stream_seq", "consumer_last_delivery_seconds",
		"consumer_last_ack_seconds", "consumer_num_ack_pending", "consumer_num_redelivered", "consumer_num_waiting",
		"consumer_num_pending", "consumer_ack_floor_stream_seq", "consumer_ack_floor_consumer_seq")
	add(source, "stream_source_lag", "stream_source_active_duration_ns")
	add(mirror, "stream_mirror_lag", "stream_mirror_active_duration_ns")
	return m
}()

// targetLabels are added to every scraped series by Prometheus and the
// ServiceMonitor.
var targetLabels = []string{"job", "instance", "namespace", "service", "pod", "container", "endpoint"}

// descRecorder is a prometheus.Registerer that only records what would be
// registered: metric names and their variable labels.
type descRecorder map[string][]string

var descName = regexp.MustCompile(`fqName: "([^"]+)"`)
var descLabels = regexp.MustCompile(`variableLabels: \{([^}]*)\}`)

func (d descRecorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 256)
	go func() { c.Describe(ch); close(ch) }()
	for desc := range ch {
		s := desc.String()
		if m := descName.FindStringSubmatch(s); m != nil {
			var ls []string
			if l := descLabels.FindStringSubmatch(s); l != nil && l[1] != "" {
				ls = strings.Split(l[1], ",")
			}
			d[m[1]] = ls
		}
	}
	return nil
}

func (d descRecorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = d.Register(c)
	}
}

func (d descRecorder) Unregister(prometheus.Collector) bool { return false }

// knownMetrics are the series the rules may use: every service's pipeline
// metrics (with their labels), whatever the running services served, the
// exporter's JetStream series and Prometheus' own "up".
func knownMetrics(t *testing.T) map[string][]string {
	known := descRecorder{}
	for _, s := range svctest.Services {
		metrics.NewPipeline(known, s.Name)
	}
	for name := range runServices(t, "overlays/prod").metrics {
		if _, ok := known[name]; !ok {
			known[name] = nil // labels unknown: served without a description here
		}
	}
	for n, ls := range exporterMetrics {
		known[n] = ls
	}
	known["up"] = nil
	return known
}

// TestPrometheusRules parses every alert expression with the Prometheus
// parser and checks that each series it selects is one that the services or
// the NATS exporter export, with labels they carry.
func TestPrometheusRules(t *testing.T) {
	known := knownMetrics(t)
	for _, ov := range overlays {
		rules := manifest.Select(render(t, ov.dir), "PrometheusRule", "")
		if len(rules) != 1 {
			t.Fatalf("%s: %d PrometheusRules", ov.dir, len(rules))
		}
		groups, _ := manifest.Lookup(rules[0].Content, "spec", "groups").([]any)
		alerts := map[string]bool{}
		for _, g := range groups {
			rs, _ := manifest.Lookup(g, "rules").([]any)
			for _, r := range rs {
				name := manifest.String(r, "alert")
				t.Run(ov.dir+"/"+name, func(t *testing.T) {
					if name == "" || alerts[name] {
						t.Fatalf("alert name %q missing or repeated", name)
					}
					alerts[name] = true
					if sev := manifest.String(r, "labels", "severity"); sev != "warning" && sev != "critical" {
						t.Errorf("severity %q", sev)
					}
					for _, a := range []string{"summary", "description"} {
						if manifest.String(r, "annotations", a) == "" {
							t.Errorf("annotation %s missing", a)
						}
					}
					if f := manifest.String(r, "for"); f != "" {
						if _, err := time.ParseDuration(f); err != nil {
							t.Errorf("for: %v", err)
						}
					}
					expr, err := parser.ParseExpr(manifest.String(r, "expr"))
					if err != nil {
						t.Fatalf("expr does not parse: %v", err)
					}
					for _, vs := range parser.ExtractSelectors(expr) {
						checkSelector(t, vs, known)
					}
				})
			}
		}
		for _, want := range []string{"PunchflowConsumerLagGrowing", "PunchflowDLQGrowing", "PunchflowHeartbeatsStopped", "PunchflowLoaderFailing"} {
			if !alerts[want] {
				t.Errorf("%s: alert %s missing", ov.dir, want)
			}
		}
	}
}

// checkSelector fails when no known series matches the matchers' name, or
// when a matcher names a label that the matched series do not carry.
func checkSelector(t *testing.T, matchers []*labels.Matcher, known map[string][]string) {
	t.Helper()
	var nameM *labels.Matcher
	for _, m := range matchers {
		if m.Name == labels.MetricName {
			nameM = m
		}
	}
	if nameM == nil {
		t.Errorf("selector %v names no metric", matchers)
		return
	}
	var hits []string
	for n := range known {
		base := n
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			base = strings.TrimSuffix(base, suffix)
		}
		if nameM.Matches(n) || (nameM.Type == labels.MatchEqual && nameM.Matches(base)) {
			hits = append(hits, n)
		}
	}
	if len(hits) == 0 {
		t.Errorf("no exported series is called %s", nameM)
		return
	}
	if nameM.Type == labels.MatchRegexp {
		// Each alternative of a regexp over service names must exist.
		for _, svc := range svctest.Services {
			if strings.Contains(nameM.Value, svc.Name) {
				found := false
				for _, h := range hits {
					found = found || strings.Contains(h, "_"+svc.Name+"_")
				}
				if !found {
					t.Errorf("%s: the %s service exports no such series", nameM, svc.Name)
				}
			}
		}
	}
	for _, m := range matchers {
		if m.Name == labels.MetricName || contains(targetLabels, m.Name) {
			continue
		}
		for _, h := range hits {
			if ls, described := known[h]; described && ls != nil && !contains(ls, m.Name) {
				t.Errorf("%s has no label %q (it has %v)", h, m.Name, ls)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
