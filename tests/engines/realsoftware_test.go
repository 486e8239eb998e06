package engines

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

// The tests in this file run real, dynamically linked Debian software the
// way a person runs it through an engine (`docker run --runtime bulwark
// postgres`), under the hardening floor with its user namespace: the
// image's own users, named volumes, published ports, a daemon as pid 1
// that docker stop ends. The static payloads of the other engine tests
// never go through ld.so, NSS, a daemon's privilege drop or its own /proc
// files, which is where the floor could break real programs.

const (
	pgBin     = "/usr/lib/postgresql/15/bin"
	pgData    = "/var/lib/postgresql/data"
	debianTag = "bwdebian:1"
)

var (
	debianTarOnce sync.Once
	debianTar     string
	debianTarErr  error
	debianSkip    string
)

// debianImageTarball is the Debian test rootfs (internal/testrootfs:
// python3, nginx, postgresql 15, redis, procps) as a tar archive for
// `docker import`, less what no test here runs (the compiler, LLVM for
// postgres's JIT, static and sanitizer libraries): 630 MB to about 300.
// It skips where the rootfs cannot be built, and unless
// BULWARK_ENGINES_REALSW=1 (scripts/test.sh engines-realsw): the tests that
// use it take about two minutes, too long for the default run.
func debianImageTarball(t *testing.T) string {
	t.Helper()
	if os.Getenv("BULWARK_ENGINES_REALSW") != "1" {
		t.Skip("real software through the engines runs with BULWARK_ENGINES_REALSW=1 (scripts/test.sh engines-realsw)")
	}
	debianTarOnce.Do(func() {
		dir, err := testrootfs.Debian()
		if errors.Is(err, testrootfs.ErrDebianUnavailable) {
			debianSkip = err.Error()
			return
		}
		if err != nil {
			debianTarErr = err
			return
		}
		debianTar = filepath.Join(workDir, "debian.tar")
		args := []string{"-C", dir, "--numeric-owner", "-cf", debianTar}
		for _, x := range []string{"./.complete", "./usr/lib/gcc", "./usr/libexec/gcc", "./usr/include",
			"./usr/lib/x86_64-linux-gnu/libLLVM*", "./usr/lib/x86_64-linux-gnu/libz3*",
			"./usr/lib/x86_64-linux-gnu/lib*san.so*", "./usr/lib/x86_64-linux-gnu/*.a",
			"./usr/lib/postgresql/15/lib/llvmjit*", "./usr/bin/x86_64-linux-gnu-*"} {
			args = append(args, "--exclude="+x)
		}
		if out, err := exec.Command("tar", append(args, ".")...).CombinedOutput(); err != nil {
			debianTarErr = fmt.Errorf("tar %s: %v: %s", dir, err, out)
		}
	})
	if debianSkip != "" {
		t.Skip(debianSkip)
	}
	if debianTarErr != nil {
		t.Fatalf("the Debian image: %v", debianTarErr)
	}
	return debianTar
}

// importDebian imports the Debian image into a docker or podman engine for
// this test and removes it when the test ends; it returns the engine with
// that image and the floor's runtime flags plus extra.
func importDebian(t *testing.T, e *cliEngine, extra ...string) *cliEngine {
	t.Helper()
	tarball := debianImageTarball(t)
	c := *e
	c.image = debianTag
	if e.name == "podman" {
		c.image = "localhost/" + debianTag
	}
	t.Cleanup(func() { c.do(t, "rmi", "-f", c.image) })
	start := time.Now()
	c.ok(t, "import", tarball, debianTag)
	t.Logf("%s import of the Debian image: %s", e.name, time.Since(start).Round(time.Millisecond))
	c.runFlags = append(append([]string{}, e.runFlags...), extra...)
	return &c
}

// daemon starts a detached container named after the test, removed (with
// SIGKILL, bounded by the engine's own timeout) when the test ends.
func (e *cliEngine) daemon(t *testing.T, name string, flags []string, args ...string) {
	t.Helper()
	t.Cleanup(func() {
		if e.name == "podman" {
			e.do(t, "rm", "-f", "-t", "0", name)
			return
		}
		e.do(t, "rm", "-f", name)
	})
	a := append([]string{"run", "-d", "--name", name}, e.runFlags...)
	a = append(append(a, flags...), e.image)
	e.ok(t, append(a, args...)...)
}

