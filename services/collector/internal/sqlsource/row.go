package sqlsource

import (
	"database/sql"
	"encoding/base64"
	"fmt"
	"math"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/segmentio/encoding/json"
)

type dialect interface {
	quote(ident string) string
	quoteTable(table string) string
	param(n int) string
}

type postgresDialect struct{}

func (postgresDialect) quote(id string) string { return `"` + strings.ReplaceAll(id, `"`, `""`) + `"` }
func (d postgresDialect) quoteTable(t string) string {
	parts := strings.Split(t, ".")
	for i, p := range parts {
		parts[i] = d.quote(p)
	}
	return strings.Join(parts, ".")
}
func (postgresDialect) param(n int) string { return "$" + strconv.Itoa(n) }

type mysqlDialect struct{}

func (mysqlDialect) quote(id string) string { return "`" + strings.ReplaceAll(id, "`", "``") + "`" }
func (d mysqlDialect) quoteTable(t string) string {
	parts := strings.Split(t, ".")
	for i, p := range parts {
		parts[i] = d.quote(p)
	}
	return strings.Join(parts, ".")
}
func (mysqlDialect) param(int) string { return "?" }

// postgresAddr is host:port/db of a PostgreSQL URL or key=value DSN,
// without credentials.
func postgresAddr(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Host != "" {
		return u.Host + u.Path
	}
	host, db := "", ""
	for _, f := range strings.Fields(dsn) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "host":
			host = v
		case "dbname":
			db = "/" + v
		}
	}
	return host + db
}

func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	v := strings.TrimRight(string(b), "\r\n")
	if v == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return v, nil
}

// rowEncoder turns scanned rows into JSON objects keyed by column name, in
// select order, so the same row always yields the same bytes (and id).
type rowEncoder struct {
	names  []string
	kinds  []valueKind
	cursor int
	keys   []int
	// prefix[i] is `{"name":` or `,"name":` for column i.
	prefix [][]byte
}

type valueKind int

const (
	kindText    valueKind = iota
	kindNumber            // DECIMAL/NUMERIC: the digits as a JSON number
	kindBinary            // BLOB/BYTEA: base64
	kindJSON              // JSON/JSONB: the document itself
	kindUnknown           // whatever the driver returns
)

func newRowEncoder(cols []*sql.ColumnType, cursor string, keys []string) (*rowEncoder, error) {
	e := &rowEncoder{cursor: -1}
	for i, c := range cols {
		e.names = append(e.names, c.Name())
		e.kinds = append(e.kinds, kindOf(c.DatabaseTypeName()))
		sep := ","
		if i == 0 {
			sep = "{"
		}
		name, _ := json.Marshal(c.Name())
		e.prefix = append(e.prefix, append(append([]byte(sep), name...), ':'))
		if strings.EqualFold(c.Name(), cursor) {
			e.cursor = i
		}
	}
	if e.cursor < 0 {
		return nil, fmt.Errorf("the result has no cursor column %s (columns %v)", cursor, e.names)
	}
	for _, k := range keys {
		found := -1
		for i, n := range e.names {
			if strings.EqualFold(n, k) {
				found = i
			}
		}
		if found < 0 {
			return nil, fmt.Errorf("the result has no key column %s (columns %v)", k, e.names)
		}
		e.keys = append(e.keys, found)
	}
	return e, nil
}

func kindOf(dbType string) valueKind {
	switch t := strings.ToUpper(dbType); {
	case t == "NUMERIC" || t == "DECIMAL":
		return kindNumber
	case t == "BYTEA" || strings.HasSuffix(t, "BLOB") || t == "BINARY" || t == "VARBINARY" || t == "BIT" || t == "GEOMETRY":
		return kindBinary
	case t == "JSON" || t == "JSONB":
		return kindJSON
	case strings.Contains(t, "CHAR") || strings.Contains(t, "TEXT") || t == "ENUM" || t == "SET" || t == "UUID" || t == "NAME":
		return kindText
	}
	return kindUnknown
}

// encode renders one scanned row and returns it with its keyset values.
func (e *rowEncoder) encode(vals []any) (row, []any) {
	b := make([]byte, 0, 64*len(vals))
	for i, v := range vals {
		b = append(b, e.prefix[i]...)
		b = appendValue(b, v, e.kinds[i])
	}
	if len(vals) == 0 {
		b = append(b, '{')
	}
	b = append(b, '}')
	r := row{payload: b}
	if t, ok := vals[e.cursor].(time.Time); ok {
		r.at = t.UTC()
	}
	keys := make([]string, len(e.keys))
	keyset := []any{vals[e.cursor]}
	for i, k := range e.keys {
		v := vals[k]
		keyset = append(keyset, v)
		if v == nil {
			r.reject = fmt.Sprintf("key column %s is NULL", e.names[k])
			continue
		}
		keys[i] = scalarText(v)
	}
	r.key = strings.Join(keys, "|")
	return r, keyset
}

// scalarText renders a key value as text.
func scalarText(v any) string {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case string:
		return x
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case [16]byte:
		return formatUUID(x)
	}
	return fmt.Sprint(v)
}

func formatUUID(u [16]byte) string {
	const hex = "0123456789abcdef"
	var b [36]byte
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = hex[c>>4], hex[c&0xf]
		j += 2
	}
	return string(b[:])
}

func appendValue(b []byte, v any, kind valueKind) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, x)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case int32:
		return strconv.AppendInt(b, int64(x), 10)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case uint64:
		return strconv.AppendUint(b, x, 10)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return appendString(b, strconv.FormatFloat(x, 'g', -1, 64))
		}
		return strconv.AppendFloat(b, x, 'g', -1, 64)
	case float32:
		return strconv.AppendFloat(b, float64(x), 'g', -1, 32)
	case time.Time:
		return appendString(b, x.UTC().Format(time.RFC3339Nano))
	case [16]byte:
		return appendString(b, formatUUID(x))
	case string:
		return appendText(b, []byte(x), kind)
	case []byte:
		return appendText(b, x, kind)
	}
	// Maps, slices and other driver types: their JSON, or their text.
	if j, err := json.Marshal(v); err == nil {
		return append(b, j...)
	}
	return appendString(b, fmt.Sprint(v))
}

func appendText(b, x []byte, kind valueKind) []byte {
	switch kind {
	case kindNumber:
		if _, err := strconv.ParseFloat(string(x), 64); err == nil {
			return append(b, x...)
		}
	case kindJSON:
		if json.Valid(x) {
			return appendCompact(b, x) // without re-ordering the keys
		}
	case kindBinary:
		return appendString(b, base64.StdEncoding.EncodeToString(x))
	}
	if !utf8.Valid(x) {
		// Not text after all (a binary column the driver did not name).
		return appendString(b, base64.StdEncoding.EncodeToString(x))
	}
	return appendString(b, string(x))
}

func appendString(b []byte, s string) []byte {
	j, _ := json.Marshal(s)
	return append(b, j...)
}

// appendCompact appends the JSON document x without insignificant space.
func appendCompact(b, x []byte) []byte {
	inString := false
	for i := 0; i < len(x); i++ {
		c := x[i]
		switch {
		case inString:
			b = append(b, c)
			if c == '\\' && i+1 < len(x) {
				i++
				b = append(b, x[i])
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
			b = append(b, c)
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
		default:
			b = append(b, c)
		}
	}
	return b
}
