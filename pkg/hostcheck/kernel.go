package hostcheck

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Version is a kernel version: 6.1.76 is {6, 1, 76}; 2.6.24.2 is
// {2, 6, 24, 2}.
type Version []int

// ParseVersion reads the leading dotted numbers of a release string
// ("6.1.0-18-amd64", "5.15.0-91-generic", "6.8.0-rc2"): two to four of
// them. Not a regexp: KernelCVEs parses its versions when the package is
// initialised, which is on every container start of the binary.
func ParseVersion(s string) (Version, error) {
	rest := strings.TrimSpace(s)
	var v Version
	for len(v) < 4 {
		if len(v) > 0 {
			r, ok := strings.CutPrefix(rest, ".")
			if !ok || r == "" || r[0] < '0' || r[0] > '9' {
				break
			}
			rest = r
		}
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 {
			break
		}
		n, err := strconv.Atoi(rest[:i])
		if err != nil {
			return nil, fmt.Errorf("kernel release %q: %w", s, err)
		}
		v, rest = append(v, n), rest[i:]
	}
	if len(v) < 2 {
		return nil, fmt.Errorf("kernel release %q: no version number (want at least major.minor)", s)
	}
	return v, nil
}

func (v Version) String() string {
	parts := make([]string, len(v))
	for i, n := range v {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ".")
}

// Compare orders versions, missing components counting as 0.
func (v Version) Compare(w Version) int {
	for i := range max(len(v), len(w)) {
		a, b := at(v, i), at(w, i)
		if a != b {
			if a < b {
				return -1
			}
			return 1
		}
	}
	return 0
}

func at(v Version, i int) int {
	if i < len(v) {
		return v[i]
	}
	return 0
}

// series is the stable branch a version belongs to: 6.1 for 6.1.76, and
// 2.6.24 for 2.6.24.2 (before 3.0 the branch had three numbers).
func (v Version) series() string {
	n := 2
	if at(v, 0) == 2 {
		n = 3
	}
	return Version(v[:min(n, len(v))]).String()
}

// KernelCVE is one known container-relevant kernel bug.
type KernelCVE struct {
	ID   string
	Name string
	// What a container gets from it.
	Impact string
	// Introduced is the first release with the bug.
	Introduced Version
	// Mainline is the first mainline release with the fix (x.y).
	Mainline Version
	// Stable lists the first fixed release of each stable branch that got
	// the fix before Mainline.
	Stable []Version
	// Mitigation is what helps until the kernel is updated ("" when
	// nothing in a configuration does).
	Mitigation string
	// Source describes the bug (NVD, or the finder's write-up); FixSource
	// is where each Stable version was checked.
	Source    string
	FixSource string
}

// streamFixes is a record, per CVE and stable branch, of the first release
// whose git history holds the fix (matched by upstream commit id); it
// covers 3.2 onwards, but not the 3.4 and 3.10 branches.
const streamFixes = "https://github.com/nluedtke/linux_kernel_cves/blob/master/data/stream_fixes.json"

func v(s string) Version {
	ver, err := ParseVersion(s)
	if err != nil {
		panic(err)
	}
	return ver
}

func vs(ss ...string) []Version {
	out := make([]Version, len(ss))
	for i, s := range ss {
		out[i] = v(s)
	}
	return out
}

