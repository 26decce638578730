// Package punchgen generates realistic, deterministic attendance punches as
// CSV, for the demo and the end-to-end tests: people arriving around the
// start of their shift and leaving around its end, on weekdays, at the
// devices of their site.
package punchgen

import (
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// Header is the CSV header the generator writes; the collector's default
// column mapping reads it as is.
var Header = []string{"site", "device_serial", "user_id", "device_time", "state", "verify_mode"}

// Site is one site of the generated organisation.
type Site struct {
	Name     string
	TimeZone string
	Devices  int
}

// DefaultSites are two sites in different time zones.
var DefaultSites = []Site{{"hq", "America/New_York", 4}, {"plant", "Asia/Kolkata", 4}}

// Config shapes the generated punches.
type Config struct {
	Punches int       // total punches; rounded down to whole in/out pairs
	Users   int       // people (default 500)
	Start   time.Time // first day (default 2026-11-02, a Monday)
	Seed    uint64
	Sites   []Site
}

// Rows returns Punches rows in Header order, every one a distinct punch
// identity (device, user, time, state), sorted by day.
func Rows(c Config) [][]string {
	if c.Users <= 0 {
		c.Users = 500
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	}
	if len(c.Sites) == 0 {
		c.Sites = DefaultSites
	}
	rng := rand.New(rand.NewPCG(c.Seed, 0x70756e6368))
	rows := make([][]string, 0, c.Punches)
	for day := c.Start; len(rows)+1 < c.Punches; day = day.AddDate(0, 0, 1) {
		if wd := day.Weekday(); wd == time.Saturday || wd == time.Sunday {
			continue
		}
		for u := 0; u < c.Users && len(rows)+1 < c.Punches; u++ {
			site := c.Sites[u%len(c.Sites)]
			device := fmt.Sprintf("%s-DEV%02d", site.Name, (u/len(c.Sites))%site.Devices+1)
			user := fmt.Sprintf("%05d", 1000+u)
			in := day.Add(8*time.Hour + time.Duration(rng.IntN(90*60))*time.Second)
			out := day.Add(17*time.Hour + time.Duration(rng.IntN(90*60))*time.Second)
			verify := []string{"1", "15", "4"}[rng.IntN(3)]
			rows = append(rows,
				[]string{site.Name, device, user, in.Format(time.DateTime), "0", verify},
				[]string{site.Name, device, user, out.Format(time.DateTime), "1", verify})
		}
	}
	return rows
}

// Write writes the header and rows as CSV.
func Write(w io.Writer, rows [][]string) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(Header); err != nil {
		return err
	}
	if err := cw.WriteAll(rows); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

// RulesYAML is a rules file covering DefaultSites.
func RulesYAML(sites []Site) string {
	if len(sites) == 0 {
		sites = DefaultSites
	}
	s := "# punchflow rules: generated for the demo\ndefault_time_zone: UTC\nsites:\n"
	for _, site := range sites {
		s += fmt.Sprintf("  %s:\n    time_zone: %s\n", site.Name, site.TimeZone)
	}
	return s
}

// PastStart returns a first day (midnight UTC) early enough that all the
// punches of a Config with these punches and users lie before now, so that
// the rules' clock checks accept them.
func PastStart(now time.Time, punches, users int) time.Time {
	if users <= 0 {
		users = 500
	}
	weekdays := (punches/(2*users) + 1)
	days := weekdays*7/5 + 3
	d := now.UTC().AddDate(0, 0, -days)
	return time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, time.UTC)
}
