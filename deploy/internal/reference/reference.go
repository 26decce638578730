// Package reference generates docs/reference/wire.md, the subject and schema
// reference for consumers of punchflow's streams, from the wire contract in
// proto/ (its Go source for the names and their comments, its JSON Schemas
// for the messages) and from platform/topology for the streams.
package reference

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/punchflow/punchflow/platform/topology"
	"github.com/punchflow/punchflow/proto"
)

// constant is an exported string constant of proto with its comment.
type constant struct {
	name, value, doc string
}

// source is what Generate reads from proto's Go files.
type source struct {
	consts   []constant
	builders map[string]string // subject builder → doc comment
}

func parseProto(dir string) (source, error) {
	src := source{builders: map[string]string{}}
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return src, err
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.ParseComments)
		if err != nil {
			return src, fmt.Errorf("parse %s: %w", f, err)
		}
		for _, decl := range file.Decls {
			switch d := decl.(type) {
			case *ast.GenDecl:
				if d.Tok != token.CONST {
					continue
				}
				for _, spec := range d.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if !n.IsExported() || i >= len(vs.Values) {
							continue
						}
						lit, ok := vs.Values[i].(*ast.BasicLit)
						if !ok || lit.Kind != token.STRING {
							continue
						}
						v, _ := strconv.Unquote(lit.Value)
						doc := strings.TrimSpace(vs.Doc.Text())
						if doc == "" {
							doc = strings.TrimSpace(vs.Comment.Text())
						}
						if doc == "" {
							// A group's comment describes every name in it.
							doc = firstSentence(d.Doc.Text())
						}
						src.consts = append(src.consts, constant{n.Name, v, oneLine(doc)})
					}
				}
			case *ast.FuncDecl:
				if d.Recv == nil && d.Name.IsExported() && strings.HasSuffix(d.Name.Name, "Subject") {
					src.builders[d.Name.Name] = oneLine(d.Doc.Text())
				}
			}
		}
	}
	sort.Slice(src.consts, func(i, j int) bool { return src.consts[i].name < src.consts[j].name })
	return src, nil
}

// subjectExamples computes each builder's subject for example arguments.
// Every builder in proto must be listed here: Generate fails otherwise, so
// a new builder cannot be left out of the reference.
var subjectExamples = map[string]func() (args, subject string){
	"RawPunchSubject": func() (string, string) {
		return `"hq", "CQUJ190460155"`, proto.RawPunchSubject("hq", "CQUJ190460155")
	},
	"RawRecordSubject": func() (string, string) { return `"orders-api"`, proto.RawRecordSubject("orders-api") },
	"CleanAttendanceSubject": func() (string, string) {
		return `"hq"`, proto.CleanAttendanceSubject("hq")
	},
	"CleanRecordSubject": func() (string, string) { return `"orders-api"`, proto.CleanRecordSubject("orders-api") },
	"HealthDeviceSubject": func() (string, string) {
		return `"CQUJ190460155"`, proto.HealthDeviceSubject("CQUJ190460155")
	},
	"HealthSourceSubject": func() (string, string) { return `"csv"`, proto.HealthSourceSubject("csv") },
	"DLQSubject": func() (string, string) {
		return `"transform", "raw.punch.hq.CQUJ190460155"`, proto.DLQSubject("transform", "raw.punch.hq.CQUJ190460155")
	},
}

