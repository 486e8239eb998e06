// Package toolsproto is how the bulwark binary asks bulwark-tools, its
// companion binary, to run a flow whose dependencies are too heavy for the
// binary every container start maps and re-executes (a registry client,
// TLS, HTTP, decompressors, YAML; docs/ARCHITECTURE.md, "Two binaries").
// Both sides import it: pkg/userface calls, pkg/userface/tools serves. One
// request per process: the request as JSON in the only argument, stdin
// passed through (load and audit read it), progress lines on fd 3, the
// Reply as JSON on stdout, anything else on stderr.
//
// Threat: bulwark runs as root and executes bulwark-tools, so whoever can
// replace that file runs as root. It is opened with pkg/safefile (owned by
// root or by the user running bulwark, writable by nobody else, no symlink
// at its name) and executed through that descriptor, so the file checked
// is the file that runs.
package toolsproto

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/bulwark-sec/bulwark/pkg/safefile"
)

// Suffix names the companion: /usr/local/bin/bulwark runs
// /usr/local/bin/bulwark-tools (scripts/build.sh builds both).
const Suffix = "-tools"

// The flows bulwark-tools serves.
const (
	OpPull  = "pull"  // Arg: the reference; Result: store.Image
	OpLoad  = "load"  // Arg: archive or layout path, "" or "-" for stdin; Result: []store.Image
	OpAudit = "audit" // Arg: the target; Result: *finding.Report
	// OpCNIAdd and OpCNIDel run a network attachment's plugins (libcni).
	// Arg: the call as JSON (pkg/network/cni.Call); Result: cni.Result.
	OpCNIAdd = "cni-add"
	OpCNIDel = "cni-del"
)

// ProgressFd is the descriptor bulwark-tools writes progress lines to,
// one per line, when Request.Progress is set.
const ProgressFd = 3

// binaryFd is where the caller puts the checked binary in the child, to
// execute it as /proc/self/fd/4.
const binaryFd = 4

// Request is one flow to run.
type Request struct {
	Op       string `json:"op"`
	DataRoot string `json:"dataRoot"`
	Arg      string `json:"arg"`
	// Timeout is a pull's: how long the registry may send nothing.
	Timeout  time.Duration `json:"timeout,omitempty"`
	Progress bool          `json:"progress,omitempty"`
	// Bars asks for progress bars drawn on stderr, a terminal, instead
	// of progress lines.
	Bars bool `json:"bars,omitempty"`
}

// Reply is what bulwark-tools prints: the flow's result, which may be
// partial (a load that stopped halfway), and its error as text.
type Reply struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// Path is the companion of the running binary.
func Path() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("locate the bulwark binary: %w", err)
	}
	return self + Suffix, nil
}

// Call runs req in bulwark-tools and decodes its result into result,
// also when the flow failed partway. stdin may be nil; progress, when not
// nil, gets each progress line. Cancelling ctx sends SIGTERM, then SIGKILL
// after ten seconds.
func Call(ctx context.Context, req Request, stdin io.Reader, progress func(string), result any) error {
	path, err := Path()
	if err != nil {
		return err
	}
	bin, err := safefile.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s needs %s, which is missing: scripts/build.sh builds and installs it next to bulwark: %w", req.Op, path, err)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", req.Op, err)
	}
	defer bin.Close()
	req.Progress = progress != nil
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, fmt.Sprintf("/proc/self/fd/%d", binaryFd), string(b))
	cmd.Args[0] = "bulwark" + Suffix
	cmd.Stdin, cmd.Stderr = stdin, os.Stderr
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	// bulwark killed is the flow killed, as when it ran in one process.
	// The kernel ties the signal to the thread that forked: keep it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var pr, pw *os.File
	if progress != nil {
		if pr, pw, err = os.Pipe(); err != nil {
			return err
		}
		defer pr.Close()
	}
	// fd 3 is the progress pipe (closed when nil), fd 4 the binary.
	cmd.ExtraFiles = []*os.File{pw, bin}
	err = cmd.Start()
	if pw != nil {
		pw.Close()
	}
	if err != nil {
		return fmt.Errorf("%s: start %s: %w", req.Op, path, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if pr == nil {
			return
		}
		s := bufio.NewScanner(pr)
		for s.Scan() {
			progress(s.Text())
		}
	}()
	werr := cmd.Wait()
	<-done
	var r Reply
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		if werr != nil {
			return fmt.Errorf("%s: %s: %w", req.Op, path, werr)
		}
		return fmt.Errorf("%s: %s replied %q: %w", req.Op, path, out.Bytes(), err)
	}
	if len(r.Result) > 0 && result != nil {
		if err := json.Unmarshal(r.Result, result); err != nil {
			return fmt.Errorf("%s: %s: result: %w", req.Op, path, err)
		}
	}
	if r.Error != "" {
		return errors.New(r.Error)
	}
	return nil
}

// Serve reads the request bulwark-tools was started with (its arguments
// after the program name), runs it with do and prints the Reply. It
// returns the exit status: 0 once a Reply is printed, 2 for arguments no
// bulwark sends (a person running the helper by hand).
func Serve(args []string, stdout io.Writer, do func(ctx context.Context, req Request, progress func(format string, args ...any)) (any, error)) int {
	var req Request
	if len(args) != 1 || json.Unmarshal([]byte(args[0]), &req) != nil || req.Op == "" {
		fmt.Fprintf(os.Stderr, "bulwark%s: an internal helper, started by bulwark (pull, load, audit); run those instead\n", Suffix)
		return 2
	}
	// Nothing of ours is executed from this process: drop the binary's fd.
	syscall.Close(binaryFd)
	var progress func(format string, args ...any)
	if req.Progress {
		w := os.NewFile(ProgressFd, "progress")
		progress = func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	}
	// A person's ^C reaches the whole process group, and bulwark's
	// cancelling sends SIGTERM: both end the flow as its context.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := do(ctx, req, progress)
	var r Reply
	if res != nil {
		b, merr := json.Marshal(res)
		if merr != nil && err == nil {
			err = merr
		}
		r.Result = b
	}
	if err != nil {
		r.Error = err.Error()
	}
	if err := json.NewEncoder(stdout).Encode(r); err != nil {
		fmt.Fprintf(os.Stderr, "bulwark%s: reply: %v\n", Suffix, err)
		return 1
	}
	return 0
}