// KernelCVEs is the shipped table: the kernel bugs used to escape
// containers or that a container's root reaches, with the first fixed
// release per stable branch, each checked against FixSource. A branch
// whose fix could not be checked is left out: its kernels count as
// affected (a false alarm on an old branch rather than a missed bug).
// Only kernel bugs: runc's CVE-2019-5736 is the runtime's.
var KernelCVEs = []KernelCVE{
	{
		ID: "CVE-2008-0600", Name: "vmsplice",
		Impact:     "the talk's example of a buggy syscall: vmsplice_to_pipe did not check a user pointer, root from any process in any container",
		Introduced: v("2.6.17"), Mainline: v("2.6.25"), Stable: vs("2.6.22.18", "2.6.24.2"),
		Mitigation: "a seccomp profile without vmsplice (Bulwark's default allows it: the bug is long fixed)",
		Source:     "https://nvd.nist.gov/vuln/detail/CVE-2008-0600",
		// NVD: 2.6.17 through 2.6.24.1. 2.6.22.18: openSUSE's kernel
		// changelog drops its vmsplice-pipe-exploit patch on updating
		// to it as upstreamed. 2.6.23.16 (likely, released with
		// 2.6.24.2) is not confirmed by a source reachable here, so the
		// 2.6.23 branch counts as unfixed.
		FixSource: "https://nvd.nist.gov/vuln/detail/CVE-2008-0600",
	},
	{
		ID: "CVE-2016-5195", Name: "Dirty COW",
		Impact:     "a copy-on-write race writes read-only files and mappings: the host's binaries and the vDSO, a container escape",
		Introduced: v("2.6.22"), Mainline: v("4.9"), Stable: vs("3.12.66", "3.16.38", "3.18.44", "4.1.35", "4.4.26", "4.7.9", "4.8.3"),
		Mitigation: "",
		Source:     "https://nvd.nist.gov/vuln/detail/CVE-2016-5195",
		// 3.16.38 and 4.1.35 were missing. 3.2.83, 3.4.113 and
		// 3.10.104 were listed without a source: the record finds no
		// fix in the 3.2 branch (through 3.2.102) and does not cover
		// 3.4 and 3.10, so those branches count as unfixed.
		FixSource: streamFixes,
	},
	{
		ID: "CVE-2021-22555", Name: "netfilter x_tables heap out-of-bounds write",
		Impact:     "root from a process with CAP_NET_ADMIN in a user namespace: the published exploit escapes Kubernetes pods",
		Introduced: v("2.6.19"), Mainline: v("5.12"), Stable: vs("4.4.267", "4.9.267", "4.14.231", "4.19.188", "5.4.113", "5.10.31", "5.11.15"),
		Mitigation: "no unprivileged user namespaces on the host; seccomp denying unshare(CLONE_NEWUSER) in containers (Bulwark's default does)",
		Source:     "https://google.github.io/security-research/pocs/linux/cve-2021-22555/writeup.html",
		FixSource:  streamFixes, // 5.11.15, not 5.11.16
	},
	{
		ID: "CVE-2022-0185", Name: "fs_context legacy_parse_param heap overflow",
		Impact:     "root from CAP_SYS_ADMIN in a user namespace (fsconfig): used to escape Kubernetes pods",
		Introduced: v("5.1"), Mainline: v("5.17"), Stable: vs("5.4.173", "5.10.93", "5.15.16", "5.16.2"),
		Mitigation: "no unprivileged user namespaces; seccomp denying unshare(CLONE_NEWUSER) and fsconfig (Bulwark's default does)",
		Source:     "https://nvd.nist.gov/vuln/detail/CVE-2022-0185",
		FixSource:  streamFixes,
	},
	{
		ID: "CVE-2022-0492", Name: "cgroup v1 release_agent",
		Impact:     "a container that can mount cgroupfs (CAP_SYS_ADMIN, or a user namespace without AppArmor/SELinux/seccomp) writes release_agent and runs a program as host root",
		Introduced: v("2.6.24"), Mainline: v("5.17"), Stable: vs("4.9.301", "4.14.266", "4.19.229", "5.4.177", "5.10.97", "5.15.20", "5.16.6"),
		Mitigation: "cgroup v2 (no release_agent); no CAP_SYS_ADMIN; seccomp or an LSM in containers",
		Source:     "https://unit42.paloaltonetworks.com/cve-2022-0492-cgroups/",
		FixSource:  streamFixes,
	},
	{
		ID: "CVE-2022-0847", Name: "Dirty Pipe",
		Impact:     "any process overwrites page-cache pages of files it can only read: the host's runc or a setuid binary shared through an image layer",
		Introduced: v("5.8"), Mainline: v("5.17"), Stable: vs("5.10.102", "5.15.25", "5.16.11"),
		Mitigation: "",
		Source:     "https://dirtypipe.cm4all.com/",
		FixSource:  streamFixes,
	},
	{
		ID: "CVE-2024-1086", Name: "nf_tables nft_verdict_init use-after-free",
		Impact:     "root from an unprivileged user namespace with nf_tables: a public exploit works on most distributions",
		Introduced: v("3.15"), Mainline: v("6.8"), Stable: vs("4.19.307", "5.4.269", "5.10.210", "5.15.149", "6.1.76", "6.6.15", "6.7.3"),
		Mitigation: "no unprivileged user namespaces (kernel.unprivileged_userns_clone=0 or user.max_user_namespaces=0 where nothing needs them); blacklist nf_tables where unused",
		Source:     "https://nvd.nist.gov/vuln/detail/CVE-2024-1086",
		FixSource:  streamFixes, // 4.19.307 and 5.10.210, not .306 and .209
	},
}

// Affected says whether kernel k has the bug, by version alone.
func (c KernelCVE) Affected(k Version) bool {
	if k.Compare(c.Introduced) < 0 || k.Compare(c.Mainline) >= 0 {
		return false
	}
	series := k.series()
	i := slices.IndexFunc(c.Stable, func(f Version) bool { return f.series() == series })
	if i < 0 {
		// A branch the fix was never backported to (end of life).
		return true
	}
	return k.Compare(c.Stable[i]) < 0
}

// FixedIn names the release that fixes c on k's branch.
func (c KernelCVE) FixedIn(k Version) string {
	series := k.series()
	for _, f := range c.Stable {
		if f.series() == series {
			return f.String()
		}
	}
	return c.Mainline.String() + " (no fixed " + series + ".x release known to this table)"
}

// distroVersion is the upstream version a distribution kernel is built
// from, when /proc/version says it: Debian's "6.1.0-18-amd64" release is
// "Debian 6.1.76-1" there.
var distroVersionRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`Debian (\d+\.\d+\.\d+)`) })

func distroVersion(procVersion string) (Version, bool) {
	m := distroVersionRE().FindStringSubmatch(procVersion)
	if m == nil {
		return nil, false
	}
	ver, err := ParseVersion(m[1])
	return ver, err == nil
}
