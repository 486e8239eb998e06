package userface

import (
	"strings"
	"testing"

	"github.com/bulwark-sec/bulwark/pkg/policy"
	"github.com/bulwark-sec/bulwark/pkg/seccomp/killlog"
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
		kill   *killlog.Kill
		want   []string // empty: no hint at all
	}{
		{"success says nothing", Options{}, 0, 1, "x: Read-only file system\n", nil, nil},
		{"SIGSYS", Options{Profile: "strict"}, 159, 0, "", nil, []string{"SIGSYS", "--profile strict"}},
		{"SIGSYS with the kernel's record", Options{Profile: "strict"}, 159, 0, "", &killlog.Kill{PID: 7, Exe: "/usr/bin/python3", Syscall: 41, Name: "socket"},
			[]string{"does not allow socket", "pid 7, /usr/bin/python3", "explain --profile strict socket"}},
		{"SIGSYS under a seccomp file", Options{Seccomp: "/p.json"}, 159, 0, "", nil, []string{"/p.json"}},
		{"OOM", Options{}, 137, 1, "", nil, []string{"OOM-killed", "512m", "--memory 1024m"}},
		{"EROFS", Options{}, 1, 0, "touch: /var/log/x: Read-only file system\n", nil, []string{"--writable", "--tmpfs /var/log"}},
		{"chown", Options{}, 1, 0, "nginx: chown(\"/var/lib/nginx\") failed (1: Operation not permitted)\n", nil, []string{"--cap-add CHOWN"}},
		{"other EPERM", Options{}, 1, 0, "x: Operation not permitted\n", nil, []string{"--cap-add", "bulwark explain"}},
		{"noexec", Options{}, 126, 0, "sh: /tmp/a.out: Permission denied\n", nil, []string{"noexec", "--tmpfs /tmp:exec"}},
		{"EACCES elsewhere", Options{}, 1, 0, "open /etc/shadow: Permission denied\n", nil, []string{"--user", "bulwark explain"}},
		{"the last lines only", Options{}, 1, 0, "a: Permission denied\n" + strings.Repeat("noise\n", 20), nil, nil},
		{"nothing recognised", Options{}, 3, 0, "error: bad config\n", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Hint(s, &tt.o, Outcome{Code: tt.code, OOMKills: tt.oom, Tail: []byte(tt.stderr), Seccomp: tt.kill})
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
