package apisim

import (
	"fmt"
	"strings"
)

// Styles lists the pagination styles the simulator serves.
var Styles = []string{"page", "offset", "cursor", "link"}

// SourceYAML returns the collector's declaration (one item of the sources
// file's "api" list, indented for it) of dataset ds served by the simulator
// at baseURL in pagination style, named name, asking pageSize records a
// page. auth is the YAML of the auth block's fields (e.g.
// "type: bearer\ntoken_env: SIM_TOKEN"), or "" for none.
func SourceYAML(name, baseURL, style string, ds Dataset, pageSize int, auth string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: %s\n    base_url: %s\n    path: /%s/%s\n", name, baseURL, style, ds)
	b.WriteString("    query:\n      from: '{{.From | rfc3339}}'\n      to: '{{.To | rfc3339}}'\n")
	switch style {
	case "page":
		fmt.Fprintf(&b, "    pagination: {style: page, size: %d, size_param: per_page, page_param: page}\n    records_path: data.items\n", pageSize)
	case "offset":
		fmt.Fprintf(&b, "    pagination: {style: offset, size: %d, size_param: count, offset_param: skip}\n    records_path: results\n", pageSize)
	case "cursor":
		fmt.Fprintf(&b, "    pagination: {style: cursor, size: %d, size_param: limit, cursor_param: cursor, next_path: next_cursor}\n    records_path: data\n", pageSize)
	case "link":
		fmt.Fprintf(&b, "    pagination: {style: link, size: %d, size_param: per_page}\n", pageSize)
	}
	switch ds {
	case Orders:
		b.WriteString("    key_fields: [id]\n    time_field: updated_at\n    time_layout: rfc3339\n")
	case Tickets:
		b.WriteString("    key_fields: [ticket_id]\n    time_field: updated\n    time_layout: '2006-01-02 15:04:05'\n")
	case Payments:
		b.WriteString("    key_fields: [payment.ref]\n    time_field: created_ms\n    time_layout: unix_ms\n")
	}
	if auth != "" {
		b.WriteString("    auth:\n")
		for _, line := range strings.Split(strings.TrimSpace(auth), "\n") {
			b.WriteString("      " + strings.TrimSpace(line) + "\n")
		}
	}
	return b.String()
}