// volume creates a named volume, removed when the test ends (after the
// containers using it: cleanups run last first).
func (e *cliEngine) volume(t *testing.T, name string) {
	t.Helper()
	e.ok(t, "volume", "create", name)
	t.Cleanup(func() { e.do(t, "volume", "rm", "-f", name) })
}

// runOnce is `run --rm` with the engine's floor flags and extra flags.
func (e *cliEngine) runOnce(t *testing.T, flags []string, args ...string) string {
	t.Helper()
	r := e.run(t, flags, args...)
	if r.code != 0 {
		t.Fatalf("%s run %v %v: %v", e.name, flags, args, r)
	}
	return r.stdout
}

// until runs a command line in the container until it exits 0 and prints
// want, for up to d; it returns the last output.
func (e *cliEngine) until(t *testing.T, d time.Duration, name, script, want string) string {
	t.Helper()
	var last result
	ok := waitFor(d, func() bool {
		last = e.do(t, "exec", name, "sh", "-c", script)
		return last.code == 0 && strings.Contains(last.stdout, want)
	})
	if !ok {
		logs := e.do(t, "logs", name)
		t.Fatalf("%s: %q did not print %q within %s: %v\ncontainer log:\n%s%s", e.name, script, want, d, last, lastLines(logs.stdout, 20), lastLines(logs.stderr, 20))
	}
	return last.stdout
}

// noProcEROFS fails the test when the container's log shows a program
// refused a write below /proc (the floor makes procfs read-only where the
// rootfs is writable).
func (e *cliEngine) noProcEROFS(t *testing.T, name string) {
	t.Helper()
	r := e.do(t, "logs", name)
	for _, l := range strings.Split(r.stdout+r.stderr, "\n") {
		if strings.Contains(l, "/proc/") && (strings.Contains(l, "Read-only file system") || strings.Contains(l, "ermission denied")) {
			t.Errorf("%s: the program was refused a write to its /proc files: %s", e.name, l)
		}
	}
}

// underTheFloor fails the test unless the container runs as the floor
// makes it with a writable rootfs: in a user namespace from the pool (not
// host root) with its procfs mounted read-only.
func (e *cliEngine) underTheFloor(t *testing.T, name string) {
	t.Helper()
	got := e.shell(t, name, "cat /proc/self/uid_map; grep '^proc /proc ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1")
	f := strings.Fields(got)
	if len(f) != 4 || f[0] != "0" || f[1] == "0" || f[2] != "65536" || f[3] != "ro" {
		t.Errorf("%s: uid_map and /proc's mount options inside: %q, want container root mapped to a pool range and /proc ro", e.name, got)
	}
}

// stopQuickly stops a container with the engine's stop (SIGTERM, SIGKILL
// after 30 s) and asserts that it exited by itself with status 0 well
// before that.
func (e *cliEngine) stopQuickly(t *testing.T, name string) {
	t.Helper()
	start := time.Now()
	e.ok(t, "stop", "-t", "30", name)
	took := time.Since(start)
	code := strings.TrimSpace(e.ok(t, "inspect", "-f", "{{.State.ExitCode}}", name))
	if code != "0" || took > 20*time.Second {
		logs := e.do(t, "logs", name)
		t.Errorf("%s stop: exit status %s after %s, want 0 well within the 30 s grace\n%s%s", e.name, code, took.Round(time.Millisecond), lastLines(logs.stdout, 10), lastLines(logs.stderr, 10))
	}
	t.Logf("%s stop %s: exit %s in %s", e.name, name, code, took.Round(time.Millisecond))
}

