package roster

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// CSV columns of a roster file. site, user_id and person_id are required;
// the others are optional.
var (
	requiredColumns = []string{"site", "user_id", "person_id"}
	optionalColumns = []string{"name", "department", "shift"}
)

// Parse reads a roster file: CSV when name ends in .csv (a header row with
// the columns site, user_id, person_id and optionally name, department,
// shift), otherwise YAML or JSON (a list of objects with the same keys).
// Errors name the line to fix. The entries are checked as New checks them.
func Parse(name string, data []byte) (*Roster, error) {
	var entries []Entry
	var err error
	if strings.EqualFold(filepath.Ext(name), ".csv") {
		entries, err = parseCSV(data)
	} else {
		entries, err = parseYAML(data)
	}
	if err != nil {
		return nil, fmt.Errorf("roster %s: %w", name, err)
	}
	r, err := New(entries)
	if err != nil {
		return nil, fmt.Errorf("roster %s: %w", name, err)
	}
	return r, nil
}

func parseCSV(data []byte) ([]Entry, error) {
	cr := csv.NewReader(bytes.NewReader(data))
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = false
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("empty file: want a header row site,user_id,person_id[,name,department,shift]")
	}
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		known := false
		for _, c := range append(append([]string(nil), requiredColumns...), optionalColumns...) {
			if h == c {
				known = true
			}
		}
		if !known {
			return nil, fmt.Errorf("line 1: unknown column %q: use site, user_id, person_id, name, department, shift", h)
		}
		if _, dup := col[h]; dup {
			return nil, fmt.Errorf("line 1: column %q appears twice", h)
		}
		col[h] = i
	}
	for _, c := range requiredColumns {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("line 1: column %q is missing (want site,user_id,person_id[,name,department,shift])", c)
		}
	}
	get := func(rec []string, c string) string {
		if i, ok := col[c]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var entries []Entry
	var errs []error
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return nil, err
		}
		e := Entry{Site: get(rec, "site"), UserID: get(rec, "user_id"), PersonID: get(rec, "person_id"),
			Name: get(rec, "name"), Department: get(rec, "department"), Shift: get(rec, "shift")}
		if err := e.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", line, err))
			continue
		}
		entries = append(entries, e)
	}
	return entries, errors.Join(errs...)
}

func parseYAML(data []byte) ([]Entry, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("not valid YAML or JSON: %w", err)
	}
	if len(root.Content) == 0 {
		return nil, nil
	}
	list := root.Content[0]
	if list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("line %d: want a list of entries (site, user_id, person_id, name, department, shift)", list.Line)
	}
	var entries []Entry
	var errs []error
	for _, n := range list.Content {
		var e Entry
		if err := decodeStrict(n, &e); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", n.Line, err))
			continue
		}
		if err := e.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", n.Line, err))
			continue
		}
		entries = append(entries, e)
	}
	return entries, errors.Join(errs...)
}

// decodeStrict decodes a mapping node into e, refusing unknown keys.
func decodeStrict(n *yaml.Node, e *Entry) error {
	if n.Kind != yaml.MappingNode {
		return errors.New("want an object with site, user_id, person_id")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, n.Content[i+1]
		if v.Kind != yaml.ScalarNode {
			return fmt.Errorf("%s must be a plain value", k)
		}
		switch k {
		case "site":
			e.Site = v.Value
		case "user_id":
			e.UserID = v.Value
		case "person_id":
			e.PersonID = v.Value
		case "name":
			e.Name = v.Value
		case "department":
			e.Department = v.Value
		case "shift":
			e.Shift = v.Value
		default:
			return fmt.Errorf("unknown key %q: use site, user_id, person_id, name, department, shift", k)
		}
	}
	return nil
}

// KVKey is the key of the KV entry for a device user id at a site:
// escape(site) + "." + escape(userID), where escape keeps ASCII letters,
// digits, '-' and '_' and writes every other byte as '=' and two upper-case
// hex digits. The encoding is reversible (ParseKVKey), so two people never
// share a key.
func KVKey(site, userID string) string { return escape(site) + "." + escape(userID) }

// ParseKVKey reverses KVKey.
func ParseKVKey(k string) (site, userID string, err error) {
	s, u, ok := strings.Cut(k, ".")
	if !ok || strings.Contains(u, ".") {
		return "", "", fmt.Errorf("roster key %q is not <site>.<user_id> (see KVKey)", k)
	}
	if site, err = unescape(s); err != nil {
		return "", "", fmt.Errorf("roster key %q: %w", k, err)
	}
	if userID, err = unescape(u); err != nil {
		return "", "", fmt.Errorf("roster key %q: %w", k, err)
	}
	return site, userID, nil
}

// ParseKVEntry decodes the KV entry stored under key: a JSON object with
// person_id (required), name, department and shift. site and user_id may be
// repeated in the value; they must then match the key.
func ParseKVEntry(key string, value []byte) (Entry, error) {
	site, user, err := ParseKVKey(key)
	if err != nil {
		return Entry{}, err
	}
	var e Entry
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Entry{}, fmt.Errorf("roster key %q: value is not a JSON object with person_id, name, department, shift: %w", key, err)
	}
	if (e.Site != "" && e.Site != site) || (e.UserID != "" && e.UserID != user) {
		return Entry{}, fmt.Errorf("roster key %q: value names site %q user %q, the key says %q %q", key, e.Site, e.UserID, site, user)
	}
	e.Site, e.UserID = site, user
	if err := e.Validate(); err != nil {
		return Entry{}, fmt.Errorf("roster key %q: %w", key, err)
	}
	e.Version = e.fingerprint()
	return e, nil
}

// KVValue renders the KV value for e (the inverse of ParseKVEntry).
func KVValue(e Entry) []byte {
	b, _ := json.Marshal(struct {
		PersonID   string `json:"person_id"`
		Name       string `json:"name,omitempty"`
		Department string `json:"department,omitempty"`
		Shift      string `json:"shift,omitempty"`
	}{e.PersonID, e.Name, e.Department, e.Shift})
	return b
}

const hexDigits = "0123456789ABCDEF"

func plain(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

func escape(s string) string {
	if s == "" {
		return "="
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if plain(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func unescape(s string) (string, error) {
	if s == "=" {
		return "", nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '=' {
			if !plain(c) {
				return "", fmt.Errorf("byte %q must be escaped", c)
			}
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("escape at offset %d is cut short", i)
		}
		hi, lo := strings.IndexByte(hexDigits, s[i+1]), strings.IndexByte(hexDigits, s[i+2])
		if hi < 0 || lo < 0 {
			return "", fmt.Errorf("escape %q is not =XX with upper-case hex", s[i:i+3])
		}
		b.WriteByte(byte(hi<<4 | lo))
		i += 2
	}
	return b.String(), nil
}
