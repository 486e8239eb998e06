// Package mapped does a rootless store's file work as root of a user
// namespace with the caller's whole rootless mapping (pkg/rootless.IDMaps:
// the caller's id as 0, the subordinate ranges above): unpacking a layer
// with the image's owners, copying an image's VOLUME content into a fresh
// volume or the whole image into a bundle's rootfs, and removing trees
// whose files belong to subordinate ids. It is
// what `podman unshare` is to Podman's store.
//
// Why: without root, a layer unpacked as the caller makes every file the
// caller's, so an image's other owners (/etc/shadow of group shadow, a
// service user's directories, setgid bits) are lost. In a namespace with
// the same mapping the rootless container later gets, chown to an image
// id lands on the host id that the container sees as that id again, so
// ownership inside the container is exact. The host ids are the caller's
// subordinate ids, so a setuid file of the image is setuid to an id the
// caller was granted, never to a host user's.
//
// Threat: the helper process handles hostile input (a layer) with
// capabilities; those are capabilities over its own user namespace only,
// whose ids newuidmap and newgidmap checked against /etc/subuid and
// /etc/subgid. It never runs image code, and it dies with its parent.
// One helper is long-lived and serves a running container:
// fuse-overlayfs (StartFuseOverlay), a rootless image snapshot where the
// kernel's overlayfs is refused. It answers the container's file requests
// with those same capabilities and the caller's own files within reach,
// so its confinement to the layers, upper and work directories is
// fuse-overlayfs's (tests/rootless_fuse_test.go tries to leave them); it
// ends with the container's mount namespace, not with its parent.
//
// How: the helper is this binary, re-executed twice: first into a new
// user and mount namespace with no map (the kernel drops the capabilities
// at that exec, as the caller's id is unmapped), where it waits until the
// parent has written the maps through newuidmap/newgidmap; then again, now
// as the namespace's root, which gives it the namespace's full
// capabilities. Serve must be the first thing both binaries' main runs.
//
// Not for root: root's store chowns directly (unpack.Options.Privileged).
package mapped

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/image/unpack"
	"github.com/bulwark-sec/bulwark/pkg/rootless"
)

// Environment of the helper: the operation, its argument (JSON) and the
// stage (unset in the first, namespace-entering exec).
const (
	envOp    = "_BULWARK_MAPPED_OP"
	envArg   = "_BULWARK_MAPPED_ARG"
	envStage = "_BULWARK_MAPPED_STAGE"
)

// Operations.
const (
	opUnpack  = "unpack"
	opRemove  = "remove"
	opVolumes = "volumes"
	opCopy    = "copy"
)

// result is what the helper prints on stdout.
type result struct {
	Stats  unpack.Stats `json:"stats"`
	Paths  []string     `json:"paths,omitempty"`
	Error  string       `json:"error,omitempty"`
	Entry  string       `json:"entry,omitempty"`
	Kind   string       `json:"kind,omitempty"`
	Mapped bool         `json:"mapped,omitempty"`
}

const (
	kindUnsafe   = "unsafe"
	kindTooLarge = "tooLarge"
	kindUnmapped = "unmapped"
)

// ErrHelper is wrapped by failures of the helper process itself (it could
// not start, enter its namespace or report).
var ErrHelper = errors.New("rootless user namespace helper")

// startHelper starts the helper for op with arg in a user and mount
// namespace of its own, writes the caller's maps for it (newuidmap and
// newgidmap, rootless.WriteIDMaps) and only then lets it go on: the
// helper waits on fd 3 until its ids are the container's. prepare sets
// the command's stdio and appends its further files (fd 4 on) before the
// start. A helper that could not be mapped is killed and reaped.
func startHelper(op string, arg any, prepare func(*exec.Cmd) error) (*exec.Cmd, error) {
	uids, gids, err := rootless.IDMaps()
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(arg)
	if err != nil {
		return nil, err
	}
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHelper, err)
	}
	defer syncR.Close()
	defer syncW.Close()
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{"bulwark-mapped-" + op}
	cmd.Env = []string{envOp + "=" + op, envArg + "=" + string(b)}
	cmd.ExtraFiles = []*os.File{syncR}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		Pdeathsig:  syscall.SIGKILL,
	}
	if err := prepare(cmd); err != nil {
		return cmd, fmt.Errorf("%w: %v", ErrHelper, err)
	}
	if err := cmd.Start(); err != nil {
		return cmd, fmt.Errorf("%w: start: %v", ErrHelper, err)
	}
	fail := func(err error) (*exec.Cmd, error) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return cmd, fmt.Errorf("%w: %w", ErrHelper, err)
	}
	if err := rootless.WriteIDMaps(cmd.Process.Pid, uids, gids); err != nil {
		return fail(err)
	}
	if _, err := syncW.Write([]byte{1}); err != nil {
		return fail(err)
	}
	return cmd, nil
}