// freePort is a TCP port on 127.0.0.1 that nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// httpGet fetches url from the host until it answers (up to d) and
// returns the status and body.
func httpGet(t *testing.T, d time.Duration, url string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	var (
		code int
		body string
		err  error
	)
	waitFor(d, func() bool {
		var r *http.Response
		if r, err = c.Get(url); err != nil {
			return false
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		code, body = r.StatusCode, string(b)
		return true
	})
	if err != nil {
		t.Fatalf("GET %s from the host: %v", url, err)
	}
	return code, body
}

// pgQuery runs one query over PostgreSQL's wire protocol (version 3, trust
// authentication, simple query) and returns the first column of each row:
// the host has no client of its own to rely on.
func pgQuery(addr, user, query string) ([]string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	params := "user\x00" + user + "\x00database\x00postgres\x00\x00"
	msg := binary.BigEndian.AppendUint32(nil, uint32(8+len(params)))
	msg = binary.BigEndian.AppendUint32(msg, 3<<16)
	if _, err := c.Write(append(msg, params...)); err != nil {
		return nil, err
	}
	r := bufio.NewReader(c)
	read := func() (byte, []byte, error) {
		var h [5]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return 0, nil, err
		}
		n := binary.BigEndian.Uint32(h[1:])
		if n < 4 || n > 1<<20 {
			return 0, nil, fmt.Errorf("message %q of length %d", h[0], n)
		}
		b := make([]byte, n-4)
		_, err := io.ReadFull(r, b)
		return h[0], b, err
	}
	pgErr := func(b []byte) error {
		for _, f := range strings.Split(string(b), "\x00") {
			if strings.HasPrefix(f, "M") {
				return fmt.Errorf("postgres: %s", f[1:])
			}
		}
		return fmt.Errorf("postgres error %q", b)
	}
	for ready := false; !ready; {
		typ, b, err := read()
		switch {
		case err != nil:
			return nil, fmt.Errorf("startup: %w", err)
		case typ == 'E':
			return nil, pgErr(b)
		case typ == 'R' && len(b) >= 4 && binary.BigEndian.Uint32(b) != 0:
			return nil, fmt.Errorf("postgres asks for authentication method %d, want trust", binary.BigEndian.Uint32(b))
		case typ == 'Z':
			ready = true
		}
	}
	q := append([]byte{'Q'}, binary.BigEndian.AppendUint32(nil, uint32(4+len(query)+1))...)
	if _, err := c.Write(append(append(q, query...), 0)); err != nil {
		return nil, err
	}
	var rows []string
	for {
		typ, b, err := read()
		switch {
		case err != nil:
			return nil, fmt.Errorf("query: %w", err)
		case typ == 'E':
			return nil, pgErr(b)
		case typ == 'D' && len(b) >= 6:
			n := int32(binary.BigEndian.Uint32(b[2:]))
			if n < 0 || int(n) > len(b)-6 {
				rows = append(rows, "NULL")
			} else {
				rows = append(rows, string(b[6:6+n]))
			}
		case typ == 'Z':
			c.Write([]byte{'X', 0, 0, 0, 4})
			return rows, nil
		}
	}
}

// dockerNetwork is a bridge network of the floor's dockerd for this test
// (the daemon runs with --bridge=none and no iptables: published ports go
// through docker-proxy on the host's loopback), removed when it ends.
func dockerNetwork(t *testing.T, e *cliEngine) string {
	t.Helper()
	name := fmt.Sprintf("bwreal-%d-%d", os.Getpid(), nameSeq.Add(1))
	e.ok(t, "network", "create", "--driver", "bridge", name)
	t.Cleanup(func() { e.do(t, "network", "rm", name) })
	return name
}

