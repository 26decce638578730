// Command dumpdb prints the rows of one query as tab-separated text, one
// row per line, NULL as \N and instants in RFC 3339 UTC. The crash tests
// read the databases through it: it runs without the race detector, which
// makes reading hundreds of thousands of rows (above all through the pure
// Go SQLite) many times slower in the test process.
//
// Usage: dumpdb DRIVER DSN QUERY, DRIVER one of pgx, mysql, sqlite.
package main

import (
	"bufio"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "dumpdb:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("usage: dumpdb DRIVER DSN QUERY")
	}
	db, err := sql.Open(args[0], args[1])
	if err != nil {
		return err
	}
	defer db.Close()
	rs, err := db.Query(args[2])
	if err != nil {
		return err
	}
	defer rs.Close()
	cols, err := rs.Columns()
	if err != nil {
		return err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	for rs.Next() {
		if err := rs.Scan(ptrs...); err != nil {
			return err
		}
		for i, v := range vals {
			if i > 0 {
				w.WriteByte('\t')
			}
			var s string
			switch x := v.(type) {
			case nil:
				s = `\N`
			case time.Time:
				s = x.UTC().Format(time.RFC3339Nano)
			case []byte:
				s = string(x)
			default:
				s = fmt.Sprint(x)
			}
			if strings.ContainsAny(s, "\t\n") {
				return fmt.Errorf("value %q holds a tab or a newline", s)
			}
			w.WriteString(s)
		}
		w.WriteByte('\n')
	}
	if err := rs.Err(); err != nil {
		return err
	}
	return w.Flush()
}
