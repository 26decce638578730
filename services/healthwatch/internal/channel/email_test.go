package channel

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/punchflow/punchflow/services/healthwatch/internal/notify"
	"github.com/punchflow/punchflow/services/healthwatch/internal/policy"
)

// smtpServer is a small SMTP receiver (RFC 5321: EHLO, MAIL, RCPT, DATA with
// dot-unstuffing, RSET, NOOP, QUIT). reject, if set, answers RCPT with the
// given reply.
type smtpServer struct {
	ln      net.Listener
	mu      sync.Mutex
	mails   []receivedMail
	reject  string
	offered []string
	wg      sync.WaitGroup
}

type receivedMail struct {
	From string
	To   []string
	Data []byte
}

func startSMTP(t *testing.T, reject string, extensions ...string) *smtpServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{ln: ln, reject: reject, offered: extensions}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() { defer s.wg.Done(); s.serve(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *smtpServer) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	reply := func(format string, args ...any) { fmt.Fprintf(c, format+"\r\n", args...) }
	reply("220 test.local ESMTP ready")
	var cur receivedMail
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.TrimRight(line, "\r\n")
		verb := strings.ToUpper(strings.SplitN(cmd, " ", 2)[0])
		switch verb {
		case "EHLO":
			lines := append([]string{"test.local"}, s.offered...)
			lines = append(lines, "8BITMIME")
			for i, l := range lines {
				sep := "-"
				if i == len(lines)-1 {
					sep = " "
				}
				reply("250%s%s", sep, l)
			}
		case "HELO", "NOOP":
			reply("250 ok")
		case "RSET":
			cur = receivedMail{}
			reply("250 ok")
		case "MAIL":
			cur = receivedMail{From: between(cmd, "<", ">")}
			reply("250 ok")
		case "RCPT":
			if s.reject != "" {
				reply("%s", s.reject)
				continue
			}
			cur.To = append(cur.To, between(cmd, "<", ">"))
			reply("250 ok")
		case "DATA":
			reply("354 end with <CRLF>.<CRLF>")
			var data strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				data.WriteString(strings.TrimPrefix(l, "."))
			}
			cur.Data = []byte(data.String())
			s.mu.Lock()
			s.mails = append(s.mails, cur)
			s.mu.Unlock()
			reply("250 queued")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 not implemented")
		}
	}
}

func (s *smtpServer) received() []receivedMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]receivedMail(nil), s.mails...)
}

func between(s, a, b string) string {
	_, rest, _ := strings.Cut(s, a)
	v, _, _ := strings.Cut(rest, b)
	return v
}

func emailChannel(addr, tls string) policy.Channel {
	return policy.Channel{Name: "mail", Type: policy.Email, SMTPAddr: addr, TLS: tls, Timeout: 5 * time.Second,
		From: "Healthwatch <healthwatch@example.com>", To: []string{"support@example.com", "Lead <lead@example.com>"}}
}

func TestEmailIsReceivedAsHTMLAndText(t *testing.T) {
	srv := startSMTP(t, "")
	s := sender(t, emailChannel(srv.ln.Addr().String(), "none"))
	msg := reportMessage(12)
	msg.Title += " — Zürich" // a non-ASCII subject is encoded
	if err := s.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	mails := srv.received()
	if len(mails) != 1 {
		t.Fatalf("%d mails", len(mails))
	}
	got := mails[0]
	if got.From != "healthwatch@example.com" || strings.Join(got.To, ",") != "support@example.com,lead@example.com" {
		t.Errorf("envelope from %q to %v", got.From, got.To)
	}
	m, err := mail.ReadMessage(strings.NewReader(string(got.Data)))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil || subject != "[healthwatch] "+msg.Title {
		t.Errorf("subject %q (%v), want %q", subject, err, "[healthwatch] "+msg.Title)
	}
	if m.Header.Get("Message-ID") != "<report-test-1@healthwatch.punchflow>" || m.Header.Get("MIME-Version") != "1.0" {
		t.Errorf("headers %v", m.Header)
	}
	if _, err := mail.ParseDate(m.Header.Get("Date")); err != nil {
		t.Errorf("Date: %v", err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("content type %q: %v", mt, err)
	}
	parts := map[string]string{}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		// multipart.Reader decodes quoted-printable parts itself (and drops
		// the header); the raw message is checked for it below.
		body, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		parts[ct] = string(body)
	}
	text, html := parts["text/plain"], parts["text/html"]
	if !strings.Contains(text, "Needs attention (4)") || !strings.Contains(text, "D0000 (hq): disconnected since") || !strings.Contains(text, "Zürich") {
		t.Errorf("text part:\n%s", text)
	}
	if !strings.Contains(html, "<h3 style=\"margin:16px 0 4px 0\">Needs attention (4)</h3>") || !strings.Contains(html, `<a href="https://healthwatch.example.com">`) || !strings.Contains(html, "<b>D0000 (hq)</b>") {
		t.Errorf("html part:\n%s", html)
	}
	if n := strings.Count(string(got.Data), "Content-Transfer-Encoding: quoted-printable"); n != 2 {
		t.Errorf("%d quoted-printable parts, want 2", n)
	}
	if len(parts) != 2 {
		t.Errorf("parts: %v", parts)
	}
}

func TestEmailFailures(t *testing.T) {
	tests := []struct {
		name      string
		reject    string
		tls       string
		permanent bool
		want      string
	}{
		{"mailbox unavailable is permanent", "550 5.1.1 no such user", "none", true, "550"},
		{"greylisting is retried", "451 4.7.1 try again later", "none", false, "451"},
		{"STARTTLS required but not offered", "", "starttls", true, "does not offer STARTTLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startSMTP(t, tt.reject)
			s := sender(t, emailChannel(srv.ln.Addr().String(), tt.tls))
			err := s.Send(context.Background(), alertMessage(1))
			if err == nil || !strings.Contains(err.Error(), tt.want) || notify.IsPermanent(err) != tt.permanent {
				t.Fatalf("Send = %v (permanent %v), want %q permanent %v", err, notify.IsPermanent(err), tt.want, tt.permanent)
			}
			if len(srv.received()) != 0 {
				t.Fatal("a mail was accepted")
			}
		})
	}
	// Nobody listening: a network error, retried.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	err := sender(t, emailChannel(addr, "none")).Send(context.Background(), alertMessage(1))
	if err == nil || notify.IsPermanent(err) {
		t.Fatalf("Send to a closed port = %v, want a retryable error", err)
	}
}
