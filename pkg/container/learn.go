package container

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/safefile"
)

// learnOutput is where an engine's container asks for its learned profile
// (oci.AnnotationLearn=PATH); "" when it asks for none. PATH must be
// absolute and clean, in a directory that exists and only root can write:
// the profile is written there as root, and a directory anyone can write
// is one where a planted symlink or a swapped directory could send that
// write elsewhere. "record", the person's `bulwark learn`, is refused in a
// bundle: nothing there would answer the recording init.
func learnOutput(s *specs.Spec) (string, error) {
	v, ok := s.Annotations[oci.AnnotationLearn]
	if !ok {
		return "", nil
	}
	field := "annotations." + oci.AnnotationLearn
	bad := func(msg string, err error) (string, error) {
		return "", &oci.FieldError{File: oci.ConfigFile, Field: field, Msg: msg, Err: err}
	}
	switch {
	case v == "record":
		return bad("\"record\" is `bulwark learn`'s; a bundle names the file to write: run.bulwark.learn=/ABSOLUTE/PATH.json", oci.ErrInvalidConfig)
	case !filepath.IsAbs(v) || filepath.Clean(v) != v || filepath.Base(v) == "/":
		return bad(fmt.Sprintf("%q: want an absolute, clean path of the profile file to write", v), oci.ErrInvalidConfig)
	}
	if err := safefile.CheckDir(filepath.Dir(v)); err != nil {
		return bad(fmt.Sprintf("%q: its directory must exist and be writable by root alone", v), err)
	}
	return v, nil
}

// startRecorder starts `bulwark learn-recorder ID`, which outlives create:
// it takes the recording filter's listener when start loads it, answers
// every call until the container's last process is gone, and writes the
// profile (pkg/userface RecordForEngine). In a session of its own, with
// no stdio: an engine waits for EOF on the pipes it gave create.
func (r *Runtime) startRecorder(id string) error {
	null, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer null.Close()
	cmd := exec.Command("/proc/self/exe", "--root", r.Root, "learn-recorder", id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: starting the recorder: %w", oci.AnnotationLearn, err)
	}
	return cmd.Process.Release()
}
