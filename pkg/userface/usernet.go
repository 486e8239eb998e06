package userface

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/network"
)

// User-mode networks: a process of the caller's, outside the container,
// that owns the container's network namespace's only interface and relays
// its traffic through ordinary sockets on the host (no bridge, no NAT rule,
// no privilege): Debian's pasta (passt package) or slirp4netns. -p HOST:CONTAINER
// publishes a port on the host's side of it. They are what a rootless run
// has instead of CNI, and work for root too.
const (
	netPasta = "pasta"
	netSlirp = "slirp"
)

func isUserNet(flag string) bool { return flag == netPasta || flag == netSlirp }

// readUserNet checks --net pasta|slirp and its -p without changing the host.
func (r *request) readUserNet() error {
	tool := map[string]string{netPasta: "pasta", netSlirp: "slirp4netns"}[r.net]
	if _, err := exec.LookPath(tool); err != nil {
		pkg := map[string]string{netPasta: "passt", netSlirp: "slirp4netns"}[r.net]
		return fmt.Errorf("--net %s: %s not found: install Debian's %s package", r.net, tool, pkg)
	}
	r.netMode = &network.Mode{Flag: r.net, Kind: "none"}
	for _, p := range r.Publish {
		port, err := network.ParsePort(p)
		if err != nil {
			return fmt.Errorf("--publish %s: %w", p, err)
		}
		r.ports = append(r.ports, port)
	}
	return nil
}

// userNet is a running pasta or slirp4netns.
type userNet struct {
	cmd *exec.Cmd // slirp4netns, our child
	pid int       // pasta, which daemonizes
	dir string
}

// startUserNet attaches the network namespace of process pid (the
// container's payload, once it runs: the init is not dumpable before, and
// its namespaces cannot be opened by an unprivileged helper) to a
// user-mode network and publishes ports. dir is private to the run.
func startUserNet(kind string, ports []network.Port, pid int, dir string) (*userNet, error) {
	p := strconv.Itoa(pid)
	switch kind {
	case netPasta:
		pidFile := filepath.Join(dir, "pasta.pid")
		args := []string{"--config-net", "--quiet", "--pid", pidFile, "-T", "none", "-U", "none"}
		var tcp, udp []string
		for _, pt := range ports {
			spec := fmt.Sprintf("%d:%d", pt.HostPort, pt.ContainerPort)
			if pt.HostIP != "" {
				spec = pt.HostIP + "/" + spec
			}
			if pt.Protocol == "udp" {
				udp = append(udp, spec)
			} else {
				tcp = append(tcp, spec)
			}
		}
		args = append(args, "-t", orNone(tcp), "-u", orNone(udp), p)
		out, err := exec.Command("pasta", args...).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("--net pasta: pasta %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return nil, fmt.Errorf("--net pasta: its pid file: %w", err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("--net pasta: its pid file %s: %w", pidFile, err)
		}
		return &userNet{pid: n, dir: dir}, nil
	case netSlirp:
		api := filepath.Join(dir, "slirp.sock")
		rd, wr, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		defer rd.Close()
		cmd := exec.Command("slirp4netns", "--configure", "--mtu=65520", "--disable-host-loopback",
			"--api-socket", api, "--ready-fd=3", p, "tap0")
		cmd.ExtraFiles = []*os.File{wr}
		// It dies with us: a killed run leaves no relay behind.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			wr.Close()
			return nil, fmt.Errorf("--net slirp: %w", err)
		}
		wr.Close()
		u := &userNet{cmd: cmd, dir: dir}
		ready := make(chan error, 1)
		go func() {
			b := make([]byte, 1)
			_, err := rd.Read(b)
			ready <- err
		}()
		select {
		case err = <-ready:
		case <-time.After(10 * time.Second):
			err = errors.New("not ready after 10s")
		}
		if err != nil {
			u.stop()
			return nil, fmt.Errorf("--net slirp: slirp4netns: %v: %s", err, strings.TrimSpace(stderr.String()))
		}
		for _, pt := range ports {
			if err := slirpForward(api, pt); err != nil {
				u.stop()
				return nil, fmt.Errorf("--publish %s: %w", pt, err)
			}
		}
		return u, nil
	}
	return nil, fmt.Errorf("--net %s: not a user-mode network", kind)
}

func orNone(specs []string) string {
	if len(specs) == 0 {
		return "none"
	}
	return strings.Join(specs, ",")
}

// slirpForward asks slirp4netns's API for a host port forward.
func slirpForward(api string, p network.Port) error {
	c, err := net.DialTimeout("unix", api, 5*time.Second)
	if err != nil {
		return fmt.Errorf("slirp4netns API %s: %w", api, err)
	}
	defer c.Close()
	hostAddr := p.HostIP
	if hostAddr == "" {
		hostAddr = "0.0.0.0"
	}
	req := map[string]any{"execute": "add_hostfwd", "arguments": map[string]any{
		"proto": p.Protocol, "host_addr": hostAddr, "host_port": p.HostPort, "guest_port": p.ContainerPort}}
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil && len(line) == 0 {
		return fmt.Errorf("slirp4netns API: %w", err)
	}
	var resp struct {
		Error *struct{ Desc string } `json:"error"`
	}
	if err := json.Unmarshal(line, &resp); err != nil {
		return fmt.Errorf("slirp4netns API: %q: %w", line, err)
	}
	if resp.Error != nil {
		return fmt.Errorf("slirp4netns: %s", resp.Error.Desc)
	}
	return nil
}

// stop ends the relay (its ports close with it).
func (u *userNet) stop() {
	if u == nil {
		return
	}
	if u.cmd != nil {
		_ = u.cmd.Process.Kill()
		_ = u.cmd.Wait()
	}
	if u.pid > 0 {
		// Only the pasta we started: its pid file names it, and a pid
		// reused since would not be pasta's.
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(u.pid) + "/comm"); err == nil && strings.HasPrefix(string(b), "pas") {
			_ = syscall.Kill(u.pid, syscall.SIGKILL)
			// Daemonized, it was reparented to the run, a subreaper:
			// reap it, or it stays a zombie as long as the run.
			for i := 0; i < 200; i++ {
				var ws syscall.WaitStatus
				if n, err := syscall.Wait4(u.pid, &ws, syscall.WNOHANG, nil); n == u.pid || err != nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
}

// attachUserNet starts the run's user-mode network once its payload runs;
// a relay that cannot start ends the container, whose run then fails
// with the reason on stderr.
func attachUserNet(rt *container.Runtime, id string, r *request, dir string) *userNet {
	st, err := rt.Load(id)
	if err == nil {
		var u *userNet
		if u, err = startUserNet(r.net, r.ports, st.Pid, dir); err == nil {
			return u
		}
	}
	fmt.Fprintf(os.Stderr, "bulwark: %v\n", err)
	_ = rt.Kill(id, syscall.SIGKILL, false)
	return nil
}
