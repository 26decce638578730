package app

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/transformer/internal/roster"
	"github.com/punchflow/punchflow/services/transformer/internal/rules"
)

const rulesUsage = `Usage:
  transformer rules check FILE [--roster FILE]
      Validate a rules file (and a roster against it) and print a summary.
      Exits non-zero when anything is wrong, after saying what to fix.
  transformer rules explain FILE --punch JSON [--roster FILE]
      Show step by step how the rules classify one raw punch, then the event.
      The punch is a raw_punch JSON object; only site, user_id and
      device_time are needed (device_serial, state, verify_mode,
      device_time_zone, clock_offset_ms, collected_at are used when given).
      Exits non-zero when the punch would be dead-lettered.
`

func runRules(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "check" && args[0] != "explain") {
		_, _ = io.WriteString(stderr, rulesUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return nil
		}
		return errors.New("rules: want check or explain")
	}
	cmd := args[0]
	fs := flag.NewFlagSet("transformer rules "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { _, _ = io.WriteString(stderr, rulesUsage) }
	rosterFile := fs.String("roster", "", "roster file to check against the rules or to look the user up in")
	punchJSON := ""
	if cmd == "explain" {
		fs.StringVar(&punchJSON, "punch", "", "the raw punch as JSON (required)")
	}
	file, err := parseWithPositional(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if file == "" {
		return fmt.Errorf("rules %s: give the rules file: transformer rules %s FILE", cmd, cmd)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("rules %s: %w", cmd, err)
	}
	rs, err := rules.Parse(data)
	if err != nil {
		fmt.Fprintf(stdout, "rules file %s is NOT valid:\n", file)
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stdout, "  %s\n", line)
		}
		return fmt.Errorf("rules file %s: %w", file, errRejected)
	}
	var ros *roster.Roster
	if *rosterFile != "" {
		b, err := os.ReadFile(*rosterFile)
		if err != nil {
			return fmt.Errorf("rules %s: %w", cmd, err)
		}
		if ros, err = roster.Parse(*rosterFile, b); err != nil {
			fmt.Fprintf(stdout, "roster %s is NOT valid:\n  %s\n", *rosterFile, strings.ReplaceAll(err.Error(), "\n", "\n  "))
			return fmt.Errorf("roster %s: %w", *rosterFile, errRejected)
		}
	}
	if cmd == "check" {
		return rulesCheck(stdout, file, rs, *rosterFile, ros)
	}
	if punchJSON == "" {
		return errors.New("rules explain: give the punch with --punch '{\"site\":\"hq\",\"user_id\":\"42\",\"device_time\":\"2026-11-02T08:57:00\",\"state\":0}'")
	}
	return rulesExplain(stdout, rs, ros, punchJSON)
}

// parseWithPositional parses flags given before and after one positional
// argument (FILE), which it returns.
func parseWithPositional(fs *flag.FlagSet, args []string) (string, error) {
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() == 0 {
		return "", nil
	}
	pos := fs.Arg(0)
	if err := fs.Parse(fs.Args()[1:]); err != nil {
		return "", err
	}
	if fs.NArg() > 0 {
		return "", fmt.Errorf("%s: unexpected arguments %q", fs.Name(), fs.Args())
	}
	return pos, nil
}

func rulesCheck(w io.Writer, file string, rs *rules.Rules, rosterFile string, ros *roster.Roster) error {
	fmt.Fprintf(w, "rules file %s is valid.\n%s", file, rs.Summary())
	if ros == nil {
		return nil
	}
	errs := rs.CheckRoster(ros)
	if len(errs) == 0 {
		fmt.Fprintf(w, "roster %s: %d entries, all consistent with the rules (roster version %s).\n", rosterFile, ros.Len(), ros.Version)
		return nil
	}
	fmt.Fprintf(w, "roster %s: %d entries, %d problem(s):\n", rosterFile, ros.Len(), len(errs))
	for _, err := range errs {
		fmt.Fprintf(w, "  %v\n", err)
	}
	return fmt.Errorf("roster %s: %w", rosterFile, errRejected)
}

// explainPunch reads a punch given on the command line. Unknown fields are
// errors (a typo would otherwise be silently ignored); the id and the
// bookkeeping fields are filled in when absent.
func explainPunch(s string) (proto.RawPunch, error) {
	var p proto.RawPunch
	dec := stdjson.NewDecoder(bytes.NewReader([]byte(s)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("rules explain: --punch is not a raw punch JSON object: %w", err)
	}
	if p.Site == "" || p.UserID == "" || p.DeviceTime == "" {
		return p, errors.New("rules explain: the punch needs at least site, user_id and device_time")
	}
	if p.DeviceSerial == "" {
		p.DeviceSerial = "EXPLAIN"
	}
	if p.Source == "" {
		p.Source = "explain"
	}
	if p.RunID == "" {
		p.RunID = "explain"
	}
	if p.ID == "" {
		p = proto.NewRawPunch(p)
	}
	return p, nil
}

func rulesExplain(w io.Writer, rs *rules.Rules, ros *roster.Roster, punchJSON string) error {
	p, err := explainPunch(punchJSON)
	if err != nil {
		return err
	}
	steps, ev, aerr := rs.Explain(p, ros)
	fmt.Fprintf(w, "punch %s: site %s, device %s, user %s, device time %s, state %d (rules %s)\n\n", p.ID, p.Site, p.DeviceSerial, p.UserID, p.DeviceTime, p.State, rs.Version)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i, s := range steps {
		fmt.Fprintf(tw, "%2d.\t%s\t%s\n", i+1, s.Name, s.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if aerr != nil {
		fmt.Fprintf(w, "\nREJECTED: the punch would go to the dead-letter stream: %v\n", aerr)
		return fmt.Errorf("rules explain: %w: %v", errRejected, aerr)
	}
	b, err := proto.Encode(&ev)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	_ = stdjson.Indent(&out, b, "", "  ")
	fmt.Fprintf(w, "\nattendance event (processed_at is set when published):\n%s\n", out.String())
	return nil
}
