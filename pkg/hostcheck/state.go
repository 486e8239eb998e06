package hostcheck

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/bulwark-sec/bulwark/pkg/finding"
	"github.com/bulwark-sec/bulwark/pkg/policy"
)

// bulwarkState checks what Bulwark itself trusts: its state directory
// (container state, pid files, seccomp cache: whoever writes there decides
// what the runtime does to a container) and the host policy file (whoever
// writes it turns the floor off).
func (c *checker) bulwarkState() {
	if c.o.StateDir != "" {
		c.ownedByRoot(c.o.StateDir, "state-dir", "Bulwark's state directory (--root)",
			"a user who can write there plants state.json and seccomp cache entries the runtime trusts: another container's config, a filter that allows everything")
	}
	if c.o.PolicyPath == "" {
		return
	}
	c.ownedByRoot(c.o.PolicyPath, "policy-file", "the policy file",
		"a user who can write it switches the hardening floor off for every container")
	pf, err := policy.LoadPolicyFile(c.path(c.o.PolicyPath))
	switch {
	case err != nil:
		c.add("policy-invalid", finding.High, c.o.PolicyPath, "the policy file cannot be used: "+err.Error(),
			"bulwark refuses to create containers while its policy file is invalid or writable by others", "fix or remove "+c.o.PolicyPath)
		return
	case pf == nil:
		c.facts["hardening floor"] = "off (no " + c.o.PolicyPath + ")"
	case pf.Harden:
		c.facts["hardening floor"] = "on (" + c.o.PolicyPath + ")"
		return
	default:
		c.facts["hardening floor"] = "off (" + c.o.PolicyPath + " has harden: false)"
	}
	c.floorOff = true
	c.add("floor-off", finding.Low, c.o.PolicyPath, "the hardening floor is off for containers engines start through Bulwark",
		"in OCI mode Bulwark runs the engine's config as written: Docker's NET_RAW and MKNOD, no no_new_privs, no pids limit, no seccomp when the config has none",
		`write {"harden": true} to `+c.o.PolicyPath+" (or register with bulwark install --harden)")
}

// ownedByRoot finds a path that someone other than root can write.
func (c *checker) ownedByRoot(p, id, what, reason string) {
	fi, err := os.Lstat(c.path(p))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			c.facts[what] = p + " (not created yet)"
		} else {
			c.add(id+"-unreadable", finding.Low, p, fmt.Sprintf("cannot inspect %s: %v", what, err), reason, "")
		}
		return
	}
	c.facts[what] = fmt.Sprintf("%s (%s)", p, fi.Mode())
	st, _ := fi.Sys().(*syscall.Stat_t)
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		c.add(id+"-symlink", finding.Medium, p, what+" is a symlink", reason+"; a symlink moves it wherever its target's owner wants", "replace it with a root-owned directory or file")
	case st != nil && st.Uid != 0:
		c.add(id+"-owner", finding.High, p, fmt.Sprintf("%s is owned by uid %d, not root", what, st.Uid), reason, "chown root:root "+p)
	case fi.Mode().Perm()&0o022 != 0:
		c.add(id+"-writable", finding.High, p, fmt.Sprintf("%s is writable by group or others (%s)", what, fi.Mode().Perm()), reason, "chmod go-w "+p)
	case fi.IsDir() && fi.Mode().Perm()&0o005 != 0:
		c.add(id+"-readable", finding.Low, p, fmt.Sprintf("%s is readable by others (%s)", what, fi.Mode().Perm()),
			"container configs, with their environment and mounts, are readable by every user", "chmod 700 "+p)
	}
}
