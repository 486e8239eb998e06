package cni

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"runtime"
	"syscall"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

// pluginExec runs each plugin as libcni's own exec does, but dies with its
// parent: when bulwark is killed mid-ADD (and bulwark-tools with it), a
// plugin that went on would add its veth, lease or rules after the next
// delete -f or gc had run DEL, and leave them. Killed mid-ADD, it leaves
// what a DEL removes.
type pluginExec struct{ version.PluginDecoder }

func (pluginExec) ExecPlugin(ctx context.Context, path string, stdin []byte, env []string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	c := exec.CommandContext(ctx, path)
	c.Env, c.Stdin, c.Stdout, c.Stderr = env, bytes.NewReader(stdin), &stdout, &stderr
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// The parent-death signal follows the thread that forked.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := c.Run(); err != nil {
		// A plugin reports its error as a CNI error object on stdout.
		e := &types.Error{}
		switch {
		case stdout.Len() == 0 && stderr.Len() == 0:
			e.Msg = fmt.Sprintf("plugin %s failed with no error message: %v", path, err)
		case stdout.Len() == 0:
			e.Msg = fmt.Sprintf("plugin %s failed: %q", path, stderr.String())
		default:
			if jerr := json.Unmarshal(stdout.Bytes(), e); jerr != nil {
				e.Msg = fmt.Sprintf("plugin %s failed, and its error %q is not CNI's: %v", path, stdout.String(), jerr)
			}
		}
		return nil, e
	}
	return stdout.Bytes(), nil
}

func (pluginExec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}
