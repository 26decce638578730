// Command benchtable reads `go test -bench` output on standard input and
// prints one aligned table: package, benchmark, and every metric reported
// (ns/op, B/op, allocs/op and custom ones such as rows/s).
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
)

type row struct {
	pkg, name string
	metrics   map[string]string
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	rows, units, err := parse(in)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return fmt.Errorf("no benchmark results in the input")
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "package\tbenchmark\t")
	for _, u := range units {
		fmt.Fprintf(tw, "%s\t", u)
	}
	fmt.Fprintln(tw)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t", r.pkg, r.name)
		for _, u := range units {
			v := r.metrics[u]
			if v == "" {
				v = "-"
			}
			fmt.Fprintf(tw, "%s\t", v)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// parse reads benchmark lines ("BenchmarkX-2  N  V unit  V unit ...") and
// the "pkg:" lines that precede them.
func parse(in io.Reader) ([]row, []string, error) {
	var rows []row
	var units []string
	seen := map[string]bool{}
	pkg := ""
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = shorten(p)
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || len(f)%2 != 0 {
			continue
		}
		r := row{pkg: pkg, name: strings.TrimPrefix(f[0], "Benchmark"), metrics: map[string]string{"iterations": f[1]}}
		for i := 2; i+1 < len(f); i += 2 {
			r.metrics[f[i+1]] = f[i]
			if !seen[f[i+1]] {
				seen[f[i+1]] = true
				units = append(units, f[i+1])
			}
		}
		rows = append(rows, r)
	}
	return rows, units, sc.Err()
}

func shorten(pkg string) string {
	return strings.TrimPrefix(pkg, "github.com/punchflow/punchflow/")
}
