package tests

// User-mode networks (--net pasta, --net slirp) as a rootless person uses
// them: up before the payload's first instruction, gone with the container
// (also when the run was SIGKILLed), ports published on the host's
// loopback and given back exactly. All traffic stays on this machine: the
// host's loopback and an address on a test link of the host's own.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

// newRootlessNetEnv is newRootlessEnv as the user-mode network tests'
// own account.
func newRootlessNetEnv(t *testing.T) *rootlessEnv {
	t.Helper()
	testrootfs.RequireUserNS(t)
	return newRootlessEnvAs(t, testrootfs.RequireRootlessNetUser(t))
}

var userNets = []struct{ net, bin string }{{"pasta", "pasta"}, {"slirp", "slirp4netns"}}

// start runs bulwark as the account without waiting for it; its output
// is discarded. The caller kills and waits.
func (r *rootlessEnv) start(args ...string) *exec.Cmd {
	r.t.Helper()
	cmd := exec.Command(bulwarkBin, args...)
	cmd.Dir = r.home
	cmd.Env = []string{"HOME=" + r.home, "XDG_RUNTIME_DIR=" + r.runtime, "USER=" + r.u.Name,
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(r.u.UID), Gid: uint32(r.u.GID), Groups: []uint32{}}}
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// relaysOf lists the account's pasta and slirp4netns processes and the
// keepers that watch them.
func relaysOf(uid int) []string {
	var out []string
	for _, pid := range processesOf(uid) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		// pasta execs pasta.avx2 where the CPU has AVX2.
		c := strings.TrimSpace(string(b))
		if strings.HasPrefix(c, "pasta") || strings.HasPrefix(c, "passt") || c == "slirp4netns" || c == "bulwark-usernet" {
			out = append(out, fmt.Sprintf("%d %s", pid, c))
		}
	}
	return out
}