// Real Debian software through Docker under the floor, as the images on
// Docker Hub run it: PostgreSQL 15 initialised and run as the image's
// postgres user on a named volume and queried from inside and through a
// published port, then stopped by docker stop; nginx's master as root and
// its workers as www-data behind a published port; redis-server as redis
// on a volume, with a forking BGSAVE whose dump a new container loads; and
// python3's http.server as a user without a name.
func TestFloorRunsRealSoftwareUnderDocker(t *testing.T) {
	debianImageTarball(t)
	e := importDebian(t, startFloorDocker(t))
	netw := dockerNetwork(t, e)
	e.runFlags = []string{"--runtime", "bulwark-harden", "--network", netw}
	seq := func(what string) string { return fmt.Sprintf("bw%s-%d-%d", what, os.Getpid(), nameSeq.Add(1)) }

	t.Run("postgres", func(t *testing.T) {
		vol := seq("pgvol")
		e.volume(t, vol)
		mnt := vol + ":" + pgData
		e.runOnce(t, []string{"-v", mnt}, "chown", "postgres:postgres", pgData)
		e.runOnce(t, []string{"-v", mnt, "--user", "postgres"}, "sh", "-c",
			pgBin+"/initdb -D "+pgData+" --auth=trust >/dev/null && echo 'host all all 0.0.0.0/0 trust' >> "+pgData+"/pg_hba.conf")
		port := freePort(t)
		name := seq("pg")
		// PostgreSQL's documentation has the postmaster's children reset
		// their OOM score through PG_OOM_ADJUST_FILE: each forked child
		// opens /proc/self/oom_score_adj for writing, which the floor's
		// read-only procfs refuses (EROFS); postgres ignores the error
		// by design (fork_process.c), and the children keep the
		// postmaster's score, which the engine set.
		e.daemon(t, name, []string{"-v", mnt, "--user", "postgres", "-p", fmt.Sprintf("127.0.0.1:%d:5432", port),
			"-e", "PG_OOM_ADJUST_FILE=/proc/self/oom_score_adj", "-e", "PG_OOM_ADJUST_VALUE=0"},
			pgBin+"/postgres", "-D", pgData, "-c", "listen_addresses=*", "-c", "unix_socket_directories=/tmp")
		e.until(t, 60*time.Second, name, "psql -h 127.0.0.1 -U postgres -tAc 'select 1'", "1")
		got := e.until(t, 10*time.Second, name, "psql -h 127.0.0.1 -U postgres -tAc "+
			"'create table t (v int); insert into t values (42); select v from t; select current_user'", "42")
		if strings.Fields(got)[len(strings.Fields(got))-1] != "postgres" {
			t.Errorf("psql over loopback in the container: %q, want 42 and postgres", got)
		}
		if u := e.shell(t, name, "ps -o user= -p 1"); u != "postgres" {
			t.Errorf("postmaster runs as %q, want postgres", u)
		}
		var rows []string
		var err error
		waitFor(30*time.Second, func() bool {
			rows, err = pgQuery(fmt.Sprintf("127.0.0.1:%d", port), "postgres", "select v * 2 from t")
			return err == nil
		})
		if err != nil || len(rows) != 1 || rows[0] != "84" {
			t.Errorf("query through the published port 127.0.0.1:%d: %q, %v, want [84]", port, rows, err)
		}
		e.underTheFloor(t, name)
		e.noProcEROFS(t, name)
		e.stopQuickly(t, name)
		if logs := e.do(t, "logs", name); !strings.Contains(logs.stdout+logs.stderr, "database system is shut down") {
			t.Errorf("postgres's log after docker stop has no clean shutdown:\n%s", lastLines(logs.stderr, 10))
		}
		// docker start makes the container's idmapped volume and
		// overlay afresh: the table is there, and the port answers again.
		e.ok(t, "start", name)
		if got := e.until(t, 60*time.Second, name, "psql -h 127.0.0.1 -U postgres -tAc 'select v from t'", "42"); got != "42\n" {
			t.Errorf("after docker start: %q, want the row written before the stop", got)
		}
		e.stopQuickly(t, name)
	})

	t.Run("nginx", func(t *testing.T) {
		port := freePort(t)
		name := seq("nginx")
		e.daemon(t, name, []string{"-p", fmt.Sprintf("127.0.0.1:%d:80", port)}, "nginx", "-g", "daemon off;")
		code, body := httpGet(t, 60*time.Second, fmt.Sprintf("http://127.0.0.1:%d/", port))
		if code != 200 || !strings.Contains(body, "Welcome to nginx") {
			t.Errorf("GET / through 127.0.0.1:%d: %d %q, want 200 and Debian's welcome page", port, code, lastLines(body, 3))
		}
		ps := e.shell(t, name, "ps -o user=,args= -C nginx")
		if !strings.Contains(ps, "root") || !strings.Contains(ps, "master process") || !strings.Contains(ps, "www-data") || !strings.Contains(ps, "worker process") {
			t.Errorf("nginx's processes: %q, want the master as root and workers as www-data", ps)
		}
		e.underTheFloor(t, name)
		e.noProcEROFS(t, name)
		e.stopQuickly(t, name)
	})

	// A hardened deployment's nginx: read-only rootfs, tmpfs where it
	// writes. There the floor leaves procfs writable and Landlock keeps
	// the payload's writes away from /proc instead.
	t.Run("nginx with a read-only rootfs", func(t *testing.T) {
		port := freePort(t)
		name := seq("nginx")
		e.daemon(t, name, []string{"-p", fmt.Sprintf("127.0.0.1:%d:80", port), "--read-only",
			"--tmpfs", "/run", "--tmpfs", "/var/lib/nginx", "--tmpfs", "/var/log/nginx"}, "nginx", "-g", "daemon off;")
		if code, body := httpGet(t, 60*time.Second, fmt.Sprintf("http://127.0.0.1:%d/", port)); code != 200 || !strings.Contains(body, "Welcome to nginx") {
			t.Errorf("GET / through 127.0.0.1:%d: %d %q", port, code, lastLines(body, 3))
		}
		if got := e.shell(t, name, "touch /x 2>&1; { echo 0 > /proc/self/oom_score_adj; } 2>&1; ps -o user= -C nginx | sort -u | tr '\\n' ' '"); !strings.Contains(got, "Read-only file system") || !strings.Contains(got, "Permission denied") || !strings.HasSuffix(got, "root www-data") {
			t.Errorf("read-only rootfs, Landlock's /proc, nginx's users: %q, want EROFS, EACCES, root and www-data", got)
		}
		e.stopQuickly(t, name)
	})

	t.Run("redis", func(t *testing.T) {
		testRedis(t, e, seq)
	})

	// Everyday tools a person runs in such a container: ps and top read
	// every process's /proc files, ip talks netlink, python3's
	// multiprocessing takes POSIX semaphores in /dev/shm, sqlite locks a
	// file, git commits, all as a user without a name.
	t.Run("tools", func(t *testing.T) {
		got := e.runOnce(t, []string{"--user", "1000:1000", "-e", "HOME=/tmp"}, "sh", "-c", `cd /tmp
sleep 30 & s=$!; i=0; until ps -eo comm= | grep -qx sleep || [ $i -gt 100 ]; do sleep 0.1; i=$((i+1)); done
ps -eo comm= | grep -cx sleep; top -bn1 | grep -c ' top$'; kill $s
ip -o link show lo | grep -o 'state [A-Z]*'
python3 -c '
import multiprocessing, sqlite3
def sq(x): return x * x
with multiprocessing.Pool(2) as p: print("pool", sum(p.map(sq, range(10))))
db = sqlite3.connect("/tmp/t.db"); db.execute("create table t (v)"); db.execute("insert into t values (7)"); db.commit()
print("sqlite", db.execute("select v * 6 from t").fetchone()[0])'
git init -q r && cd r && echo hi > f && git add f && git -c user.name=t -c user.email=t@t commit -qm one && git log --format=%s`)
		if want := "1\n1\nstate UNKNOWN\npool 285\nsqlite 42\none\n"; got != want {
			t.Errorf("tools as uid 1000 under the floor:\n%s\nwant:\n%s", got, want)
		}
	})

	t.Run("python3 http.server as a non-root user", func(t *testing.T) {
		port := freePort(t)
		name := seq("py")
		e.daemon(t, name, []string{"--user", "1000:1000", "-p", fmt.Sprintf("127.0.0.1:%d:8000", port)},
			"python3", "-m", "http.server", "8000", "--directory", "/etc")
		code, body := httpGet(t, 60*time.Second, fmt.Sprintf("http://127.0.0.1:%d/debian_version", port))
		if code != 200 || !strings.HasPrefix(body, "12.") {
			t.Errorf("GET /debian_version through 127.0.0.1:%d: %d %q, want 200 and 12.x", port, code, body)
		}
		e.underTheFloor(t, name)
		if u := e.shell(t, name, "ps -o uid= -p 1"); u != "1000" {
			t.Errorf("http.server runs as uid %q, want 1000", u)
		}
	})
}

