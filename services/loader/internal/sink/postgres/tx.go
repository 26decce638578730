package postgres

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// txn is a batch's transaction on one connection of the pool. It does what
// pgx.BeginFunc does with two round trips fewer: BEGIN travels with the
// transaction's first COPY (one simple query, "BEGIN; COPY ..."), and
// COMMIT with its last statement (one batch), or with its last COPY when
// nothing is left to decide after it (copyRowsAndCommit: a batch of
// records then takes one round trip a table). On a loaded machine each
// round trip costs a tenth of a millisecond or more.
//
// A txn is used by one goroutine. Methods that find the transaction not
// begun yet (a statement other than a COPY comes first) send BEGIN on
// their own.
type txn struct {
	conn      *pgx.Conn
	begun     bool
	committed bool // by copyRowsAndCommit
}

// inTx runs body in a transaction on a connection of pool and commits it
// together with the statement finish (the batch's status row) and the
// arguments args returns once body has run, unless body committed already
// (copyRowsAndCommit); on any error it rolls back. A
// connection whose rollback failed, or that was left in a transaction, is
// closed by the pool on release, never reused.
func inTx(ctx context.Context, pool *pgxpool.Pool, body func(*txn) error, finish string, args func() []any) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire a connection: %w", err)
	}
	defer conn.Release()
	t := &txn{conn: conn.Conn()}
	if err := body(t); err != nil {
		t.rollback(ctx)
		return err
	}
	if t.committed {
		return nil
	}
	if err := t.commit(ctx, finish, args()...); err != nil {
		t.rollback(ctx)
		return err
	}
	return nil
}

// begin sends BEGIN unless the transaction has begun.
func (t *txn) begin(ctx context.Context) error {
	if t.begun {
		return nil
	}
	if _, err := t.conn.Exec(ctx, "begin"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	t.begun = true
	return nil
}

// copyIn runs statement (see copyStatement) with the stream src and
// returns how many rows the server stored; the transaction's first COPY
// carries its BEGIN.
func (t *txn) copyIn(ctx context.Context, statement string, src io.Reader) (int64, error) {
	if !t.begun {
		statement = "begin; " + statement
		t.begun = true
	}
	tag, err := t.conn.PgConn().CopyFrom(ctx, src, statement)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// copyRows runs statement with rows. A row that refused to encode ends the
// COPY and its error is returned (the server only says that the client
// ended the COPY).
func (t *txn) copyRows(ctx context.Context, statement string, rows rows) (int64, error) {
	src, wait := rows.stream()
	n, err := t.copyIn(ctx, statement, src)
	if werr := wait(); werr != nil {
		return 0, werr
	}
	return n, err
}

// copyRowsAndCommit is copyRows followed, in the same simple query, by
// finish (which must take no parameters) and COMMIT: a batch whose last
// statement is a COPY takes one round trip. The server skips what follows a
// COPY that fails, and the transaction is rolled back as usual.
func (t *txn) copyRowsAndCommit(ctx context.Context, statement string, rows rows, finish string) (int64, error) {
	if _, err := t.copyRows(ctx, statement+"; "+finish+"; commit", rows); err != nil {
		return 0, err
	}
	t.begun, t.committed = false, true
	return int64(rows.Len()), nil
}

func (t *txn) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := t.begin(ctx); err != nil {
		return pgconn.CommandTag{}, err
	}
	return t.conn.Exec(ctx, sql, args...)
}

func (t *txn) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := t.begin(ctx); err != nil {
		return nil, err
	}
	return t.conn.Query(ctx, sql, args...)
}

// SendBatch sends q in the transaction; the caller must have begun it
// (a statement before it did).
func (t *txn) SendBatch(ctx context.Context, q *pgx.Batch) pgx.BatchResults {
	return t.conn.SendBatch(ctx, q)
}

// commit runs finish with args and COMMIT in one round trip.
func (t *txn) commit(ctx context.Context, finish string, args ...any) error {
	if err := t.begin(ctx); err != nil {
		return err
	}
	var q pgx.Batch
	q.Queue(finish, args...)
	q.Queue("commit")
	br := t.conn.SendBatch(ctx, &q)
	_, err := br.Exec()
	var tag pgconn.CommandTag
	if err == nil {
		tag, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if tag.String() != "COMMIT" {
		// COMMIT of a transaction that failed answers ROLLBACK.
		return fmt.Errorf("commit: %w", pgx.ErrTxCommitRollback)
	}
	t.begun = false
	return nil
}

// rollbackTimeout bounds the rollback of a failed transaction, which runs
// even when the caller's context has ended.
const rollbackTimeout = 5 * time.Second

// rollback ends a failed transaction; if it cannot, the connection is
// closed so that the pool drops it.
func (t *txn) rollback(ctx context.Context) {
	if !t.begun && t.conn.PgConn().TxStatus() == 'I' {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	if _, err := t.conn.Exec(ctx, "rollback"); err != nil {
		_ = t.conn.Close(ctx)
	}
	t.begun = false
}
