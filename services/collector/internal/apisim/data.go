package apisim

import (
	"fmt"
	"sort"
	"strconv"
	"time"
)

// Dataset names one simulated business API.
type Dataset string

// The datasets every simulator serves. Each has its own record shape, so
// that a source configuration has to say where the key and the time are:
//
//	orders:   {"id":"ORD-0000042","customer":"C-0042","status":"paid","total":123.45,"currency":"EUR","items":3,"updated_at":"2025-08-01T10:00:00Z"}
//	tickets:  {"ticket_id":42,"subject":"…","priority":"high","state":"open","requester":"user42@example.com","updated":"2025-08-01 10:00:00"}
//	payments: {"payment":{"ref":"PAY-0000042","method":"card"},"amount_cents":12345,"currency":"EUR","created_ms":1754042400000}
//
// orders keep their time in RFC 3339, tickets as "2006-01-02 15:04:05"
// (UTC), payments in Unix milliseconds under a nested key.
const (
	Orders   Dataset = "orders"
	Tickets  Dataset = "tickets"
	Payments Dataset = "payments"
)

// Datasets lists the datasets in a fixed order.
var Datasets = []Dataset{Orders, Tickets, Payments}

// data generates the records of one dataset on demand: record k of n has a
// timestamp that grows with k, so a time window is an index range found by
// binary search, and its content derives from the seed and k alone. Nothing
// is stored, whatever the size.
type data struct {
	ds       Dataset
	seed     uint64
	n        int
	from, to time.Time
}

// mix is SplitMix64: a fast, well-spread hash of seed and k.
func mix(seed, k uint64) uint64 {
	z := seed + 0x9e3779b97f4a7c15*(k+1)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// at is the timestamp of record k, truncated to the second: the k-th equal
// step through [from, to) plus a jitter within the step.
func (d *data) at(k int) time.Time {
	span := d.to.Sub(d.from)
	step := span / time.Duration(d.n)
	base := d.from.Add(time.Duration(float64(span) * float64(k) / float64(d.n)))
	if step > 2*time.Second {
		// The jitter stays a second short of the next step, so that the
		// timestamps never decrease (rounding cannot cross a second).
		base = base.Add(time.Duration(mix(d.seed, uint64(k)) % uint64(step-time.Second)))
	}
	return base.Truncate(time.Second)
}

// index returns the index range [lo, hi) of the records with from ≤ t < to.
func (d *data) index(from, to time.Time) (lo, hi int) {
	lo = sort.Search(d.n, func(k int) bool { return !d.at(k).Before(from) })
	hi = sort.Search(d.n, func(k int) bool { return !d.at(k).Before(to) })
	return lo, max(lo, hi)
}

var (
	statuses   = []string{"new", "paid", "shipped", "delivered", "refunded"}
	currencies = []string{"EUR", "USD", "GBP", "CHF"}
	priorities = []string{"low", "normal", "high", "urgent"}
	states     = []string{"open", "pending", "solved", "closed"}
	subjects   = []string{"Login fails", "Invoice missing", "Clock not syncing", "Badge not read", "Shift swap", "Payroll question"}
	methods    = []string{"card", "sepa", "paypal", "cash"}
)

func pick(list []string, h uint64) string { return list[h%uint64(len(list))] }

// appendRecord appends the JSON of record k.
func (d *data) appendRecord(b []byte, k int) []byte {
	h := mix(d.seed^uint64(len(d.ds))<<56, uint64(k))
	t := d.at(k)
	switch d.ds {
	case Orders:
		b = append(b, `{"id":"ORD-`...)
		b = appendPadded(b, k)
		b = append(b, `","customer":"C-`...)
		b = appendPadded(b, int(h%5000))
		b = append(b, `","status":"`...)
		b = append(b, pick(statuses, h>>8)...)
		b = append(b, `","total":`...)
		b = strconv.AppendFloat(b, float64(h>>16%100000)/100, 'f', 2, 64)
		b = append(b, `,"currency":"`...)
		b = append(b, pick(currencies, h>>24)...)
		b = append(b, `","items":`...)
		b = strconv.AppendInt(b, int64(1+h>>32%9), 10)
		b = append(b, `,"updated_at":"`...)
		b = t.UTC().AppendFormat(b, time.RFC3339)
		b = append(b, `"}`...)
	case Tickets:
		b = append(b, `{"ticket_id":`...)
		b = strconv.AppendInt(b, int64(k+1), 10)
		b = append(b, `,"subject":"`...)
		b = append(b, pick(subjects, h>>8)...)
		b = append(b, `","priority":"`...)
		b = append(b, pick(priorities, h>>16)...)
		b = append(b, `","state":"`...)
		b = append(b, pick(states, h>>24)...)
		b = append(b, `","requester":"user`...)
		b = strconv.AppendInt(b, int64(h>>32%2000), 10)
		b = append(b, `@example.com","updated":"`...)
		b = t.UTC().AppendFormat(b, time.DateTime)
		b = append(b, `"}`...)
	case Payments:
		b = append(b, `{"payment":{"ref":"PAY-`...)
		b = appendPadded(b, k)
		b = append(b, `","method":"`...)
		b = append(b, pick(methods, h>>8)...)
		b = append(b, `"},"amount_cents":`...)
		b = strconv.AppendInt(b, int64(100+h>>16%1000000), 10)
		b = append(b, `,"currency":"`...)
		b = append(b, pick(currencies, h>>40)...)
		b = append(b, `","created_ms":`...)
		b = strconv.AppendInt(b, t.UnixMilli(), 10)
		b = append(b, '}')
	default:
		panic(fmt.Sprintf("apisim: unknown dataset %q", d.ds))
	}
	return b
}

func appendPadded(b []byte, k int) []byte {
	s := strconv.Itoa(k)
	for i := len(s); i < 7; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// Key returns the natural key record k of ds has in the simulator's output
// (what a source configured by SourcesYAML derives), for tests that check
// every record arrived.
func Key(ds Dataset, k int) string {
	switch ds {
	case Orders:
		return "ORD-" + string(appendPadded(nil, k))
	case Tickets:
		return strconv.Itoa(k + 1)
	default:
		return "PAY-" + string(appendPadded(nil, k))
	}
}