// testRedis runs redis-server as the image's redis user on a volume at
// its own /var/lib/redis (docker copies the image's directory, owner
// included, into a new volume), SETs and GETs through redis-cli, BGSAVEs
// (a forked child writes the dump), and a second container on the same
// volume loads the key back from the dump.
func testRedis(t *testing.T, e *cliEngine, seq func(string) string) {
	vol := seq("redisvol")
	e.volume(t, vol)
	flags := []string{"-v", vol + ":/var/lib/redis"}
	if e.name == "podman" {
		// Podman copies the image's directory into a new volume too, but
		// not its owner: redis's directory is the container root's.
		e.runOnce(t, flags, "chown", "redis:redis", "/var/lib/redis")
	}
	flags = append(flags, "--user", "redis")
	server := []string{"redis-server", "--dir", "/var/lib/redis", "--bind", "127.0.0.1", "--save", ""}
	name := seq("redis")
	e.daemon(t, name, flags, server...)
	e.until(t, 60*time.Second, name, "redis-cli ping", "PONG")
	if got := e.shell(t, name, "redis-cli set greeting 'hello from redis' && redis-cli get greeting"); got != "OK\nhello from redis" {
		t.Errorf("SET/GET through redis-cli: %q", got)
	}
	before := e.shell(t, name, "redis-cli lastsave")
	if got := e.shell(t, name, "redis-cli bgsave"); got != "Background saving started" {
		t.Errorf("BGSAVE: %q", got)
	}
	e.until(t, 30*time.Second, name, "redis-cli info persistence | tr -d '\\r' | grep -E '^(rdb_bgsave_in_progress|rdb_last_bgsave_status):'",
		"rdb_bgsave_in_progress:0\nrdb_last_bgsave_status:ok")
	if after := e.shell(t, name, "redis-cli lastsave"); after == before {
		if n, _ := strconv.Atoi(after); n == 0 {
			t.Errorf("LASTSAVE %q after BGSAVE, before %q", after, before)
		}
	}
	if got := e.shell(t, name, "stat -c '%U %s' /var/lib/redis/dump.rdb"); !strings.HasPrefix(got, "redis ") || strings.HasSuffix(got, " 0") {
		t.Errorf("the dump BGSAVE wrote: %q, want a non-empty file owned by redis", got)
	}
	e.underTheFloor(t, name)
	e.noProcEROFS(t, name)
	e.stopQuickly(t, name)

	again := seq("redis")
	e.daemon(t, again, flags, server...)
	e.until(t, 60*time.Second, again, "redis-cli get greeting", "hello from redis")
	e.do(t, "rm", "-f", again)
}

