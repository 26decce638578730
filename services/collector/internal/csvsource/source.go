package csvsource

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/segmentio/encoding/json"

	"github.com/punchflow/punchflow/platform/metrics"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/publish"
)

// Config configures one CSV folder source.
type Config struct {
	// Name identifies the source in subjects, checkpoints and heartbeats.
	Name     string
	Dir      string
	DoneDir  string
	Mapping  Mapping
	Defaults Defaults
	// Settle skips files modified more recently than this, so a file still
	// being copied in is not read half-written.
	Settle time.Duration
	// ChunkLines is how many lines are published before the source waits for
	// their acknowledgements and writes a checkpoint.
	ChunkLines int
	// PublishRetry bounds how long a chunk is re-published before the file
	// is given up for this run (it is retried on the next).
	PublishRetry time.Duration
}

// Publisher is the slice of jetstream.JetStream the source publishes with.
type Publisher interface {
	PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error)
}

// DeadLetterer publishes a dead letter and waits for its acknowledgement.
type DeadLetterer interface {
	DeadLetter(ctx context.Context, dl proto.DeadLetter, body []byte) error
}

// Checkpoints is the slice of jetstream.KeyValue the source keeps progress in.
type Checkpoints interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
	Put(ctx context.Context, key string, value []byte) (uint64, error)
}

