// deadline runs a command with a time limit: deadline SECONDS PROG ARGS...
// The command runs in a process group of its own; when the time is up the
// whole group is killed and deadline prints "TIMEOUT after Ns" as its last
// line. Otherwise it exits with the command's status, after killing what the
// command left behind in its group: an attempt's background child (a ptraced
// sleep left in a stop that SIGTERM does not end) would otherwise hold the
// caller's pipe open for ever, after deadline itself has returned. The escape suite wraps each attempt in it, so
// one attempt that hangs on a loaded host is reported as a timeout instead
// of taking the whole configuration's run with it.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/bulwark-sec/bulwark/tests/payloads/internal/payload"
)

func main() {
	if len(os.Args) < 3 {
		payload.Usage("usage: deadline SECONDS PROG [ARGS...]")
	}
	secs, err := strconv.Atoi(os.Args[1])
	if err != nil || secs <= 0 {
		payload.Usage("deadline: SECONDS must be a positive integer, not %q", os.Args[1])
	}
	cmd := exec.Command(os.Args[2], os.Args[3:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		os.Exit(127)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			os.Exit(ee.ExitCode() & 0xff)
		}
		if err != nil {
			os.Exit(1)
		}
	case <-time.After(time.Duration(secs) * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		fmt.Printf("TIMEOUT after %ds\n", secs)
		os.Exit(124)
	}
}
