// Package roster maps a device user id at a site to the person behind it:
// person id, name, department and assigned shift. It is pure data: parsing
// a roster file or a KV entry and looking people up, no I/O.
package roster

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
)

// Entry is one person's record for one device user id at one site.
type Entry struct {
	Site       string `json:"site" yaml:"site"`
	UserID     string `json:"user_id" yaml:"user_id"`
	PersonID   string `json:"person_id" yaml:"person_id"`
	Name       string `json:"name,omitempty" yaml:"name"`
	Department string `json:"department,omitempty" yaml:"department"`
	// Shift names a shift of the rules file; empty leaves the choice to the
	// rules' assignments.
	Shift string `json:"shift,omitempty" yaml:"shift"`
	// Version is a fingerprint of the fields that change an attendance event
	// (PersonID, Department, Shift). New and Parse* fill it.
	Version string `json:"-" yaml:"-"`
}

// Validate reports what is missing from e.
func (e *Entry) Validate() error {
	switch {
	case e.Site == "":
		return fmt.Errorf("site is required")
	case e.UserID == "":
		return fmt.Errorf("user_id is required")
	case e.PersonID == "":
		return fmt.Errorf("person_id is required")
	}
	return nil
}

// fingerprint is the first 12 hex characters of the SHA-256 of the fields
// that change an attendance event, length-prefixed so that no two distinct
// tuples collide by concatenation.
func (e *Entry) fingerprint() string {
	h := sha256.New()
	for _, s := range []string{e.PersonID, e.Department, e.Shift} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

type key struct{ site, user string }

// Roster is an immutable set of entries keyed by (site, user id). A nil
// *Roster means "no roster configured": Lookup finds nothing, and callers
// do not flag unknown users. A Roster is safe for concurrent use.
type Roster struct {
	byKey map[key]*Entry
	// bySite is byKey split by site: a small map of sites, then a map of
	// user ids, each keyed by one string (a faster lookup than the pair).
	bySite map[string]map[string]*Entry
	// Version is a fingerprint of the whole roster, for logs.
	Version string
}

// New builds a roster from entries. Two entries for the same site and user
// id are an error; so is an entry without site, user id or person id.
func New(entries []Entry) (*Roster, error) {
	r := &Roster{byKey: make(map[key]*Entry, len(entries)), bySite: map[string]map[string]*Entry{}}
	var errs []string
	for i := range entries {
		e := entries[i]
		if err := e.Validate(); err != nil {
			errs = append(errs, fmt.Sprintf("entry %d (site %q, user %q): %v", i+1, e.Site, e.UserID, err))
			continue
		}
		k := key{e.Site, e.UserID}
		if _, dup := r.byKey[k]; dup {
			errs = append(errs, fmt.Sprintf("entry %d: site %q user %q is listed twice", i+1, e.Site, e.UserID))
			continue
		}
		e.Version = e.fingerprint()
		r.byKey[k] = &e
		users := r.bySite[e.Site]
		if users == nil {
			users = map[string]*Entry{}
			r.bySite[e.Site] = users
		}
		users[e.UserID] = &e
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("roster: %s", strings.Join(errs, "; "))
	}
	r.Version = r.fingerprint()
	return r, nil
}

func (r *Roster) fingerprint() string {
	keys := make([]key, 0, len(r.byKey))
	for k := range r.byKey {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].site != keys[j].site {
			return keys[i].site < keys[j].site
		}
		return keys[i].user < keys[j].user
	})
	h := sha256.New()
	for _, k := range keys {
		e := r.byKey[k]
		fmt.Fprintf(h, "%d:%s%d:%s%s", len(k.site), k.site, len(k.user), k.user, e.Version)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// Lookup returns the entry for a device user id at a site. The returned
// entry must not be modified.
func (r *Roster) Lookup(site, userID string) (*Entry, bool) {
	if r == nil {
		return nil, false
	}
	e, ok := r.bySite[site][userID]
	return e, ok
}

// Len is the number of entries.
func (r *Roster) Len() int {
	if r == nil {
		return 0
	}
	return len(r.byKey)
}

// Entries returns every entry, sorted by site and user id.
func (r *Roster) Entries() []Entry {
	if r == nil {
		return nil
	}
	out := make([]Entry, 0, len(r.byKey))
	for _, e := range r.byKey {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Site != out[j].Site {
			return out[i].Site < out[j].Site
		}
		return out[i].UserID < out[j].UserID
	})
	return out
}
