package containerinit

import (
	"strings"

	"github.com/bulwark-sec/bulwark/pkg/passwd"
)

// withHome returns env with HOME set, as runc does, when the config has
// none: git's global config, the Go toolchain and pip refuse to run
// without it. The value is the home directory of uid in the container's
// /etc/passwd, or "/" when it has no entry (or no readable file). It runs
// after pivot_root, so the image's file is read, and a symlink in it
// resolves inside the container.
func withHome(env []string, uid uint32) []string {
	for _, e := range env {
		if strings.HasPrefix(e, "HOME=") {
			return env
		}
	}
	home := "/"
	if u, err := passwd.UserByUID("/etc/passwd", uid); err == nil && strings.HasPrefix(u.Home, "/") {
		home = u.Home
	}
	return append(env[:len(env):len(env)], "HOME="+home)
}
