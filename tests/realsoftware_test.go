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
	// postgres keeps its data on a volume of a host user's (4242), mapped
	// to its own uid (101 in the image), as docs/profiles.md shows.
	pgdata := volumeDir(t, 4242, 4242, 0o700)
	tests := []struct {
		name  string
		flags []string
		cmd   string
		want  []string
		after func(t *testing.T) // checks on the host once the container is gone
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
			name: "python3's http.server on port 80 as container root under default",
			cmd: `python3 -m http.server 80 --bind 127.0.0.1 --directory /etc >/dev/null 2>&1 & ` +
				waitFor(pyGet+" http://127.0.0.1/hostname") + pyGet + ` http://127.0.0.1/hostname; id -u`,
			want: []string{"200 bulwark\n0\n"},
		},
		{
			// The image's own postgres user, by name: postgres will not
			// run as root, nor as a uid its passwd does not list.
			name: "postgres initdb, start and query on a volume under database as --user postgres",
			flags: []string{"--profile", "database", "--user", "postgres",
				"-v", pgdata + ":/var/lib/postgresql:idmap=101-4242-1", "--tmpfs", "/run"},
			cmd: `P=/usr/lib/postgresql/15/bin D=/var/lib/postgresql/data; id -un; ` +
				`$P/initdb -D $D >/tmp/initdb.log 2>&1 || { cat /tmp/initdb.log; exit 1; }; mkdir -p /run/postgresql && ` +
				`$P/pg_ctl -D $D -l /tmp/pg.log -w start >/dev/null || { cat /tmp/pg.log; exit 1; }; ` +
				`psql -h /run/postgresql -d postgres -Atc "create table t (v int); insert into t values (42); select v from t"; ` +
				`$P/pg_ctl -D $D -m fast -w stop >/dev/null`,
			want: []string{"postgres\n", "INSERT 0 1\n42\n"},
			after: func(t *testing.T) {
				if uid, _ := hostOwner(t, filepath.Join(pgdata, "data", "PG_VERSION")); uid != 4242 {
					t.Errorf("postgres's data on its volume is host uid %d's, want 4242's", uid)
				}
			},
		},
		{
			// database's own uid, 1000, is in no Debian passwd: Bulwark
			// names it in a private copy, as Podman does, so postgres
			// can look itself up.
			name:  "postgres initdb, start and query under database as its default uid 1000",
			flags: []string{"--profile", "database", "--tmpfs", "/run"},
			cmd: `P=/usr/lib/postgresql/15/bin D=/tmp/data; id -un; echo "home=$HOME"; ` +
				`$P/initdb -D $D >/tmp/initdb.log 2>&1 || { cat /tmp/initdb.log; exit 1; }; mkdir -p /run/postgresql && ` +
				`$P/pg_ctl -D $D -l /tmp/pg.log -o "-k /run/postgresql" -w start >/dev/null || { cat /tmp/pg.log; exit 1; }; ` +
				`psql -h /run/postgresql -d postgres -Atc "select current_user"; ` +
				`$P/pg_ctl -D $D -m fast -w stop >/dev/null`,
			want: []string{"1000\nhome=/tmp\n", "\n1000\n"},
		},
		{
			// The packaged site, moved to 8080 in a copy under /tmp: the
			// packaged files themselves stay read-only.
			name: "nginx as packaged serves port 8080 under webapp",
			flags: []string{"--profile", "webapp",
				"--tmpfs", "/var/lib/nginx", "--tmpfs", "/var/log/nginx", "--tmpfs", "/run"},
			cmd: `mkdir /tmp/sites && sed 's/listen \(\[::\]:\)\{0,1\}80 /listen \18080 /' /etc/nginx/sites-enabled/default >/tmp/sites/default && ` +
				`sed 's#/etc/nginx/sites-enabled/\*#/tmp/sites/*#' /etc/nginx/nginx.conf >/tmp/nginx.conf && ` +
				`nginx -c /tmp/nginx.conf && ` + waitFor(pyGet+" http://127.0.0.1:8080/") + pyGet + ` http://127.0.0.1:8080/ | head -c 3; echo; nginx -c /tmp/nginx.conf -s quit`,
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
			if tc.after != nil {
				tc.after(t)
			}
		})
	}
}