// The same software through Podman under the floor, on Podman's named
// volumes and reached over the container's loopback (the tests' podman has
// no network but its own loopback, so no published port): PostgreSQL as
// postgres, nginx's master and workers, redis with BGSAVE and python3's
// http.server as a user without a name.
func TestFloorRunsRealSoftwareUnderPodman(t *testing.T) {
	debianImageTarball(t)
	e := importDebian(t, startFloorPodman(t))
	seq := func(what string) string { return fmt.Sprintf("bw%s-%d-%d", what, os.Getpid(), nameSeq.Add(1)) }
	const pyGet = `python3 -c 'import sys, urllib.request as u; r = u.urlopen(sys.argv[1], timeout=5); print(r.status, r.read().decode().strip())'`

	t.Run("postgres", func(t *testing.T) {
		vol := seq("pgvol")
		e.volume(t, vol)
		mnt := vol + ":" + pgData
		e.runOnce(t, []string{"-v", mnt}, "chown", "postgres:postgres", pgData)
		e.runOnce(t, []string{"-v", mnt, "--user", "postgres"}, pgBin+"/initdb", "-D", pgData, "--auth=trust")
		name := seq("pg")
		e.daemon(t, name, []string{"-v", mnt, "--user", "postgres"},
			pgBin+"/postgres", "-D", pgData, "-c", "unix_socket_directories=/tmp")
		got := e.until(t, 60*time.Second, name, "psql -h 127.0.0.1 -U postgres -tAc 'select 6 * 7; select current_user'", "42")
		if got != "42\npostgres\n" {
			t.Errorf("psql over loopback in the container: %q, want 42 and postgres", got)
		}
		e.underTheFloor(t, name)
		e.noProcEROFS(t, name)
		e.stopQuickly(t, name)
	})

	t.Run("nginx", func(t *testing.T) {
		name := seq("nginx")
		e.daemon(t, name, nil, "nginx", "-g", "daemon off;")
		if got := e.until(t, 60*time.Second, name, pyGet+" http://127.0.0.1/", "200"); !strings.Contains(got, "Welcome to nginx") {
			t.Errorf("GET / on the container's loopback: %q", got)
		}
		ps := e.shell(t, name, "ps -o user=,args= -C nginx")
		if !strings.Contains(ps, "master process") || !strings.Contains(ps, "www-data") {
			t.Errorf("nginx's processes: %q, want the master as root and workers as www-data", ps)
		}
		e.underTheFloor(t, name)
		e.noProcEROFS(t, name)
		e.stopQuickly(t, name)
	})

	t.Run("redis", func(t *testing.T) {
		testRedis(t, e, seq)
	})

	t.Run("own /proc files", func(t *testing.T) { testOwnProcFiles(t, e) })

	t.Run("python3 http.server as a non-root user", func(t *testing.T) {
		name := seq("py")
		e.daemon(t, name, []string{"--user", "1000:1000"}, "python3", "-m", "http.server", "8000", "--directory", "/etc")
		if got := e.until(t, 60*time.Second, name, pyGet+" http://127.0.0.1:8000/debian_version", "200 12."); got == "" {
			t.Error("no answer")
		}
		e.underTheFloor(t, name)
		if u := e.shell(t, name, "ps -o uid= -p 1"); u != "1000" {
			t.Errorf("http.server runs as uid %q, want 1000", u)
		}
	})
}

