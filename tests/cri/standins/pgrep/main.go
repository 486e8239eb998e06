// pgrep stands in for procps' pgrep in critest's images (Debian's busybox
// has none): it prints the pid of every other process whose name (or, with
// -f, whole command line) matches the extended regular expression, and
// exits 1 when none does, 2 on bad usage. critest's "execSync with
// timeout" uses it to prove a timed-out exec's process is gone.
package main

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

func main() {
	full, exact := false, false
	var args []string
	for _, a := range os.Args[1:] {
		switch a {
		case "-f":
			full = true
		case "-x":
			exact = true
		default:
			if strings.HasPrefix(a, "-") {
				fmt.Fprintf(os.Stderr, "pgrep: unsupported option %s (only -f and -x)\n", a)
				os.Exit(2)
			}
			args = append(args, a)
		}
	}
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: pgrep [-f] [-x] PATTERN")
		os.Exit(2)
	}
	pattern := args[0]
	if exact {
		pattern = "^(" + pattern + ")$"
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgrep: pattern %q: %v\n", args[0], err)
		os.Exit(2)
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgrep: %v\n", err)
		os.Exit(3)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if re.MatchString(name(pid, full)) {
			pids = append(pids, pid)
		}
	}
	if len(pids) == 0 {
		os.Exit(1)
	}
	sort.Ints(pids)
	for _, p := range pids {
		fmt.Println(p)
	}
}

// name is what pgrep matches: the process's comm, or its command line
// with the arguments joined by spaces (a process without one, a kernel
// thread or a zombie, is matched by comm, as procps does).
func name(pid int, full bool) string {
	if full {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && len(b) > 0 {
			return string(bytes.TrimRight(bytes.ReplaceAll(b, []byte{0}, []byte{' '}), " "))
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}
