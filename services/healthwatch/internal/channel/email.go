package channel

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"html/template"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"

	"github.com/punchflow/punchflow/services/healthwatch/internal/notify"
	"github.com/punchflow/punchflow/services/healthwatch/internal/policy"
)

// Email sends a multipart/alternative mail (plain text and HTML) through an
// SMTP server with net/smtp: STARTTLS (required unless tls is "none"),
// implicit TLS ("tls", port 465), and PLAIN authentication when a username
// is set.
type Email struct {
	cfg policy.Channel
	now func() time.Time
}

// Accepts every message type.
func (e *Email) Accepts(t string) bool { return acceptsAll(t) }

// Send delivers m once. An SMTP 5xx answer is permanent; 4xx and network
// failures are worth retrying.
func (e *Email) Send(ctx context.Context, m notify.Message) error {
	msg, err := EmailMessage(m, e.cfg.From, e.cfg.To, e.now())
	if err != nil {
		return notify.Permanent(fmt.Errorf("email: %w", err))
	}
	if err := e.send(ctx, msg); err != nil {
		var tp *textproto.Error
		if errors.As(err, &tp) && tp.Code >= 500 {
			return notify.Permanent(fmt.Errorf("email via %s: %w", e.cfg.SMTPAddr, err))
		}
		return fmt.Errorf("email via %s: %w", e.cfg.SMTPAddr, err)
	}
	return nil
}

func (e *Email) send(ctx context.Context, msg []byte) error {
	host, _, err := net.SplitHostPort(e.cfg.SMTPAddr)
	if err != nil {
		return notify.Permanent(err)
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	d := net.Dialer{}
	var conn net.Conn
	if e.cfg.TLS == "tls" {
		conn, err = (&tls.Dialer{NetDialer: &d, Config: &tls.Config{ServerName: host}}).DialContext(ctx, "tcp", e.cfg.SMTPAddr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", e.cfg.SMTPAddr)
	}
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("greeting: %w", err)
	}
	defer c.Close()
	if err := c.Hello("healthwatch.punchflow"); err != nil {
		return fmt.Errorf("EHLO: %w", err)
	}
	if e.cfg.TLS == "starttls" {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return notify.Permanent(fmt.Errorf("the server does not offer STARTTLS (set tls: none to send in clear, or tls: tls for port 465)"))
		}
		if err := c.StartTLS(&tls.Config{ServerName: host}); err != nil {
			return fmt.Errorf("STARTTLS: %w", err)
		}
	}
	if e.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", e.cfg.Username, e.cfg.Password, host)); err != nil {
			return fmt.Errorf("AUTH: %w", err)
		}
	}
	from, _ := mail.ParseAddress(e.cfg.From)
	if err := c.Mail(from.Address); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	for _, to := range e.cfg.To {
		a, _ := mail.ParseAddress(to)
		if err := c.Rcpt(a.Address); err != nil {
			return fmt.Errorf("RCPT TO %s: %w", a.Address, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("end of DATA: %w", err)
	}
	return c.Quit()
}

// EmailMessage renders m as an RFC 5322 message: multipart/alternative
// with a quoted-printable text/plain part and a text/html part. Its
// Message-ID derives from m.ID, so a retried mail can be recognised.
func EmailMessage(m notify.Message, from string, to []string, now time.Time) ([]byte, error) {
	var htmlBody bytes.Buffer
	if err := emailHTML.Execute(&htmlBody, emailView{Message: m, Color: severityColor(m.Severity)}); err != nil {
		return nil, fmt.Errorf("render html: %w", err)
	}
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	hdr("From", from)
	hdr("To", strings.Join(to, ", "))
	hdr("Subject", mime.QEncoding.Encode("utf-8", "[healthwatch] "+m.Title))
	hdr("Date", now.Format(time.RFC1123Z))
	hdr("Message-ID", "<"+m.ID+"@healthwatch.punchflow>")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", `multipart/alternative; boundary="`+mw.Boundary()+`"`)
	hdr("X-Punchflow-Severity", m.Severity)
	b.WriteString("\r\n")
	for _, part := range []struct{ typ, body string }{
		{"text/plain; charset=utf-8", notify.Text(m)},
		{"text/html; charset=utf-8", htmlBody.String()},
	} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {part.typ}, "Content-Transfer-Encoding": {"quoted-printable"}})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(pw)
		if _, err := qp.Write([]byte(strings.ReplaceAll(part.body, "\n", "\r\n"))); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

type emailView struct {
	notify.Message
	Color string
}

func severityColor(s string) string {
	switch s {
	case notify.SeverityCritical:
		return "#c62828"
	case notify.SeverityWarning:
		return "#ef6c00"
	case notify.SeverityResolved:
		return "#2e7d32"
	}
	return "#1565c0"
}

// emailHTML uses inline styles and tables: what mail clients render.
var emailHTML = template.Must(template.New("email").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body style="font-family:Segoe UI,Helvetica,Arial,sans-serif;color:#222;margin:0;padding:16px">
<h2 style="margin:0 0 8px 0;border-left:6px solid {{.Color}};padding-left:10px">{{.Title}}</h2>
{{if .Summary}}<p>{{.Summary}}</p>{{end}}
{{if .Facts}}<table style="border-collapse:collapse;margin:8px 0">{{range .Facts}}<tr><td style="padding:2px 12px 2px 0;color:#555">{{.Name}}</td><td style="padding:2px 0;font-weight:bold">{{.Value}}</td></tr>{{end}}</table>{{end}}
{{range .Sections}}<h3 style="margin:16px 0 4px 0">{{.Heading}}</h3>
<table style="border-collapse:collapse;width:100%">{{range .Lines}}<tr><td style="padding:4px 8px;border-bottom:1px solid #eee;white-space:nowrap;vertical-align:top"><b>{{.Subject}}</b></td><td style="padding:4px 8px;border-bottom:1px solid #eee">{{.Text}}</td></tr>{{end}}</table>
{{end}}
{{if .Link}}<p><a href="{{.Link}}">Open the status page</a></p>{{end}}
<p style="color:#888;font-size:12px">punchflow healthwatch · {{.At.UTC.Format "2006-01-02 15:04 UTC"}}</p>
</body></html>
`))
