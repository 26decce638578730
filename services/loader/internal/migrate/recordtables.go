package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/punchflow/punchflow/services/loader/internal/recordtable"
)

// RecordTables creates the typed record table of every source of set that
// has none yet and adds the columns a table lacks (a field the rules file
// maps since), after Up. A column whose type is not the one its field
// declares is an error saying what to change: the loader never converts or
// drops data. It holds the lock Up takes on PostgreSQL and MySQL, so
// replicas may call it at the same time. Columns are never dropped: a field
// no longer mapped keeps its column, NULL from then on.
func RecordTables(ctx context.Context, db *sql.DB, dialect Dialect, set recordtable.Set, log *slog.Logger) error {
	if len(set) == 0 {
		return nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d, ok := recordDialects[dialect]
	if !ok {
		return fmt.Errorf("record tables: unknown dialect %q", dialect)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("record tables: %w", err)
	}
	defer conn.Close()
	locker, _, err := lockerOf(dialect)
	if err != nil {
		return fmt.Errorf("record tables: %w", err)
	}
	if locker != nil {
		if err := locker.SessionLock(ctx, conn); err != nil {
			return fmt.Errorf("record tables: %w", err)
		}
		defer func() { _ = locker.SessionUnlock(context.WithoutCancel(ctx), conn) }()
	}
	var errs []error
	for _, t := range set.Sorted() {
		if err := d.ensure(ctx, conn, t, log); err != nil {
			errs = append(errs, fmt.Errorf("record table %s (source %s): %w", t.Name, t.Source, err))
		}
	}
	return errors.Join(errs...)
}

// recordDialect is how one dialect creates and reads record tables.
type recordDialect struct {
	// quote quotes a column name (a field's, which may be a reserved word).
	quote string
	// types maps a field type to the column type as created and as the
	// catalog reports it (columns query).
	types map[recordtable.Type]string
	// create is the CREATE TABLE statement around the typed columns, with
	// %[1]s for the table and %[2]s for the typed column definitions.
	create string
	// index creates the natural key index of table %[1]s.
	index string
	// columns lists a table's columns and their types (one parameter, the
	// table); no rows means no table.
	columns string
	// addColumn adds column %[2]s of type %[3]s to table %[1]s.
	addColumn  string
	normalType func(string) string // the catalog's type as types spells it
}

func (d recordDialect) ensure(ctx context.Context, conn *sql.Conn, t *recordtable.Table, log *slog.Logger) error {
	have, err := d.existing(ctx, conn, t.Name)
	if err != nil {
		return err
	}
	if len(have) == 0 {
		defs := make([]string, len(t.Columns))
		for i, c := range t.Columns {
			defs[i] = d.quote + c.Name + d.quote + " " + d.types[c.Type] + " NULL,"
		}
		if _, err := conn.ExecContext(ctx, fmt.Sprintf(d.create, t.Name, strings.Join(defs, "\n    "))); err != nil {
			return fmt.Errorf("create: %w", err)
		}
		if _, err := conn.ExecContext(ctx, fmt.Sprintf(d.index, t.Name)); err != nil {
			return fmt.Errorf("create the natural key index: %w", err)
		}
		log.InfoContext(ctx, "record table created", slog.String("table", t.Name), slog.String("source", t.Source),
			slog.Int("typed_columns", len(t.Columns)))
		return nil
	}
	var errs []error
	for _, c := range t.Columns {
		want := d.types[c.Type]
		got, ok := have[c.Name]
		switch {
		case !ok:
			if _, err := conn.ExecContext(ctx, fmt.Sprintf(d.addColumn, t.Name, d.quote+c.Name+d.quote, want)); err != nil {
				errs = append(errs, fmt.Errorf("add column %s: %w", c.Name, err))
				continue
			}
			log.InfoContext(ctx, "record table column added", slog.String("table", t.Name), slog.String("column", c.Name),
				slog.String("type", want))
		case d.normalType(got) != want:
			errs = append(errs, fmt.Errorf("column %s is %s but its field is declared %s (%s): change the field's type back, or migrate the column yourself (ALTER TABLE %s ...)",
				c.Name, got, c.Type, want, t.Name))
		}
	}
	return errors.Join(errs...)
}

// existing returns the columns of table with their catalog types; none
// when there is no such table.
func (d recordDialect) existing(ctx context.Context, conn *sql.Conn, table string) (map[string]string, error) {
	rs, err := conn.QueryContext(ctx, d.columns, table)
	if err != nil {
		return nil, fmt.Errorf("read columns: %w", err)
	}
	defer rs.Close()
	out := map[string]string{}
	for rs.Next() {
		var name, typ string
		if err := rs.Scan(&name, &typ); err != nil {
			return nil, fmt.Errorf("read columns: %w", err)
		}
		out[name] = typ
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("read columns: %w", err)
	}
	return out, nil
}

var recordDialects = map[Dialect]recordDialect{
	Postgres: {
		quote: `"`,
		types: map[recordtable.Type]string{
			recordtable.String: "text", recordtable.Int: "bigint", recordtable.Number: "double precision",
			recordtable.Bool: "boolean", recordtable.Time: "timestamp with time zone", recordtable.Date: "date",
		},
		create: `CREATE TABLE %[1]s (
    id             varchar(64) COLLATE "C" PRIMARY KEY,
    rules_version  text        NOT NULL,
    natural_key    text        COLLATE "C" NOT NULL,
    occurred_at    timestamptz,
    %[2]s
    fields         jsonb       NOT NULL DEFAULT '{}',
    payload        json        NOT NULL,
    raw_id         text        COLLATE "C" NOT NULL,
    raw_subject    text        NOT NULL,
    raw_stream     text        NOT NULL,
    raw_sequence   bigint      NOT NULL,
    clean_sequence bigint      NOT NULL,
    run_id         text        NOT NULL DEFAULT '',
    correlation_id text        NOT NULL DEFAULT '',
    batch_id       text        NOT NULL,
    loaded_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT %[1]s_sequence_check CHECK (raw_sequence >= 0 AND clean_sequence >= 0)
)`,
		index: `CREATE INDEX %[1]s_natural_key_idx ON %[1]s (natural_key)`,
		columns: `SELECT a.attname, format_type(a.atttypid, a.atttypmod)
			FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
			WHERE c.relname = $1 AND c.relkind = 'r' AND c.relnamespace = to_regnamespace(current_schema())
			  AND a.attnum > 0 AND NOT a.attisdropped`,
		addColumn:  `ALTER TABLE %[1]s ADD COLUMN IF NOT EXISTS %[2]s %[3]s NULL`,
		normalType: func(s string) string { return s },
	},
	MySQL: {
		quote: "`",
		types: map[recordtable.Type]string{
			recordtable.String: "longtext", recordtable.Int: "bigint", recordtable.Number: "double",
			recordtable.Bool: "tinyint(1)", recordtable.Time: "datetime(6)", recordtable.Date: "date",
		},
		create: `CREATE TABLE %[1]s (
    id             VARCHAR(64)  NOT NULL,
    rules_version  VARCHAR(128) NOT NULL,
    natural_key    VARCHAR(512) NOT NULL,
    occurred_at    DATETIME(6)  NULL,
    %[2]s
    fields         LONGTEXT     NOT NULL,
    payload        LONGTEXT     NOT NULL,
    raw_id         VARCHAR(128) NOT NULL,
    raw_subject    VARCHAR(255) NOT NULL,
    raw_stream     VARCHAR(128) NOT NULL,
    raw_sequence   BIGINT       NOT NULL,
    clean_sequence BIGINT       NOT NULL,
    run_id         VARCHAR(128) NOT NULL DEFAULT '',
    correlation_id VARCHAR(128) NOT NULL DEFAULT '',
    batch_id       VARCHAR(128) NOT NULL,
    loaded_at      DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    CONSTRAINT %[1]s_fields_check CHECK (json_valid(fields)),
    CONSTRAINT %[1]s_payload_check CHECK (json_valid(payload)),
    CONSTRAINT %[1]s_sequence_check CHECK (raw_sequence >= 0 AND clean_sequence >= 0)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin`,
		index: `CREATE INDEX %[1]s_natural_key_idx ON %[1]s (natural_key)`,
		columns: `SELECT column_name, column_type FROM information_schema.columns
			WHERE table_schema = DATABASE() AND table_name = ?`,
		addColumn: `ALTER TABLE %[1]s ADD COLUMN %[2]s %[3]s NULL`,
		// MariaDB and MySQL before 8.0.19 spell integer display widths.
		normalType: func(s string) string {
			if s == "bigint(20)" {
				return "bigint"
			}
			return strings.ToLower(s)
		},
	},
	SQLite: {
		quote: `"`,
		types: map[recordtable.Type]string{
			recordtable.String: "TEXT", recordtable.Int: "INTEGER", recordtable.Number: "REAL",
			recordtable.Bool: "INTEGER", recordtable.Time: "TEXT", recordtable.Date: "TEXT",
		},
		create: `CREATE TABLE %[1]s (
    id             TEXT    NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    rules_version  TEXT    NOT NULL,
    natural_key    TEXT    NOT NULL,
    occurred_at    TEXT    CHECK (occurred_at IS NULL OR (length(occurred_at) = 30 AND substr(occurred_at, 30) = 'Z')),
    %[2]s
    fields         TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(fields)),
    payload        TEXT    NOT NULL CHECK (json_valid(payload)),
    raw_id         TEXT    NOT NULL,
    raw_subject    TEXT    NOT NULL,
    raw_stream     TEXT    NOT NULL,
    raw_sequence   INTEGER NOT NULL CHECK (raw_sequence >= 0),
    clean_sequence INTEGER NOT NULL CHECK (clean_sequence >= 0),
    run_id         TEXT    NOT NULL DEFAULT '',
    correlation_id TEXT    NOT NULL DEFAULT '',
    batch_id       TEXT    NOT NULL,
    loaded_at      TEXT    NOT NULL DEFAULT (strftime('%%Y-%%m-%%dT%%H:%%M:%%f000000Z', 'now'))
) STRICT`,
		index:      `CREATE INDEX %[1]s_natural_key_idx ON %[1]s (natural_key)`,
		columns:    `SELECT name, type FROM pragma_table_info(?)`,
		addColumn:  `ALTER TABLE %[1]s ADD COLUMN %[2]s %[3]s NULL`,
		normalType: strings.ToUpper,
	},
}
