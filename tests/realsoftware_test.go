package tests

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

// The tests in this file run real, dynamically linked programs from a
// Debian 12 rootfs through the person's face (`bulwark run [--profile P]
// ROOTFS -- CMD`), each under the profile docs/profiles.md recommends for
// it and with only the flags it shows. The static payloads the other tests
// use never go through ld.so, NSS or a packaged daemon's start-up, which
// is where a profile breaks real software.

// waitFor is a shell loop that waits up to 10 s for cmd to succeed, so a
// daemon started in the background is ready before the client runs.
func waitFor(cmd string) string {
	return `i=0; until ` + cmd + ` >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 100 ] && { echo "timed out waiting for: ` +
		strings.ReplaceAll(cmd, `"`, `'`) + `"; exit 1; }; sleep 0.1; done; `
}

// pyGet fetches a URL with Python's standard library and prints the status
// and body: the rootfs needs no curl.
const pyGet = `python3 -c 'import sys, urllib.request as u; r = u.urlopen(sys.argv[1], timeout=5); print(r.status, r.read().decode().strip())'`

func TestRealSoftwareRunsUnderItsProfile(t *testing.T) {
	rootfs := testrootfs.RequireDebian(t)
	e := newEnv(t)
	tests := []struct {
		name  string
		flags []string
		cmd   string
		want  []string
	}{
		{
			name: "python3 threads, multiprocessing, sqlite and an HTTP server on loopback under default",
			cmd: `python3 -c '
import http.server, multiprocessing, sqlite3, threading, urllib.request
def square(x): return x * x
with multiprocessing.Pool(2) as p: print("pool", p.map(square, range(5)))
db = sqlite3.connect("/tmp/t.db"); db.execute("create table t (v)"); db.execute("insert into t values (42)"); db.commit()
print("sqlite", db.execute("select v from t").fetchone()[0])
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
threading.Thread(target=srv.serve_forever, daemon=True).start()
print("http", urllib.request.urlopen("http://127.0.0.1:%d/etc/hostname" % srv.server_address[1], timeout=5).read().decode().strip())
'`,
			want: []string{"pool [0, 1, 4, 9, 16]", "sqlite 42", "http bulwark"},
		},
		{
			name:  "redis-server answers redis-cli under webapp",
			flags: []string{"--profile", "webapp"},
			cmd: `redis-server --port 6379 --save "" --dir /tmp --daemonize yes --logfile /tmp/redis.log; ` +
				waitFor("redis-cli ping") + `redis-cli set greeting hello && redis-cli get greeting; id -u; redis-cli shutdown nosave`,
			want: []string{"OK\nhello\n1000\n"},
		},
		{
			name: "nginx as packaged serves port 80 under webapp",
			flags: []string{"--profile", "webapp",
				"--tmpfs", "/var/lib/nginx", "--tmpfs", "/var/log/nginx", "--tmpfs", "/run"},
			cmd:  `nginx && ` + waitFor(pyGet+" http://127.0.0.1/") + pyGet + ` http://127.0.0.1/ | head -c 3; echo; nginx -s quit`,
			want: []string{"200\n"},
		},
		{
			name: "git init, add and commit under default",
			cmd: `cd /tmp && git init -q repo && cd repo && echo hello > f && git add f && ` +
				`git -c user.name=Test -c user.email=test@example.com commit -qm first && git log --format=%s`,
			want: []string{"first\n"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.userRun(nil, tc.flags, rootfs, "sh", "-c", tc.cmd)
			for _, w := range tc.want {
				if r.code != 0 || !strings.Contains(r.stdout, w) {
					t.Errorf("want exit 0 and %q in stdout, got %v", w, r)
				}
			}
			e.assertUserRunGone(e.ids[len(e.ids)-1])
		})
	}
}

// TestGCCCompilesAndRunsUnderDev builds a C program with Debian's gcc and
// runs it, in the profile for a team's own code. The rootfs is a private
// copy: dev writes to it.
func TestGCCCompilesAndRunsUnderDev(t *testing.T) {
	rootfs := testrootfs.RequireDebianWritable(t)
	e := newEnv(t)
	src := `#include <stdio.h>
#include <pthread.h>
static void *work(void *arg) { *(long *)arg *= 2; return NULL; }
int main(void) {
	long v = 21; pthread_t th;
	pthread_create(&th, NULL, work, &v); pthread_join(th, NULL);
	printf("answer %ld\n", v);
	return 0;
}
`
	r := e.userRun([]byte(src), []string{"--profile", "dev"}, rootfs,
		"sh", "-c", "cd /root && cat > answer.c && gcc -O2 -pthread -o answer answer.c && ./answer")
	if r.code != 0 || r.stdout != "answer 42\n" {
		t.Errorf("want exit 0 and %q, got %v", "answer 42\n", r)
	}
}

// TestDebianRootfsViewIsReadOnly: the cached rootfs is shared by every test
// and later runs, so the view a test gets must refuse writes even from
// host root.
func TestDebianRootfsViewIsReadOnly(t *testing.T) {
	root := testrootfs.RequireDebian(t)
	if _, err := os.Stat(filepath.Join(root, "usr/bin/python3")); err != nil {
		t.Fatalf("the Debian rootfs lacks python3: %v", err)
	}
	err := os.WriteFile(filepath.Join(root, "written-by-a-test"), nil, 0o644)
	if !errors.Is(err, syscall.EROFS) {
		t.Errorf("write into the shared Debian rootfs: %v, want EROFS", err)
	}
}