// What the floor's read-only procfs refuses, through an engine, and its
// opt-out. None of the programs above writes its own /proc files (strace
// -f of each on the host: docs/escape.md); programs that do get EROFS:
// here a shell setting its own oom_score_adj and glibc's
// pthread_setname_np naming another thread of the process (it writes
// /proc/self/task/TID/comm; naming itself goes through prctl and works).
// Podman passes annotations to the runtime: with run.bulwark.landlock-proc
// rw both work, and procfs stays writable to the whole payload.
func testOwnProcFiles(t *testing.T, e *cliEngine) {
	const script = `echo 500 > /proc/self/oom_score_adj && echo oom ok; python3 -c '
import ctypes, threading
libc = ctypes.CDLL(None)
done = threading.Event()
t = threading.Thread(target=done.wait); t.start()
print("other", libc.pthread_setname_np(ctypes.c_ulong(t.ident), b"worker"))
print("self", libc.pthread_setname_np(ctypes.c_ulong(threading.main_thread().ident), b"main"))
done.set(); t.join()'`
	got := e.runOnce(t, nil, "sh", "-c", script)
	if !strings.Contains(got, "other 30\n") || !strings.Contains(got, "self 0\n") || strings.Contains(got, "oom ok") {
		t.Errorf("under the floor: %q, want oom_score_adj and another thread's name refused (EROFS, 30), the process's own name set", got)
	}
	got = e.runOnce(t, []string{"--annotation", "run.bulwark.landlock-proc=rw"}, "sh", "-c", script)
	if got != "oom ok\nother 0\nself 0\n" {
		t.Errorf("under the floor with run.bulwark.landlock-proc rw: %q, want all three written", got)
	}
}