// Generate renders the reference from the proto module in protoDir.
func Generate(protoDir string) ([]byte, error) {
	src, err := parseProto(protoDir)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# Subject and schema reference\n\n")
	w("<!-- Generated from proto/ and platform/topology by deploy/internal/reference; do not edit.\n")
	w("     Regenerate with: make docs -->\n\n")
	w("Schema version **%s** (major %d). Within a major version changes are additive: new optional\n", proto.SchemaVersion, proto.SchemaMajor)
	w("fields only; ignore fields you do not know. Every message is JSON; the JSON Schemas are in\n")
	w("`proto/schema/` and golden examples in `proto/testdata/golden/`.\n\n")

	w("## Streams\n\n")
	w("The defaults of `platform/topology` (names and limits are flags: `--stream-raw`, `--stream-raw-max-age`, ...).\n\n")
	w("| stream | subjects | retention | storage | max age | per subject | duplicate window | deletes | purges |\n")
	w("|---|---|---|---|---|---|---|---|---|\n")
	var cfg topology.Config
	fs := newFlagSet()
	cfg.RegisterFlags(fs)
	for _, s := range cfg.Streams() {
		per := "all"
		if s.MaxMsgsPerSubject > 0 {
			per = strconv.FormatInt(s.MaxMsgsPerSubject, 10)
		}
		w("| %s | `%s` | %s | %s | %s | %s | %s | %s | %s |\n", s.Name, strings.Join(s.Subjects, "`, `"), s.Retention, s.Storage,
			duration(s.MaxAge), per, duration(s.Duplicates), allowed(!s.DenyDelete), allowed(!s.DenyPurge))
	}
	w("\nKV buckets: ")
	var buckets []string
	for _, k := range cfg.Buckets() {
		buckets = append(buckets, fmt.Sprintf("`%s` (history %d)", k.Bucket, k.History))
	}
	w("%s.\n\n", strings.Join(buckets, ", "))

	w("## Subjects\n\n")
	w("Tokens are made safe with `proto.Token`: every byte other than an ASCII letter, digit, `-` or `_`\n")
	w("becomes `_`. Tokens route messages; ids identify them.\n\n")
	w("| builder | pattern | example |\n|---|---|---|\n")
	names := make([]string, 0, len(src.builders))
	for n := range src.builders {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ex, ok := subjectExamples[n]
		if !ok {
			return nil, fmt.Errorf("proto.%s has no example in deploy/internal/reference: add one", n)
		}
		args, subject := ex()
		w("| `proto.%s(%s)` | %s | `%s` |\n", n, args, mdEscape(src.builders[n]), subject)
	}
	w("\n")
	for n := range subjectExamples {
		if _, ok := src.builders[n]; !ok {
			return nil, fmt.Errorf("deploy/internal/reference has an example for proto.%s, which no longer exists", n)
		}
	}

	for _, group := range []struct{ prefix, title, intro string }{
		{"Header", "Headers", "Header names are case-sensitive."},
		{"Kind", "Message kinds", "The value of the `Punchflow-Type` header and the name of each JSON Schema."},
		{"Stage", "Dead-letter stages", "The second token of a dead letter's subject."},
		{"Reason", "Dead-letter reason codes", "The `Punchflow-Dlq-Reason-Code` header; `Punchflow-Dlq-Reason` says in words what to fix."},
		{"ErrorClass", "Heartbeat error classes", "A heartbeat's `error_class`."},
		{"Field", "Record field types", "The types a rules file gives a clean record's fields (`records.<source>.fields.<name>.type`); the loader's typed tables have a column of each."},
	} {
		var rows []constant
		for _, c := range src.consts {
			if strings.HasPrefix(c.name, group.prefix) {
				rows = append(rows, c)
			}
		}
		if len(rows) == 0 {
			continue
		}
		w("## %s\n\n%s\n\n| constant | value | meaning |\n|---|---|---|\n", group.title, group.intro)
		for _, c := range rows {
			w("| `proto.%s` | `%s` | %s |\n", c.name, c.value, mdEscape(c.doc))
		}
		w("\n")
	}

	w("## Messages\n\n")
	for _, kind := range proto.SchemaKinds() {
		raw, err := proto.Schema(kind)
		if err != nil {
			return nil, err
		}
		var s schemaDoc
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("schema %s: %w", kind, err)
		}
		w("### %s (`%s`)\n\n%s\n\nSchema: `proto/schema/%s.schema.json`.\n\n", s.Title, kind, s.Description, kind)
		w("| field | type | required | description |\n|---|---|---|---|\n")
		props := make([]string, 0, len(s.Properties))
		for p := range s.Properties {
			props = append(props, p)
		}
		sort.Slice(props, func(i, j int) bool {
			ri, rj := contains(s.Required, props[i]), contains(s.Required, props[j])
			if ri != rj {
				return ri
			}
			return props[i] < props[j]
		})
		for _, p := range props {
			prop := s.Properties[p]
			req := ""
			if contains(s.Required, p) {
				req = "yes"
			}
			w("| `%s` | %s | %s | %s |\n", p, prop.typeName(), req, mdEscape(oneLine(prop.Description)))
		}
		w("\n")
	}
	return b.Bytes(), nil
}

type schemaDoc struct {
	Title       string                 `json:"title"`
	Description string                 `json:"description"`
	Required    []string               `json:"required"`
	Properties  map[string]propertyDoc `json:"properties"`
}

type propertyDoc struct {
	Description string          `json:"description"`
	Type        json.RawMessage `json:"type"`
	Format      string          `json:"format"`
	Enum        []any           `json:"enum"`
	Ref         string          `json:"$ref"`
	Items       *propertyDoc    `json:"items"`
}

func (p propertyDoc) typeName() string {
	var t string
	var ts []string
	switch {
	case json.Unmarshal(p.Type, &t) == nil && t != "":
	case json.Unmarshal(p.Type, &ts) == nil && len(ts) > 0:
		t = strings.Join(ts, " or ")
	case p.Ref != "":
		t = "see " + p.Ref
	default:
		t = "any"
	}
	if t == "array" && p.Items != nil {
		t = "array of " + p.Items.typeName()
	}
	if p.Format != "" {
		t += " (" + p.Format + ")"
	}
	if len(p.Enum) > 0 {
		var vs []string
		for _, e := range p.Enum {
			vs = append(vs, fmt.Sprintf("`%v`", e))
		}
		t += ": " + strings.Join(vs, ", ")
	}
	return t
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func firstSentence(s string) string {
	s = oneLine(s)
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return s
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace(s)
}

func duration(d time.Duration) string {
	switch {
	case d == 0:
		return "none"
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%d h", d/time.Hour)
	}
	return d.String()
}

func allowed(b bool) string {
	if b {
		return "allowed"
	}
	return "denied"
}

// WriteIfChanged writes b to path unless it already holds b.
func WriteIfChanged(path string, b []byte) error {
	old, err := os.ReadFile(path)
	if err == nil && bytes.Equal(old, b) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
