// Package dbtest gives each test a fresh database on the machine's real
// PostgreSQL and MariaDB servers, and drops it afterwards. A server that is
// not reachable fails the test with instructions; it never skips.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// Environment variables that point the tests at other servers.
const (
	EnvPostgres = "PUNCHFLOW_TEST_POSTGRES_URL"
	EnvMySQL    = "PUNCHFLOW_TEST_MYSQL_DSN"
)

const (
	defaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	defaultMySQL    = "root@tcp(127.0.0.1:3306)/test"
)

func name(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// PostgresURL creates an empty database for tb and returns its URL.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	admin := os.Getenv(EnvPostgres)
	if admin == "" {
		admin = defaultPostgres
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Fatalf("PostgreSQL is not reachable at %s: %v\nStart it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n(or point %s at a server; .ci/run installs and starts one)", admin, err, EnvPostgres)
	}
	defer conn.Close(ctx)
	db := name("pf_test_")
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		tb.Fatalf("create test database %s: %v", db, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			tb.Logf("drop test database %s: %v", db, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
			tb.Logf("drop test database %s: %v", db, err)
		}
	})
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		tb.Fatal(err)
	}
	return strings.Replace(admin, "/"+cfg.Database, "/"+db, 1)
}

// MySQLDSN creates an empty database for tb on MariaDB/MySQL and returns its
// go-sql-driver DSN.
func MySQLDSN(tb testing.TB) string {
	tb.Helper()
	admin := os.Getenv(EnvMySQL)
	if admin == "" {
		admin = defaultMySQL
	}
	cfg, err := mysql.ParseDSN(admin)
	if err != nil {
		tb.Fatalf("%s: %v", EnvMySQL, err)
	}
	db, err := sql.Open("mysql", admin)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		tb.Fatalf("MariaDB/MySQL is not reachable at %s: %v\nStart it with: start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd\n(or point %s at a server; .ci/run installs and starts one)", cfg.Addr, err, EnvMySQL)
	}
	dbName := name("pf_test_")
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+dbName); err != nil {
		tb.Fatalf("create test database %s: %v", dbName, err)
	}
	tb.Cleanup(func() {
		d, err := sql.Open("mysql", admin)
		if err != nil {
			return
		}
		defer d.Close()
		if _, err := d.Exec("DROP DATABASE IF EXISTS " + dbName); err != nil {
			tb.Logf("drop test database %s: %v", dbName, err)
		}
	})
	cfg.DBName = dbName
	return fmt.Sprint(cfg.FormatDSN())
}
