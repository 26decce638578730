// Package logging chooses the slog handler once per process: coloured text
// (tint) on a terminal, JSON elsewhere.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/lmittmann/tint"
	"github.com/mattn/go-isatty"
)

// Stable attribute keys shared by every service.
const (
	KeyDevice      = "device"
	KeySubject     = "subject"
	KeyStream      = "stream"
	KeySeq         = "seq"
	KeyBatch       = "batch"
	KeySource      = "source"
	KeyCorrelation = "correlation_id"
	KeyMsgID       = "msg_id"
	KeyError       = "err"
)

// Formats accepted by New.
const (
	FormatAuto = "auto"
	FormatJSON = "json"
	FormatText = "text"
)

// New returns a logger writing to w. format "auto" picks text when w is a
// terminal and JSON otherwise; level is debug, info, warn or error.
func New(w io.Writer, format, level, service string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: use debug, info, warn or error", level)
	}
	switch strings.ToLower(format) {
	case FormatAuto, "":
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			format = FormatText
		} else {
			format = FormatJSON
		}
	case FormatJSON, FormatText:
	default:
		return nil, fmt.Errorf("log format %q: use auto, json or text", format)
	}
	var h slog.Handler
	if format == FormatText {
		h = tint.NewHandler(w, &tint.Options{Level: lvl, TimeFormat: time.TimeOnly})
	} else {
		h = slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl})
	}
	return slog.New(h).With("service", service), nil
}

// Err is the attribute for an error.
func Err(err error) slog.Attr { return slog.Any(KeyError, err) }