// TestGCCCompilesAndRunsUnderDev builds a C program with Debian's gcc and
// runs it, in the profile for a team's own code: in /tmp, which is exec
// under dev only, and in the rootfs (a private copy: dev writes to it).
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
	for _, dir := range []string{"/tmp", "/root"} {
		r := e.userRun([]byte(src), []string{"--profile", "dev"}, rootfs,
			"sh", "-c", "cd "+dir+" && cat > answer.c && gcc -O2 -pthread -o answer answer.c && ./answer")
		if r.code != 0 || r.stdout != "answer 42\n" {
			t.Errorf("in %s: want exit 0 and %q, got %v", dir, "answer 42\n", r)
		}
	}
	// The default's /tmp stays noexec; an exec tmpfs is asked for by name.
	r := e.userRun(nil, nil, rootfs, "sh", "-c", "cp /bin/true /tmp/t && /tmp/t")
	if r.code == 0 || !strings.Contains(r.stderr, "Permission denied") {
		t.Errorf("running a program from the default's /tmp: %v, want Permission denied", r)
	}
	r = e.userRun(nil, []string{"--tmpfs", "/build:exec,size=8m"}, rootfs, "sh", "-c", "cp /bin/true /build/t && /build/t && grep ' /build ' /proc/self/mounts")
	if r.code != 0 || strings.Contains(r.stdout, "noexec") || !strings.Contains(r.stdout, "size=8192k") || !strings.Contains(r.stdout, "nosuid,nodev") {
		t.Errorf("--tmpfs /build:exec,size=8m: %v, want a program run from it and an 8 MiB nosuid,nodev mount without noexec", r)
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

// TestStrictProfileRunsDebianPrograms: strict is for compute jobs, and
// compute jobs are ordinary dynamically linked programs: glibc's loader,
// stdio, threads, Python's start-up. They must run, and what strict
// forbids (sockets, new processes, files outside /tmp) must still fail.
func TestStrictProfileRunsDebianPrograms(t *testing.T) {
	rootfs := testrootfs.RequireDebianWritable(t)
	e := newEnv(t)
	// Compiled in the rootfs by its own gcc (under dev: strict's rootfs is
	// read-only), so it is linked against the rootfs's glibc.
	src := `#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static double part[4];
static void *work(void *arg) {
	long k = (long)arg;
	for (long i = k; i < 400000; i += 4) part[k] += sqrt((double)i);
	return NULL;
}
static int cmp(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }
int main(void) {
	pthread_t th[4];
	for (long k = 0; k < 4; k++) pthread_create(&th[k], NULL, work, (void *)k);
	double s = 0;
	for (int k = 0; k < 4; k++) { pthread_join(th[k], NULL); s += part[k]; }
	int n = 100000, *v = malloc(n * sizeof *v);
	for (int i = 0; i < n; i++) v[i] = (i * 7919) % 1000;
	qsort(v, n, sizeof *v, cmp);
	char *big = malloc(32 << 20);
	memset(big, 1, 32 << 20);
	FILE *f = fopen("/tmp/result", "w");
	if (!f || fprintf(f, "%.0f\n", s) < 0 || fclose(f)) { perror("/tmp/result"); return 1; }
	printf("sum %.0f min %d max %d big %d\n", s, v[0], v[n - 1], big[4096]);
	return 0;
}
`
	if r := e.userRun([]byte(src), []string{"--profile", "dev"}, rootfs,
		"sh", "-c", "cat > /root/compute.c && gcc -O2 -pthread -o /usr/local/bin/compute /root/compute.c -lm"); r.code != 0 {
		t.Fatalf("compiling under dev: %v", r)
	}
	const py = `
import hashlib, json, math, tempfile, threading
part = [0.0] * 4
def work(k): part[k] = sum(math.sqrt(i) for i in range(k, 200000, 4))
ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
with tempfile.NamedTemporaryFile("w", dir="/tmp") as f: f.write(json.dumps(part))
print("sum", round(sum(part)), hashlib.sha256(b"bulwark").hexdigest()[:8])
`
	const sigsys = 128 + 31
	tests := []struct {
		name string
		cmd  []string
		code int
		want string
	}{
		{"Debian's /bin/true", []string{"/bin/true"}, 0, ""},
		{"a threaded C program from the rootfs's gcc", []string{"compute"}, 0, "sum 168654492 min 0 max 999 big 1\n"},
		{"python3 computes with threads and a temp file", []string{"python3", "-c", py}, 0, "sum 59628256 a9fb31f9\n"},
		{"user lookups read /etc/passwd", []string{"id", "-un"}, 0, "root\n"},
		{"an inet socket kills", []string{"python3", "-c", "import socket; socket.socket(); print('OK')"}, sigsys, ""},
		{"fork is refused", []string{"python3", "-c", "import os\ntry: os.fork(); print('OK')\nexcept OSError as e: print(e.strerror)"}, 0, "Operation not permitted"},
		{"running another program kills", []string{"python3", "-c", "import subprocess; subprocess.run(['/bin/true']); print('OK')"}, sigsys, ""},
		{"writing outside /tmp fails", []string{"python3", "-c", "import os\nfor p in ['/etc/x', '/root/x', '/usr/local/bin/x']:\n  try: open(p, 'w'); print('OK', p)\n  except OSError as e: print(e.strerror)"}, 0, "Read-only file system\nRead-only file system\nRead-only file system\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.userRun(nil, []string{"--profile", "strict"}, rootfs, tc.cmd...)
			if r.code != tc.code || !strings.Contains(r.stdout, tc.want) || (tc.code != 0 && strings.Contains(r.stdout, "OK")) {
				t.Errorf("want exit %d and %q in stdout, got %v", tc.code, tc.want, r)
			}
			if strings.Contains(r.stdout, "OK") {
				t.Errorf("a forbidden operation succeeded: %v", r)
			}
			e.assertUserRunGone(e.ids[len(e.ids)-1])
		})
	}
}

// TestGitCommitsWithItsGlobalConfigUnderDev: git keeps its identity in
// $HOME/.gitconfig and refuses `config --global` without HOME ("$HOME not
// set"); the init gives root its home from the image's /etc/passwd.
func TestGitCommitsWithItsGlobalConfigUnderDev(t *testing.T) {
	rootfs := testrootfs.RequireDebianWritable(t)
	e := newEnv(t)
	r := e.userRun(nil, []string{"--profile", "dev"}, rootfs, "sh", "-c",
		`echo "HOME=$HOME" && git config --global user.name Test && git config --global user.email test@example.com && `+
			`cd /tmp && git init -q repo && cd repo && echo hello > f && git add f && git commit -qm first && git log --format='%an %s'`)
	if r.code != 0 || r.stdout != "HOME=/root\nTest first\n" {
		t.Errorf("want HOME=/root and a commit by Test, got %v", r)
	}
}