// waitNoRelays waits up to d for the account's relays to end.
func waitNoRelays(uid int, d time.Duration) []string {
	deadline := time.Now().Add(d)
	for {
		left := relaysOf(uid)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// getBody is the body of GET http://addr/, or "" on any failure.
func getBody(addr string) string {
	b, _ := httpGet("http://" + addr + "/")
	return b
}

// portFree tells whether the host's 127.0.0.1:port can be bound again.
func portFree(port int) bool {
	l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// hostServer answers every GET with body on addr until the test ends.
func hostServer(t *testing.T, addr, body string) {
	t.Helper()
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, body)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

func TestRootlessUserModeNetworkIsUpBeforeThePayloadStarts(t *testing.T) {
	// A host address that is not loopback and not the container's own
	// (pasta copies the host's eth0 address into the namespace).
	testLink(t, "bwunet0", "10.199.77.1/32")
	hostServer(t, "10.199.77.1:18470", "hello-from-host")
	// A loopback-only service of the host's, which neither relay may
	// carry the container to, by the gateway's address or any other.
	hostServer(t, "127.0.0.1:18471", "host-loopback-secret")
	gw := map[string]string{"slirp": "10.0.2.2"}
	if out, err := exec.Command("ip", "-4", "route", "show", "default").Output(); err == nil {
		if f := strings.Fields(string(out)); len(f) > 2 && f[0] == "default" && f[1] == "via" {
			gw["pasta"] = f[2]
		}
	}
	for _, tool := range userNets {
		t.Run(tool.net, func(t *testing.T) {
			testrootfs.RequireBinary(t, tool.bin)
			r := newRootlessNetEnv(t)
			rootfs := testrootfs.UserRootfs(t, r.u)
			// The payload's very first action is the connection: no
			// shell, no retry. Three runs in the default suite, ten with
			// scripts/test.sh usernet.
			loops := 3
			if n, err := strconv.Atoi(os.Getenv("BULWARK_USERNET_LOOPS")); err == nil && n > 0 {
				loops = n
			}
			for i := 0; i < loops; i++ {
				res := r.bw("run", "--net", tool.net, rootfs, "--", "/usr/local/bin/netprobe", "get", "http://10.199.77.1:18470/")
				if res.code != 0 || !strings.Contains(res.stdout, "hello-from-host") {
					t.Fatalf("run %d: the payload's first connection failed: %v", i+1, res)
				}
			}
			if g := gw[tool.net]; g != "" {
				res := r.bw("run", "--net", tool.net, rootfs, "--", "/usr/local/bin/netprobe", "get", "http://"+g+":18471/")
				if strings.Contains(res.stdout, "host-loopback-secret") {
					t.Errorf("--net %s: the container reached the host's loopback-only service through %s: %v", tool.net, g, res)
				}
			}
			if left := waitNoRelays(r.u.UID, 5*time.Second); len(left) > 0 {
				t.Errorf("relays left after the runs: %v", left)
			}
		})
	}
}

func TestRootlessUserModeNetworkEndsWithTheContainerWhenTheRunIsKilled(t *testing.T) {
	for i, tool := range userNets {
		t.Run(tool.net, func(t *testing.T) {
			testrootfs.RequireBinary(t, tool.bin)
			r := newRootlessNetEnv(t)
			rootfs := testrootfs.UserRootfs(t, r.u)
			port := 18472 + i
			name := "killed-" + tool.net
			run := r.start("run", "--name", name, "--net", tool.net, "-p", fmt.Sprintf("127.0.0.1:%d:8080", port), rootfs, "--",
				"sh", "-c", "/usr/local/bin/httpd -addr 0.0.0.0:8080 & sleep 4; kill $!")
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			up := false
			for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline) && !up; {
				up = strings.Contains(getBody(addr), "ok")
				if !up {
					time.Sleep(100 * time.Millisecond)
				}
			}
			if !up {
				t.Fatalf("the container's server never answered on %s", addr)
			}
			run.Process.Signal(syscall.SIGKILL)
			run.Wait()
			// The container runs on, as runc's does, and its network
			// with it: the relay belongs to the container, not the run.
			if !strings.Contains(getBody(addr), "ok") {
				t.Errorf("the container lost its network when its run was killed")
			}
			if left := waitNoRelays(r.u.UID, 20*time.Second); len(left) > 0 {
				t.Fatalf("relays left 20s after the run was killed (the payload ends after 4s): %v", left)
			}
			if !portFree(port) {
				t.Errorf("host port %d still bound after the container ended", port)
			}
			if res := r.bw("rm", "-f", name); res.code != 0 {
				t.Errorf("rm -f %s: %v", name, res)
			}
		})
	}
}

func TestRootlessUserModeNetworkRunKilledAtAnyPointLeavesNothingAfterRmF(t *testing.T) {
	testrootfs.RequireBinary(t, "pasta")
	r := newRootlessNetEnv(t)
	rootfs := testrootfs.UserRootfs(t, r.u)
	// Dense early on: the relay's record is written there (an empty one,
	// cut by the kill, once made the container unremovable).
	for i, delay := range killDelays(30, 45, 60, 75, 90, 120, 180, 250, 400, 600) {
		name := "midcreate-" + strconv.Itoa(i)
		run := r.start("run", "--name", name, "--net", "pasta", "-p", fmt.Sprintf("127.0.0.1:%d:8080", 18480+i), rootfs, "--", "sleep", "30")
		time.Sleep(delay)
		run.Process.Signal(syscall.SIGKILL)
		run.Wait()
		if res := r.bw("rm", "-f", name); res.code != 0 && !strings.Contains(res.stderr, "does not exist") {
			t.Errorf("rm -f %s after SIGKILL at %v: %v", name, delay, res)
		}
		if left := waitNoRelays(r.u.UID, 5*time.Second); len(left) > 0 {
			t.Errorf("after SIGKILL at %v and rm -f: relays left: %v", delay, left)
		}
		if !portFree(18480 + i) {
			t.Errorf("after SIGKILL at %v and rm -f: host port %d still bound", delay, 18480+i)
		}
	}
}

func TestRootlessUserModeNetworkPortIsGivenBackAndRefusedWhenTaken(t *testing.T) {
	for i, tool := range userNets {
		t.Run(tool.net, func(t *testing.T) {
			testrootfs.RequireBinary(t, tool.bin)
			r := newRootlessNetEnv(t)
			rootfs := testrootfs.UserRootfs(t, r.u)
			port := 18490 + i
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			// Twice on one port: the first run gives it back exactly.
			for round := 1; round <= 2; round++ {
				done := make(chan result, 1)
				go func() {
					done <- r.bw("run", "--net", tool.net, "-p", fmt.Sprintf("127.0.0.1:%d:8080", port), rootfs, "--",
						"sh", "-c", "/usr/local/bin/httpd -addr 0.0.0.0:8080 & sleep 3; kill $!")
				}()
				got := ""
				for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline) && !strings.Contains(got, "ok"); {
					if got = getBody(addr); !strings.Contains(got, "ok") {
						time.Sleep(100 * time.Millisecond)
					}
				}
				res := <-done
				if !strings.Contains(got, "ok") || res.code != 0 {
					t.Fatalf("round %d: no answer on %s (%q); run: %v", round, addr, got, res)
				}
				if !portFree(port) {
					t.Fatalf("round %d: host port %d still bound after the run", round, port)
				}
				if left := relaysOf(r.u.UID); len(left) > 0 {
					t.Fatalf("round %d: relays left after the run: %v", round, left)
				}
			}
			// Taken on the host: refused before the payload runs.
			l, err := net.Listen("tcp4", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			res := r.bw("run", "--net", tool.net, "-p", fmt.Sprintf("127.0.0.1:%d:8080", port), rootfs, "--", "echo", "payload-ran")
			if res.code == 0 || !strings.Contains(res.stderr, "in use on the host") || !strings.Contains(res.stderr, strconv.Itoa(port)) {
				t.Errorf("-p on a port in use: want a clear refusal naming the port, got %v", res)
			}
			if strings.Contains(res.stdout, "payload-ran") {
				t.Errorf("-p on a port in use: the payload ran: %v", res)
			}
		})
	}
}

// Root may use the relays too (a host without CNI plugins, or a person who
// wants no bridge): the network is up at the payload's first instruction.
func TestUserModeNetworkAsRootIsUpBeforeThePayloadStarts(t *testing.T) {
	e := newEnv(t)
	rootfs := userRootfs(t)
	for _, tool := range userNets {
		t.Run(tool.net, func(t *testing.T) {
			testrootfs.RequireBinary(t, tool.bin)
			r := e.userRun(nil, []string{"--net", tool.net}, rootfs, "/bin/cat", "/proc/net/route")
			if r.code != 0 {
				t.Fatalf("--net %s as root: %v", tool.net, r)
			}
			def := false
			for _, l := range strings.Split(r.stdout, "\n") {
				if f := strings.Fields(l); len(f) > 2 && f[1] == "00000000" && f[0] != "lo" {
					def = true
				}
			}
			if !def {
				t.Errorf("--net %s as root: no default route at the payload's start:\n%s", tool.net, r.stdout)
			}
			if left := waitNoRelays(0, 5*time.Second); len(left) > 0 {
				t.Errorf("relays of root left after the run: %v", left)
			}
		})
	}
}

// keeperOf finds the account's user-mode network keeper (the leader of
// its process group) and its watcher (another bulwark-usernet of that
// group); 0 for either not found.
func keeperOf(uid int) (keeper, watcher int) {
	groups := map[int]int{} // pid -> pgid
	for _, pid := range processesOf(uid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || !strings.Contains(s[:i], "(bulwark-usernet") {
			continue
		}
		if f := strings.Fields(s[i+1:]); len(f) > 2 {
			groups[pid], _ = strconv.Atoi(f[2])
		}
	}
	for pid, pgid := range groups {
		if pid == pgid {
			keeper = pid
		}
	}
	for pid, pgid := range groups {
		if pid != keeper && pgid == keeper {
			watcher = pid
		}
	}
	return keeper, watcher
}

// startServed starts a run of a server published on port that ends after
// secs seconds, and waits until it answers.
func (r *rootlessEnv) startServed(name, net string, port, secs int) *exec.Cmd {
	r.t.Helper()
	run := r.start("run", "--name", name, "--net", net, "-p", fmt.Sprintf("127.0.0.1:%d:8080", port), testrootfs.UserRootfs(r.t, r.u), "--",
		"sh", "-c", fmt.Sprintf("/usr/local/bin/httpd -addr 0.0.0.0:8080 & sleep %d; kill $!", secs))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(15 * time.Second); !strings.Contains(getBody(addr), "ok"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			r.t.Fatalf("the container's server never answered on %s", addr)
		}
	}
	return run
}

// The relay does not outlive its keeper: SIGKILLed, the keeper leaves no
// relay (its watcher kills it), the port is given back, and rm -f leaves
// nothing.
func TestRootlessUserModeNetworkRelayEndsWhenItsKeeperIsKilled(t *testing.T) {
	for i, tool := range userNets {
		t.Run(tool.net, func(t *testing.T) {
			testrootfs.RequireBinary(t, tool.bin)
			r := newRootlessNetEnv(t)
			port := 18500 + i
			name := "keeperkilled-" + tool.net
			run := r.startServed(name, tool.net, port, 60)
			keeper, watcher := keeperOf(r.u.UID)
			if keeper == 0 || watcher == 0 {
				t.Fatalf("no keeper and watcher found (keeper %d, watcher %d): %v", keeper, watcher, relaysOf(r.u.UID))
			}
			if err := syscall.Kill(keeper, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			if left := waitNoRelays(r.u.UID, 10*time.Second); len(left) > 0 {
				t.Errorf("10s after its keeper was SIGKILLed: %v", left)
			}
			if !portFree(port) {
				t.Errorf("host port %d still bound after the keeper was SIGKILLed", port)
			}
			if res := r.bw("rm", "-f", name); res.code != 0 {
				t.Errorf("rm -f %s: %v", name, res)
			}
			done := make(chan error, 1)
			go func() { done <- run.Wait() }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				run.Process.Kill()
				t.Errorf("the run did not end 20s after rm -f")
			}
		})
	}
}

// A stopped container whose keeper and watcher were stopped (SIGSTOP, so
// that neither can act when the init ends), and whose run was SIGKILLed
// (so that nothing deletes it), still has its relay: `bulwark gc` kills
// the whole group, names the container, and gives the port back.
func TestRootlessGcKillsTheRelayOfAStoppedContainer(t *testing.T) {
	testrootfs.RequireBinary(t, "pasta")
	r := newRootlessNetEnv(t)
	port, name := 18510, "gcrelay"
	run := r.startServed(name, "pasta", port, 6)
	t.Cleanup(func() { r.bw("rm", "-f", name) })
	run.Process.Signal(syscall.SIGKILL)
	run.Wait()
	keeper, watcher := keeperOf(r.u.UID)
	if keeper == 0 || watcher == 0 {
		t.Fatalf("no keeper and watcher found (keeper %d, watcher %d): %v", keeper, watcher, relaysOf(r.u.UID))
	}
	syscall.Kill(watcher, syscall.SIGSTOP)
	syscall.Kill(keeper, syscall.SIGSTOP)
	// The payload ends after 6s.
	stopped := false
	for deadline := time.Now().Add(20 * time.Second); !stopped && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		res := r.bw("state", name)
		stopped = res.code == 0 && strings.Contains(res.stdout, `"stopped"`)
	}
	if !stopped {
		t.Fatalf("%s not stopped 20s after its payload's end", name)
	}
	if left := relaysOf(r.u.UID); len(left) == 0 {
		t.Fatalf("no relay left before gc: the test proves nothing")
	}
	res := r.bw("gc")
	if res.code != 0 || !strings.Contains(res.stdout, name) {
		t.Errorf("gc: want it to name %s: %v", name, res)
	}
	if left := waitNoRelays(r.u.UID, 5*time.Second); len(left) > 0 {
		t.Errorf("relays left 5s after gc: %v", left)
	}
	if !portFree(port) {
		t.Errorf("host port %d still bound after gc", port)
	}
	// Nothing of a live container is touched: gc again names nothing.
	if res := r.bw("gc"); res.code != 0 || strings.Contains(res.stdout, name) {
		t.Errorf("a second gc: %v", res)
	}
	if res := r.bw("rm", "-f", name); res.code != 0 {
		t.Errorf("rm -f %s: %v", name, res)
	}
}