// Checkpoint is the progress of one file, keyed by its content.
type Checkpoint struct {
	File      string    `json:"file"`
	SHA256    string    `json:"sha256"`
	LinesDone int       `json:"lines_done"`
	Published int       `json:"published"`
	Rejected  int       `json:"rejected"`
	Done      bool      `json:"done"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Result sums up one run over the folder.
type Result struct {
	Files     int
	Skipped   int // files already done according to their checkpoint
	Published int
	Rejected  int
}

// Source reads one folder. It is not safe for concurrent use: run one
// RunOnce at a time.
type Source struct {
	cfg     Config
	pub     Publisher
	dlq     DeadLetterer
	kv      Checkpoints
	log     *slog.Logger
	metrics *metrics.Pipeline
}

// New returns a source; it checks the folders exist.
func New(cfg Config, pub Publisher, dlq DeadLetterer, kv Checkpoints, m *metrics.Pipeline, log *slog.Logger) (*Source, error) {
	if cfg.Name == "" || cfg.Dir == "" {
		return nil, errors.New("csv source needs a name and a folder")
	}
	if cfg.DoneDir == "" {
		cfg.DoneDir = filepath.Join(cfg.Dir, "done")
	}
	if cfg.ChunkLines <= 0 {
		cfg.ChunkLines = 1000
	}
	if cfg.PublishRetry <= 0 {
		cfg.PublishRetry = 5 * time.Minute
	}
	if st, err := os.Stat(cfg.Dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("csv folder %s is not a readable folder: %v", cfg.Dir, err)
	}
	if err := os.MkdirAll(cfg.DoneDir, 0o755); err != nil {
		return nil, fmt.Errorf("csv done folder: %w", err)
	}
	return &Source{cfg: cfg, pub: pub, dlq: dlq, kv: kv, log: log.With("source", cfg.Name), metrics: m}, nil
}

// Name is the source's name.
func (s *Source) Name() string { return s.cfg.Name }

// Dir is the folder the source reads.
func (s *Source) Dir() string { return s.cfg.Dir }

// RunOnce processes every settled *.csv file in the folder, oldest name
// first, under one run id. A file that fails stays in the folder, keeps its
// checkpoint, and is resumed on the next run; the error is returned after
// the other files were tried.
func (s *Source) RunOnce(ctx context.Context, runID string) (Result, error) {
	var res Result
	entries, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return res, fmt.Errorf("read csv folder %s: %w", s.cfg.Dir, err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.EqualFold(filepath.Ext(e.Name()), ".csv") {
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) >= s.cfg.Settle {
				names = append(names, e.Name())
			}
		}
	}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		if ctx.Err() != nil {
			break
		}
		fr, err := s.processFile(ctx, filepath.Join(s.cfg.Dir, name), runID)
		res.Published += fr.Published
		res.Rejected += fr.Rejected
		if fr.skipped {
			res.Skipped++
		} else {
			res.Files++
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return res, errors.Join(errs...)
}

type fileResult struct {
	Published, Rejected int
	skipped             bool
}

func (s *Source) processFile(ctx context.Context, path, runID string) (fileResult, error) {
	var fr fileResult
	sum, err := fileSHA256(path)
	if err != nil {
		return fr, err
	}
	key := "csv." + proto.Token(s.cfg.Name) + "." + sum[:32]
	cp, err := s.loadCheckpoint(ctx, key)
	if err != nil {
		return fr, err
	}
	log := s.log.With("file", filepath.Base(path), "run_id", runID)
	if cp.Done {
		log.Info("file already processed, moving it aside", "sha256", sum)
		fr.skipped = true
		return fr, s.moveAside(path, sum)
	}
	if cp.LinesDone > 0 {
		log.Info("resuming file", "from_line", cp.LinesDone+1)
	}
	cp.File, cp.SHA256 = filepath.Base(path), sum

	f, err := os.Open(path)
	if err != nil {
		return fr, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)

	trace := proto.NewTraceparent()
	var layout *Layout
	var chunk []*nats.Msg
	lineNo := 0
	flush := func() error {
		if err := s.publishChunk(ctx, chunk); err != nil {
			return fmt.Errorf("%s: publish lines up to %d: %w", path, lineNo, err)
		}
		cp.Published += len(chunk)
		fr.Published += len(chunk)
		chunk = chunk[:0]
		cp.LinesDone = lineNo
		return s.saveCheckpoint(ctx, key, cp)
	}
	for sc.Scan() {
		lineNo++
		line := strings.TrimRight(sc.Text(), "\r")
		if lineNo == 1 {
			header, err := SplitLine(line)
			if err == nil {
				layout, err = NewLayout(header, s.cfg.Mapping, s.cfg.Defaults)
			}
			if err != nil {
				// Without a usable header no line can be read: the file is
				// left in place, and the operator is told what to fix.
				return fr, fmt.Errorf("%s line 1: %w", path, err)
			}
			continue
		}
		if lineNo <= cp.LinesDone || strings.TrimSpace(line) == "" {
			continue
		}
		s.metrics.Received.WithLabelValues("csv_line").Inc()
		msg, err := s.lineToMsg(layout, line, runID, trace)
		if err != nil {
			dl := proto.DeadLetter{Stage: proto.StageCollect, ReasonCode: proto.ReasonBadLine, Reason: err.Error(),
				OriginalSubject: proto.RawPunchSubject(s.cfg.Defaults.Site, s.cfg.Name), SourceFile: filepath.Base(path),
				SourceLine: lineNo, CorrelationID: runID}
			if err := s.dlq.DeadLetter(ctx, dl, []byte(line)); err != nil {
				return fr, fmt.Errorf("%s line %d: %w", path, lineNo, err)
			}
			cp.Rejected++
			fr.Rejected++
			continue
		}
		chunk = append(chunk, msg)
		if len(chunk) >= s.cfg.ChunkLines {
			if err := flush(); err != nil {
				return fr, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fr, fmt.Errorf("read %s after line %d: %w", path, lineNo, err)
	}
	if err := flush(); err != nil {
		return fr, err
	}
	cp.Done = true
	if err := s.saveCheckpoint(ctx, key, cp); err != nil {
		return fr, err
	}
	log.Info("file processed", "lines", lineNo, "published", cp.Published, "rejected", cp.Rejected)
	return fr, s.moveAside(path, sum)
}

func (s *Source) lineToMsg(layout *Layout, line, runID, trace string) (*nats.Msg, error) {
	rec, err := SplitLine(line)
	if err != nil {
		return nil, err
	}
	p, err := layout.Punch(rec, s.cfg.Defaults)
	if err != nil {
		return nil, err
	}
	p.Source = "csv:" + s.cfg.Name
	p.SourceKind = "csv"
	p.RunID = runID
	p.CollectedAt = time.Now().UTC()
	p = proto.NewRawPunch(p)
	return publish.PunchMsg(&p, trace)
}

// publishChunk publishes msgs and waits until JetStream acknowledged every
// one, re-publishing failures with backoff within the retry budget.
// Re-publishing is safe: each message carries its id, and JetStream drops
// duplicates.
func (s *Source) publishChunk(ctx context.Context, msgs []*nats.Msg) error {
	b := publish.NewBatch(s.pub, publish.Options{Budget: s.cfg.PublishRetry, Kind: proto.KindRawPunch, Metrics: s.metrics, Log: s.log})
	for _, m := range msgs {
		if err := b.Add(ctx, m); err != nil {
			return err
		}
	}
	return b.Wait(ctx)
}

func (s *Source) loadCheckpoint(ctx context.Context, key string) (Checkpoint, error) {
	var cp Checkpoint
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return cp, nil
	}
	if err != nil {
		return cp, fmt.Errorf("read checkpoint %s: %w", key, err)
	}
	if err := json.Unmarshal(e.Value(), &cp); err != nil {
		return cp, fmt.Errorf("checkpoint %s is not valid JSON: %w", key, err)
	}
	return cp, nil
}

func (s *Source) saveCheckpoint(ctx context.Context, key string, cp Checkpoint) error {
	cp.UpdatedAt = time.Now().UTC()
	b, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, key, b); err != nil {
		return fmt.Errorf("write checkpoint %s: %w", key, err)
	}
	return nil
}

// moveAside moves a finished file into the done folder; a name already
// taken there gets the content hash appended.
func (s *Source) moveAside(path, sum string) error {
	dst := filepath.Join(s.cfg.DoneDir, filepath.Base(path))
	if _, err := os.Stat(dst); err == nil {
		dst += "." + sum[:12]
	}
	if err := os.Rename(path, dst); err != nil {
		return fmt.Errorf("move %s aside: %w", path, err)
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
