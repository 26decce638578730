package manifest

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"

	sigsyaml "sigs.k8s.io/yaml"
)

const testdata = "../../k8s/testdata"

var (
	validatorOnce sync.Once
	validator     *Validator
	validatorErr  error
)

// testValidator compiles the real schema files once per test binary.
func testValidator(t *testing.T) *Validator {
	t.Helper()
	validatorOnce.Do(func() {
		openapi, _ := filepath.Glob(filepath.Join(testdata, "openapi", "*.json.gz"))
		crds, _ := filepath.Glob(filepath.Join(testdata, "crds", "*.y*ml"))
		validator, validatorErr = NewValidator(openapi, crds)
	})
	if validatorErr != nil {
		t.Fatal(validatorErr)
	}
	return validator
}

func object(t *testing.T, y string) Object {
	t.Helper()
	var m map[string]any
	if err := sigsyaml.Unmarshal([]byte(y), &m); err != nil {
		t.Fatal(err)
	}
	return Object{APIVersion: String(m, "apiVersion"), Kind: String(m, "kind"), Name: String(m, "metadata", "name"), Content: m, YAML: []byte(y)}
}

const deployment = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: d, labels: {app: d}}
spec:
  selector: {matchLabels: {app: d}}
  template:
    metadata: {labels: {app: d}}
    spec:
      containers:
      - name: c
        image: img:1
        ports: [{name: http, containerPort: 8081}]
        resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {memory: 128Mi}}
        readinessProbe: {httpGet: {path: /readyz, port: http}}
`

func TestValidate(t *testing.T) {
	v := testValidator(t)
	tests := []struct {
		name string
		yaml string
		want []string // substrings of the error; none means valid
	}{
		{"valid deployment", deployment, nil},
		{"unknown field in a container", strings.Replace(deployment, "image: img:1", "image: img:1\n        imagePolicy: Always", 1),
			[]string{`strict decoding into Deployment`, `unknown field "spec.template.spec.containers[0].imagePolicy"`, "at /spec/template/spec/containers/0: additional properties 'imagePolicy' not allowed"}},
		{"missing required container name", strings.Replace(deployment, "- name: c\n        image", "- image", 1),
			[]string{"at /spec/template/spec/containers/0: missing property 'name'"}},
		{"wrong type", strings.Replace(deployment, "containerPort: 8081", "containerPort: eighty", 1),
			[]string{"strict decoding", "at /spec/template/spec/containers/0/ports/0/containerPort: got string, want integer"}},
		{"missing required selector", strings.Replace(deployment, "  selector: {matchLabels: {app: d}}\n", "", 1),
			[]string{"at /spec: missing property 'selector'"}},
		{"quantity as a number is fine", strings.Replace(deployment, "cpu: 100m", "cpu: 1", 1), nil},
		{"unknown kind", "apiVersion: apps/v1\nkind: Deploymint\nmetadata: {name: x}\n", []string{"no schema for apps/v1, Kind=Deploymint"}},
		{"valid NACK stream", `
apiVersion: jetstream.nats.io/v1beta2
kind: Stream
metadata: {name: raw}
spec: {name: RAW, subjects: ["raw.>"], retention: limits, storage: file, maxAge: 720h, preventDelete: true}
`, nil},
		{"NACK stream with an unknown field", `
apiVersion: jetstream.nats.io/v1beta2
kind: Stream
metadata: {name: raw}
spec: {name: RAW, subjects: ["raw.>"], keepForever: true}
`, []string{"at /spec: additional properties 'keepForever' not allowed"}},
		{"NACK stream with a bad retention", `
apiVersion: jetstream.nats.io/v1beta2
kind: Stream
metadata: {name: raw}
spec: {name: RAW, subjects: ["raw.>"], retention: forever}
`, []string{"at /spec/retention"}},
		{"NACK stream with a bad name", `
apiVersion: jetstream.nats.io/v1beta2
kind: Stream
metadata: {name: raw}
spec: {name: RAW.X, subjects: ["raw.>"]}
`, []string{"at /spec/name"}},
		{"NACK version not served", `
apiVersion: jetstream.nats.io/v1beta1
kind: Stream
metadata: {name: raw}
spec: {name: RAW}
`, []string{"no schema for jetstream.nats.io/v1beta1, Kind=Stream"}},
		{"custom resource metadata is ObjectMeta", `
apiVersion: jetstream.nats.io/v1beta2
kind: KeyValue
metadata: {name: kv, lables: {a: b}}
spec: {bucket: b}
`, []string{"at /metadata: additional properties 'lables' not allowed"}},
		{"valid ServiceMonitor", `
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: sm}
spec:
  selector: {matchLabels: {app: x}}
  endpoints: [{port: http, path: /metrics, interval: 30s}]
`, nil},
		{"PrometheusRule with a misspelled field", `
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: r}
spec:
  groups: [{name: g, rules: [{alert: A, expr: up == 0, fore: 5m}]}]
`, []string{"additional properties 'fore' not allowed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Validate(object(t, tt.yaml))
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted an invalid object; want errors containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}
