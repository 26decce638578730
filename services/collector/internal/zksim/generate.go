package zksim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/punchflow/punchflow/services/collector/internal/zk"
)

var firstNames = []string{
	"Ana", "Ben", "Chen", "Dina", "Eko", "Fatma", "Gus", "Hana", "Ivan", "Jia", "Kofi", "Lena",
	"Mia", "Nour", "Omar", "Pia", "Raj", "Sara", "Tom", "Uma", "Vera", "Wei", "Yara", "Zoe",
}

// profile is how one generated person punches.
type profile struct {
	verify  int // preferred verify mode
	arrival int // usual arrival, seconds after midnight
}

// dataset is what generate produces.
type dataset struct {
	users    []zk.User
	records  []zk.AttendanceRecord
	profiles map[int]profile // by uid
}

// generate builds the users and attendance log of cfg deterministically from
// cfg.Seed. Records are in time order and encoded in cfg.RecordSize (Raw).
func generate(cfg Config) (dataset, error) {
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5a4b534f))
	ds := dataset{profiles: make(map[int]profile, cfg.Users)}
	for i := range cfg.Users {
		u := zk.User{
			UID:    i + 1,
			UserID: strconv.Itoa(1001 + i),
			Name:   firstNames[i%len(firstNames)] + " " + string(rune('A'+rng.IntN(26))) + ".",
			Group:  1,
		}
		if i == 0 {
			u.Privilege = zk.PrivilegeAdmin
		}
		if rng.IntN(5) == 0 {
			u.Password = fmt.Sprintf("%04d", rng.IntN(10000))
		}
		if rng.IntN(2) == 0 {
			u.Card = 1_000_000 + rng.Uint32N(9_000_000)
		}
		p := profile{verify: 1, arrival: 8*3600 + rng.IntN(90*60)}
		switch r := rng.IntN(20); {
		case r < 5:
			p.verify = 15 // face
		case r < 7 && u.Card != 0:
			p.verify = 4 // card
		case r < 8:
			p.verify = 3 // password
		}
		ds.users = append(ds.users, u)
		ds.profiles[u.UID] = p
	}

	target := cfg.Records
	if cfg.Faults.FullLog {
		target = cfg.RecordCapacity
	}
	dups := min(cfg.Faults.DuplicatePunches, target)
	unique := target - dups
	day := time.Date(cfg.Start.Year(), cfg.Start.Month(), cfg.Start.Day(), 0, 0, 0, 0, time.UTC)
	for len(ds.records) < unique {
		if day.Year() > zk.MaxYear {
			return dataset{}, fmt.Errorf("generate %d records for %d users: log runs past %d", target, cfg.Users, zk.MaxYear)
		}
		if wd := day.Weekday(); wd != time.Saturday && wd != time.Sunday {
			punches := dayPunches(rng, cfg, ds.users, ds.profiles, day)
			ds.records = append(ds.records, punches[:min(len(punches), unique-len(ds.records))]...)
		}
		day = day.AddDate(0, 0, 1)
	}
	for range dups {
		i := rng.IntN(len(ds.records))
		ds.records = slices.Insert(ds.records, i+1, ds.records[i])
	}
	for i := range ds.records {
		raw, err := zk.AppendAttendance(nil, ds.records[i], cfg.RecordSize)
		if err != nil {
			return dataset{}, fmt.Errorf("generate record %d: %w", i, err)
		}
		ds.records[i].Raw = raw
	}
	return ds, nil
}

// dayPunches returns one weekday's punches in time order: most people arrive
// 08:00–09:30 and leave 17:00–18:30, some take a break around noon, a few are
// absent.
func dayPunches(rng *rand.Rand, cfg Config, users []zk.User, profiles map[int]profile, day time.Time) []zk.AttendanceRecord {
	var out []zk.AttendanceRecord
	add := func(u zk.User, secs, state int) {
		r := zk.AttendanceRecord{
			UID:        u.UID,
			UserID:     u.UserID,
			DeviceTime: day.Add(time.Duration(secs) * time.Second),
			State:      state,
			VerifyMode: profiles[u.UID].verify,
		}
		if cfg.RecordSize != zk.AttendanceSize8 && rng.IntN(20) == 0 {
			r.WorkCode = 1 + rng.IntN(9)
		}
		out = append(out, r)
	}
	for _, u := range users {
		if rng.IntN(20) == 0 {
			continue // absent
		}
		p := profiles[u.UID]
		arrive := min(max(p.arrival+rng.IntN(25*60)-10*60, 8*3600), 9*3600+30*60-1)
		add(u, arrive, zk.StateCheckIn)
		if rng.IntN(10) < 3 {
			brk := 12*3600 + rng.IntN(3600)
			add(u, brk, zk.StateBreakOut)
			add(u, brk+30*60+rng.IntN(30*60), zk.StateBreakIn)
		}
		add(u, 17*3600+rng.IntN(90*60), zk.StateCheckOut)
	}
	slices.SortStableFunc(out, func(a, b zk.AttendanceRecord) int { return a.DeviceTime.Compare(b.DeviceTime) })
	return out
}
