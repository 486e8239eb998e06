package userface

import (
	"strings"
	"testing"

	"github.com/bulwark-sec/bulwark/pkg/policy"
)

func TestHintNamesTheLikelyCauseAndFlag(t *testing.T) {
	s, err := policy.Spec("default")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		o      Options
		code   int
		oom    uint64
		stderr string
		want   []string // empty: no hint at all
	}{
		{"success says nothing", Options{}, 0, 1, "x: Read-only file system\n", nil},
		{"SIGSYS", Options{Profile: "strict"}, 159, 0, "", []string{"SIGSYS", "--profile strict"}},
		{"SIGSYS under a seccomp file", Options{Seccomp: "/p.json"}, 159, 0, "", []string{"/p.json"}},
		{"OOM", Options{}, 137, 1, "", []string{"OOM-killed", "512m", "--memory 1024m"}},
		{"EROFS", Options{}, 1, 0, "touch: /var/log/x: Read-only file system\n", []string{"--writable", "--tmpfs /var/log"}},
		{"chown", Options{}, 1, 0, "nginx: chown(\"/var/lib/nginx\") failed (1: Operation not permitted)\n", []string{"--cap-add CHOWN"}},
		{"other EPERM", Options{}, 1, 0, "x: Operation not permitted\n", []string{"--cap-add", "bulwark explain"}},
		{"noexec", Options{}, 126, 0, "sh: /tmp/a.out: Permission denied\n", []string{"noexec", "--tmpfs /tmp:exec"}},
		{"EACCES elsewhere", Options{}, 1, 0, "open /etc/shadow: Permission denied\n", []string{"--user", "bulwark explain"}},
		{"the last lines only", Options{}, 1, 0, "a: Permission denied\n" + strings.Repeat("noise\n", 20), nil},
		{"nothing recognised", Options{}, 3, 0, "error: bad config\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Hint(s, &tt.o, tt.code, tt.oom, []byte(tt.stderr))
			if len(tt.want) == 0 {
				if h != "" {
					t.Errorf("hint %q, want none", h)
				}
				return
			}
			if strings.Contains(h, "\n") {
				t.Errorf("hint spans lines: %q", h)
			}
			for _, w := range tt.want {
				if !strings.Contains(h, w) {
					t.Errorf("hint %q lacks %q", h, w)
				}
			}
		})
	}
}
