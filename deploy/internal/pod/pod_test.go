package pod

import "testing"

func TestRewrite(t *testing.T) {
	mounts := map[string]string{"/etc/punchflow/config": "/tmp/a", "/etc/punchflow/config/extra": "/tmp/b", "/var/lib/in": "/tmp/c"}
	tests := []struct{ in, want string }{
		{"--config=/etc/punchflow/config/config.yaml", "--config=/tmp/a/config.yaml"},
		{"/etc/punchflow/config/extra/x", "/tmp/b/x"},
		{"/etc/punchflow/configs/x", "/etc/punchflow/configs/x"},
		{"/x/etc/punchflow/config/y", "/x/etc/punchflow/config/y"},
		{"/var/lib/in", "/tmp/c"},
	}
	for _, tt := range tests {
		if got := rewrite(tt.in, mounts); got != tt.want {
			t.Errorf("rewrite(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	text := "csv-dir: /var/lib/in\ndone: /var/lib/in/done\nother: /var/lib/inbox\nrules: \"/etc/punchflow/config/r.yaml\"\n"
	want := "csv-dir: /tmp/c\ndone: /tmp/c/done\nother: /var/lib/inbox\nrules: \"/tmp/a/r.yaml\"\n"
	if got := rewriteText(text, mounts); got != want {
		t.Errorf("rewriteText:\n%s\nwant:\n%s", got, want)
	}
}