// The same set through containerd (ctr and the runc shim running
// the floor's wrapper), which has neither named volumes nor --user: a host
// directory bound as PostgreSQL's data directory (owned on the host disk
// by the image's postgres ids, which the idmapped bind shows as theirs),
// initdb and the postmaster as postgres through setpriv, a query over
// loopback, SIGTERM and a clean shutdown in postgres's own log; nginx's
// master and workers; python3's http.server as uid 1000; and
// redis-server as redis with SET/GET and a forking BGSAVE.
func TestFloorRunsRealSoftwareUnderContainerd(t *testing.T) {
	tarball := debianImageTarball(t)
	e := startContainerd(t)
	const image = "docker.io/library/" + debianTag
	archive := filepath.Join(t.TempDir(), "debian-oci.tar")
	if err := writeOCIArchive(archive, tarball, image); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.do(t, "image", "rm", image) })
	e.ok(t, "image", "import", archive)
	os.Remove(archive)
	start := func(t *testing.T, flags []string, args ...string) string {
		t.Helper()
		id := e.id(t)
		t.Cleanup(func() {
			e.do(t, "task", "kill", "-s", "SIGKILL", id)
			waitFor(10*time.Second, func() bool {
				return !strings.Contains(e.do(t, "task", "ls").stdout, id) || e.do(t, "task", "delete", id).code == 0
			})
			e.do(t, "task", "delete", "-f", id)
			e.do(t, "container", "rm", id)
		})
		a := append([]string{"run", "-d", "--runtime", "io.containerd.runc.v2", "--runc-binary", hardenWrapper(t), "--runc-root", e.runcRoot}, flags...)
		e.ok(t, append(append(a, image, id), args...)...)
		return id
	}
	until := func(t *testing.T, id, script, want string) string {
		t.Helper()
		var last result
		if !waitFor(60*time.Second, func() bool {
			last = e.do(t, "task", "exec", "--exec-id", fmt.Sprintf("x%d", nameSeq.Add(1)), id, "sh", "-c", script)
			return last.code == 0 && strings.Contains(last.stdout, want)
		}) {
			t.Fatalf("ctr: %q did not print %q within 60s: %v", script, want, last)
		}
		return last.stdout
	}
	setpriv := func(user string) string {
		return "setpriv --reuid=" + user + " --regid=" + user + " --init-groups "
	}

	t.Run("postgres", func(t *testing.T) {
		data := filepath.Join(t.TempDir(), "data")
		if err := os.Mkdir(data, 0o700); err != nil {
			t.Fatal(err)
		}
		// 101:103 are postgres's ids in the image (the idmapped bind shows
		// the disk's ids inside).
		if err := os.Chown(data, 101, 103); err != nil {
			t.Fatal(err)
		}
		id := start(t, []string{"--mount", "type=bind,src=" + data + ",dst=" + pgData + ",options=rbind:rw"}, "sh", "-c",
			"[ $(stat -c %U "+pgData+") = postgres ] || { echo the data directory is not owned by postgres >&2; exit 1; }; "+
				"exec "+setpriv("postgres")+"sh -c '"+pgBin+"/initdb -D "+pgData+" --auth=trust >/dev/null && exec "+pgBin+
				"/postgres -D "+pgData+" -c unix_socket_directories=/tmp 2>>"+pgData+"/server.log'")
		got := until(t, id, "psql -h 127.0.0.1 -U postgres -tAc 'select 6 * 7; select current_user'", "42")
		if got != "42\npostgres\n" {
			t.Errorf("psql over loopback in the container: %q, want 42 and postgres", got)
		}
		e.ok(t, "task", "kill", "-s", "SIGTERM", id)
		if !waitFor(20*time.Second, func() bool { return strings.Contains(lineWith(e.do(t, "task", "ls").stdout, id), "STOPPED") }) {
			t.Errorf("postgres still running 20 s after SIGTERM: %s", e.do(t, "task", "ls").stdout)
		}
		log, _ := os.ReadFile(filepath.Join(data, "server.log"))
		if !strings.Contains(string(log), "database system is shut down") || strings.Contains(string(log), "Read-only file system") {
			t.Errorf("postgres's log after SIGTERM, want a clean shutdown:\n%s", lastLines(string(log), 10))
		}
	})

	const pyGet = `python3 -c 'import sys, urllib.request as u; r = u.urlopen(sys.argv[1], timeout=5); print(r.status, r.read().decode().strip())'`
	t.Run("nginx", func(t *testing.T) {
		id := start(t, nil, "nginx", "-g", "daemon off;")
		if got := until(t, id, pyGet+" http://127.0.0.1/", "200"); !strings.Contains(got, "Welcome to nginx") {
			t.Errorf("GET / on the container's loopback: %q", got)
		}
		until(t, id, "ps -o user= -C nginx | sort -u | tr '\\n' ' '", "root www-data")
	})

	t.Run("python3 http.server as a non-root user", func(t *testing.T) {
		id := start(t, nil, "sh", "-c", "exec setpriv --reuid=1000 --regid=1000 --clear-groups python3 -m http.server 8000 --directory /etc")
		until(t, id, pyGet+" http://127.0.0.1:8000/debian_version", "200 12.")
		until(t, id, "ps -o uid= -p 1", "1000")
	})

	t.Run("redis", func(t *testing.T) {
		id := start(t, nil, "sh", "-c", "exec "+setpriv("redis")+"redis-server --dir /var/lib/redis --bind 127.0.0.1 --save ''")
		until(t, id, "redis-cli ping", "PONG")
		until(t, id, "redis-cli set greeting hello >/dev/null && redis-cli get greeting && redis-cli bgsave", "hello\nBackground saving started")
		until(t, id, "redis-cli info persistence | tr -d '\\r' | grep -E '^(rdb_bgsave_in_progress|rdb_last_bgsave_status):'",
			"rdb_bgsave_in_progress:0\nrdb_last_bgsave_status:ok")
		until(t, id, "stat -c %U /var/lib/redis/dump.rdb; ps -o user= -p 1", "redis\nredis")
		m := strings.Fields(until(t, id, "cat /proc/self/uid_map", "65536"))
		if len(m) != 3 || m[0] != "0" || m[1] == "0" {
			t.Errorf("uid_map inside: %v, want container root mapped to a pool range", m)
		}
	})
}