// run starts the helper for op with arg, stdin feeding it, and returns
// its result. A result carrying an error is returned as it is.
func run(op string, arg any, stdin io.Reader) (result, error) {
	var res result
	var stdout, stderr bytes.Buffer
	var pw *os.File
	cmd, err := startHelper(op, arg, func(cmd *exec.Cmd) error {
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if stdin != nil {
			pr, w, err := os.Pipe()
			if err != nil {
				return err
			}
			cmd.Stdin, pw = pr, w
		}
		return nil
	})
	if pw != nil {
		defer pw.Close()
		defer cmd.Stdin.(*os.File).Close()
	}
	if err != nil {
		return res, err
	}
	copied := make(chan error, 1)
	if stdin != nil {
		cmd.Stdin.(*os.File).Close()
		go func() {
			_, err := io.Copy(pw, stdin)
			pw.Close()
			copied <- err
		}()
	} else {
		copied <- nil
	}
	waitErr := cmd.Wait()
	// The helper stops reading at the tar's end (or its first bad
	// entry); the copy then fails with EPIPE at its next write. Only then
	// may the caller read the rest of the stream (to hash it).
	copyErr := <-copied
	if copyErr != nil && errors.Is(copyErr, syscall.EPIPE) {
		copyErr = nil
	}
	if jerr := json.Unmarshal(stdout.Bytes(), &res); jerr != nil {
		if copyErr != nil {
			return res, copyErr
		}
		return res, fmt.Errorf("%w: %s: %v: %s", ErrHelper, op, waitErr, strings.TrimSpace(stderr.String()))
	}
	if copyErr != nil && res.Error != "" {
		// The source failed (a cancelled pull, a registry that hung up):
		// that is the cause, not the helper's truncated tar.
		return res, copyErr
	}
	return res, nil
}

// Unpack unpacks the tar stream r into dir (existing, empty, the
// caller's) in the mapped namespace, with the entries' owners. On
// failure dir is left empty. Errors wrap unpack's (ErrUnsafePath,
// ErrTooLarge, ErrUnmappedID with what to do about it) and name the entry.
func Unpack(r io.Reader, dir string, opts unpack.Options) (unpack.Stats, error) {
	opts.Owners, opts.UserXattr, opts.Privileged = true, true, false
	res, err := run(opUnpack, unpackArg{Dir: dir, Opts: opts}, r)
	if err != nil {
		return res.Stats, err
	}
	if res.Error == "" {
		return res.Stats, nil
	}
	var e error = errors.New(res.Error)
	switch res.Kind {
	case kindUnsafe:
		e = kindError{res.Error, unpack.ErrUnsafePath}
	case kindTooLarge:
		e = kindError{res.Error, unpack.ErrTooLarge}
	case kindUnmapped:
		e = kindError{fmt.Sprintf("%s: the image uses an id above what your ranges in %s and %s map (container ids 1 and up are those ranges, in order): grant larger ranges (65536 ids each covers every image's ids) and pull again",
			res.Error, rootless.SubUIDFile, rootless.SubGIDFile), unpack.ErrUnmappedID}
	}
	if res.Entry != "" {
		e = &unpack.EntryError{Entry: res.Entry, Err: e}
	}
	return res.Stats, e
}

// kindError is the helper's error text, matching the sentinel it wrapped
// there.
type kindError struct {
	msg  string
	kind error
}

func (e kindError) Error() string { return e.msg }
func (e kindError) Unwrap() error { return e.kind }

type unpackArg struct {
	Dir  string         `json:"dir"`
	Opts unpack.Options `json:"opts"`
}

