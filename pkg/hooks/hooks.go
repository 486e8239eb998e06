// Package hooks runs OCI lifecycle hooks (prestart, createRuntime, createContainer,
// startContainer, poststart, poststop).
//
// Threat model: hooks are arbitrary host binaries named by the bundle's config.json.
// They run as host root, with host paths, while the runtime holds the container's
// lock and often a half-built container. A hook that never exits, or that forks a
// daemon which keeps our output pipes open, must not wedge the runtime forever; a
// hook must always see a complete state document on stdin rather than a partial
// write; and it must not silently inherit the runtime's environment (which may carry
// credentials or proxy settings the config author never granted to the hook).
package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/internal/tailbuf"
)

// ErrTimeout is wrapped by the error of a hook killed for running past its timeout.
var ErrTimeout = errors.New("hook ran past its timeout")

// tailSize bounds how much of a hook's output we keep: enough to show why it failed,
// not enough for a chatty hook to balloon the runtime's memory.
const tailSize = 4096

// pipeGrace is how long we wait, after the hook process itself has exited (or been
// killed), for its leftover children to close the stdout/stderr pipes. Without a
// bound, a hook that backgrounds a daemon would hang the runtime in Wait.
var pipeGrace = 2 * time.Second

// Run executes hooks one after another, as the OCI runtime spec requires, and stops at
// the first failure. kind ("prestart", "poststop", ...) is only used in error messages,
// so a user can tell which hook list in config.json to look at.
//
// Each hook gets: argv = hook.Args (or just hook.Path when Args is empty), an
// environment of exactly hook.Env, the JSON encoding of st on stdin, and its own
// process group so that a timeout kills everything it started in that group.
func Run(kind string, hs []specs.Hook, st *specs.State) error {
	if len(hs) == 0 {
		return nil
	}
	// Encode once, before any hook starts: every hook then sees the same, complete
	// document, and an unencodable state fails before anything runs.
	state, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("%s hooks: encoding container state: %w", kind, err)
	}
	for i, h := range hs {
		if err := runOne(h, state); err != nil {
			return hookError(kind, i, h.Path, err)
		}
	}
	return nil
}

// RunAll executes every hook even when some fail, and returns the failures
// joined. poststart and poststop hooks need this: the spec says a failing one
// is only logged and the remaining hooks and the lifecycle continue.
func RunAll(kind string, hs []specs.Hook, st *specs.State) error {
	if len(hs) == 0 {
		return nil
	}
	state, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("%s hooks: encoding container state: %w", kind, err)
	}
	var errs []error
	for i, h := range hs {
		if err := runOne(h, state); err != nil {
			errs = append(errs, hookError(kind, i, h.Path, err))
		}
	}
	return errors.Join(errs...)
}

// hookError names the failed hook in runc's words ("error running
// prestart hook #1:", which scripts and runc's own tests match), then its
// path and what went wrong.
func hookError(kind string, i int, path string, err error) error {
	return fmt.Errorf("error running %s hook #%d: %s: %w", kind, i, path, err)
}

func runOne(h specs.Hook, state []byte) error {
	if !filepath.IsAbs(h.Path) {
		// exec.Cmd would resolve a relative Path against our working directory,
		// which is an accident of how the runtime was started.
		return errors.New("path must be absolute")
	}
	if h.Timeout != nil && *h.Timeout <= 0 {
		return fmt.Errorf("timeout must be greater than zero, got %d", *h.Timeout)
	}

	ctx := context.Background()
	var timeout time.Duration
	if h.Timeout != nil {
		timeout = time.Duration(*h.Timeout) * time.Second
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}

	args := h.Args
	if len(args) == 0 {
		args = []string{h.Path}
	}
	cmd := exec.CommandContext(ctx, h.Path)
	cmd.Args = args
	// A nil Env would make os/exec hand the hook our whole environment.
	cmd.Env = append([]string{}, h.Env...)
	cmd.Stdin = bytes.NewReader(state)
	stdout, stderr := newTailBuffer(), newTailBuffer()
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	// Pdeathsig: a runtime killed mid-create (SIGKILL, OOM) cannot kill its
	// hook, and a blocked hook would outlive the container that
	// `delete --force` cleans up. The signal fires when the forking thread
	// dies, so that thread stays ours until the hook has been waited for.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		// Kill the whole group: a shell-script hook's `sleep` child would otherwise
		// survive, keep the pipes open and outlive the timeout.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = pipeGrace

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting hook: %w", err)
	}
	err := cmd.Wait()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("%w (%s), killed%s", ErrTimeout, timeout, outputTail(stdout, stderr))
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		// The hook exited successfully but left a child holding its output pipes;
		// the hook's own result is what the spec asks us to judge.
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w%s", err, outputTail(stdout, stderr))
	}
	return nil
}

// outputTail formats what the hook printed for an error message. stderr is where hooks
// explain failures; stdout is the fallback for hooks that report errors there.
func outputTail(stdout, stderr tailBuffer) string {
	for _, b := range []tailBuffer{stderr, stdout} {
		if s := strings.TrimSpace(b.String()); s != "" {
			return ": " + s
		}
	}
	return ""
}

// tailBuffer keeps only the last tailSize bytes written to it; String
// marks a cut with "...".
type tailBuffer struct{ *tailbuf.Buffer }

func newTailBuffer() tailBuffer { return tailBuffer{tailbuf.New(tailSize)} }

func (t tailBuffer) String() string {
	if t.Truncated() {
		return "..." + t.Buffer.String()
	}
	return t.Buffer.String()
}
