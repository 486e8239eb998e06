package vmagent

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/vmproto"
	"github.com/bulwark-sec/bulwark/pkg/caps"
	"github.com/bulwark-sec/bulwark/pkg/passwd"
	"github.com/bulwark-sec/bulwark/pkg/rlimit"
	"github.com/bulwark-sec/bulwark/pkg/seccomp"
)

// IsPayload tells main that this process is the agent's child that becomes
// the payload.
func IsPayload() bool {
	return os.Getpid() != 1 && os.Getenv(vmproto.EnvPayload) == "1" && len(os.Args) > 0 && os.Args[0] == "bulwark-payload"
}

// Payload applies the process config and execs the payload; it returns
// only by exiting: 127 when the command is not found, 126 when it cannot
// be run, 1 for a config the guest cannot apply.
func Payload() {
	// Credentials, capabilities and the seccomp filter are per thread
	// here: everything from the chroot to execve happens on this one.
	runtime.LockOSThread()
	code, err := payload()
	fmt.Fprintln(os.Stderr, "bulwark agent:", err)
	os.Exit(code)
}

func payload() (int, error) {
	f := os.NewFile(3, "config")
	var cfg vmproto.Config
	if err := json.NewDecoder(f).Decode(&cfg); err != nil {
		return 1, fmt.Errorf("reading the config: %w", err)
	}
	f.Close()
	s := cfg.Spec
	p := s.Process
	if err := unix.Chroot(root); err != nil {
		return 1, fmt.Errorf("chroot %s: %w", root, err)
	}
	if err := unix.Chdir("/"); err != nil {
		return 1, err
	}
	if cfg.TTY != "" {
		if err := takeTerminal(cfg.TTY); err != nil {
			return 1, err
		}
	}
	if len(p.Rlimits) > 0 {
		if err := rlimit.Set(0, p.Rlimits); err != nil {
			return 1, err
		}
	}
	env := passwd.WithHome(p.Env, p.User.UID)
	var sc *specs.LinuxSeccomp
	if s.Linux != nil {
		sc = s.Linux.Seccomp
	}
	// Without no_new_privs only a privileged process may load a filter,
	// so then it goes in before the capabilities are dropped.
	loadSeccomp := func() error {
		var err error
		if len(cfg.Seccomp) > 0 {
			_, err = seccomp.InstallProgram(cfg.Seccomp, sc)
		} else {
			_, err = seccomp.LoadThread(sc)
		}
		return err
	}
	if sc != nil && !p.NoNewPrivileges {
		if err := loadSeccomp(); err != nil {
			return 1, err
		}
		sc = nil
	}
	if err := dropPrivileges(p); err != nil {
		return 1, err
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return 1, fmt.Errorf("no_new_privs: %w", err)
		}
	}
	path, err := lookPath(p.Args[0], env)
	if err != nil {
		return 127, err
	}
	if sc != nil {
		if err := loadSeccomp(); err != nil {
			return 1, err
		}
	}
	err = unix.Exec(path, p.Args, env)
	return 126, fmt.Errorf("exec %s: %w", p.Args[0], err)
}

// takeTerminal makes the pty slave at path this process's controlling
// terminal and its stdin, stdout and stderr, in a session of its own.
func takeTerminal(path string) error {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("terminal %s: %w", path, err)
	}
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("terminal: setsid: %w", err)
	}
	if err := unix.IoctlSetInt(fd, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("terminal %s: TIOCSCTTY: %w", path, err)
	}
	for i := 0; i < 3; i++ {
		if err := unix.Dup2(fd, i); err != nil {
			return fmt.Errorf("terminal: %w", err)
		}
	}
	if fd > 2 {
		unix.Close(fd)
	}
	return nil
}

// dropPrivileges: bounding set, groups and ids (keeping the capabilities
// across setuid so that the spec's sets can be applied), cwd, the sets.
func dropPrivileges(p *specs.Process) error {
	c := p.Capabilities
	if c == nil {
		c = &specs.LinuxCapabilities{}
	}
	if err := caps.DropBounding(c); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keepcaps: %w", err)
	}
	u := p.User
	gids := make([]int, 0, len(u.AdditionalGids))
	for _, g := range u.AdditionalGids {
		gids = append(gids, int(g))
	}
	if err := unix.Setgroups(gids); err != nil {
		return fmt.Errorf("config.json: process.user.additionalGids: %w", err)
	}
	if err := unix.Setresgid(int(u.GID), int(u.GID), int(u.GID)); err != nil {
		return fmt.Errorf("config.json: process.user.gid %d: %w", u.GID, err)
	}
	if err := unix.Setresuid(int(u.UID), int(u.UID), int(u.UID)); err != nil {
		return fmt.Errorf("config.json: process.user.uid %d: %w", u.UID, err)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("keepcaps: %w", err)
	}
	cwd := p.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if err := unix.Chdir(cwd); err != nil {
		return fmt.Errorf("config.json: process.cwd %q: %w", cwd, err)
	}
	if err := caps.Apply(c); err != nil {
		return err
	}
	if u.Umask != nil {
		unix.Umask(int(*u.Umask))
	}
	return nil
}

// lookPath resolves name on the payload's own PATH (not the agent's).
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + name
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, exec.ErrNotFound)
}