// RemoveAll removes path and everything below it: as the caller first,
// then, for what the caller may not remove (files of subordinate ids, in
// directories of theirs), in the mapped namespace. Nothing there is an
// error.
func RemoveAll(path string) error {
	err := os.RemoveAll(path)
	if err == nil || !(errors.Is(err, os.ErrPermission) || errors.Is(err, unix.EPERM)) {
		return err
	}
	res, herr := run(opRemove, path, nil)
	if herr != nil {
		return fmt.Errorf("remove %s: %v; as the caller: %w", path, herr, err)
	}
	if res.Error != "" {
		return fmt.Errorf("remove %s (in your rootless user namespace): %s", path, res.Error)
	}
	return nil
}

// Record is the caller's rootless mapping as a store records it (one
// range a line), to notice a store unpacked under other ranges.
func Record() (string, error) {
	uids, gids, err := rootless.IDMaps()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, m := range uids {
		fmt.Fprintf(&b, "uid %d %d %d\n", m.ContainerID, m.HostID, m.Size)
	}
	for _, m := range gids {
		fmt.Fprintf(&b, "gid %d %d %d\n", m.ContainerID, m.HostID, m.Size)
	}
	return b.String(), nil
}

// Serve runs the helper when this process is one, and never returns
// then; otherwise it returns at once.
func Serve() {
	op := os.Getenv(envOp)
	if op == "" {
		return
	}
	if os.Getenv(envStage) == "" {
		enter()
	}
	if op == opFuse {
		serveFuse(os.Getenv(envArg))
	}
	os.Exit(serve(op, os.Getenv(envArg)))
}

// enter waits for the maps and re-executes this binary as the namespace's
// root.
func enter() {
	sync := os.NewFile(3, "sync")
	b := make([]byte, 1)
	if n, _ := sync.Read(b); n != 1 {
		os.Exit(3) // the parent failed to map us; it says why
	}
	sync.Close()
	env := append(os.Environ(), envStage+"=2")
	err := unix.Exec("/proc/self/exe", os.Args, env)
	fmt.Fprintf(os.Stderr, "re-exec in the user namespace: %v\n", err)
	os.Exit(3)
}

func serve(op, arg string) int {
	// Credentials changed at the exec, which cleared the parent-death
	// signal: set it again, and stop if the parent is already gone.
	ppid := os.Getppid()
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
	if os.Getppid() != ppid || ppid == 1 {
		return 3
	}
	var res result
	if os.Geteuid() != 0 {
		res.Error = fmt.Sprintf("not root in the user namespace (uid %d): the maps were not written", os.Geteuid())
	} else {
		switch op {
		case opUnpack:
			res = serveUnpack(arg)
		case opRemove:
			var p string
			if err := json.Unmarshal([]byte(arg), &p); err != nil {
				res.Error = err.Error()
			} else if err := os.RemoveAll(p); err != nil {
				res.Error = err.Error()
			}
		case opVolumes:
			res = serveVolumes(arg)
		case opCopy:
			res = serveCopy(arg)
		default:
			res.Error = "unknown operation " + op
		}
	}
	res.Mapped = true
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return 3
	}
	return 0
}

func serveUnpack(arg string) result {
	var a unpackArg
	if err := json.Unmarshal([]byte(arg), &a); err != nil {
		return result{Error: err.Error()}
	}
	stats, err := unpack.Unpack(os.Stdin, a.Dir, a.Opts)
	res := result{Stats: stats}
	if err == nil {
		return res
	}
	// Leave dir empty: the caller cannot remove what belongs to
	// subordinate ids.
	if ents, rerr := os.ReadDir(a.Dir); rerr == nil {
		for _, e := range ents {
			_ = os.RemoveAll(a.Dir + "/" + e.Name())
		}
	}
	var ee *unpack.EntryError
	if errors.As(err, &ee) {
		res.Entry = ee.Entry
		err = ee.Err
	}
	res.Error = err.Error()
	switch {
	case errors.Is(err, unpack.ErrUnmappedID):
		res.Kind = kindUnmapped
	case errors.Is(err, unpack.ErrUnsafePath):
		res.Kind = kindUnsafe
	case errors.Is(err, unpack.ErrTooLarge):
		res.Kind = kindTooLarge
	}
	return res
}
