package rootfs

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// mountOpts is the parsed form of one OCI mount's "options" list.
type mountOpts struct {
	flags       int   // MS_* to set
	clear       int   // MS_* the user explicitly asked to be cleared ("rw", "suid", ...)
	propagation []int // applied one by one after the mount exists
	recAttr     *unix.MountAttr
	data        []string // filesystem-specific options, passed to mount(2) verbatim
	idmap       bool     // idmapped mount of the source's top mount only
	ridmap      bool     // idmapped mount applied to the whole tree
	tmpcopyup   bool     // copy the covered directory's contents into a new tmpfs (runc, crun)
}

// optKind says which part of mountOpts a table entry feeds.
type optKind int

const (
	optFlag optKind = iota
	optClear
	optPropagation
	optRecAttr
	optIDMap
	optTmpCopyUp
)

type optSpec struct {
	kind optKind
	flag int    // MS_* for optFlag/optClear/optPropagation
	set  uint64 // MOUNT_ATTR_* to set (optRecAttr)
	clr  uint64 // MOUNT_ATTR_* to clear (optRecAttr)
	rec  bool   // optIDMap: recursive
}

// mountOptTable is the single source of truth for option names, kept as one
// table so it can be replaced wholesale by pkg/oci's parser later. Names and
// semantics follow mount(8) and runc; anything not listed is filesystem data.
var mountOptTable = map[string]optSpec{
	"defaults":      {kind: optFlag, flag: 0},
	"async":         {kind: optClear, flag: unix.MS_SYNCHRONOUS},
	"atime":         {kind: optClear, flag: unix.MS_NOATIME},
	"bind":          {kind: optFlag, flag: unix.MS_BIND},
	"dev":           {kind: optClear, flag: unix.MS_NODEV},
	"diratime":      {kind: optClear, flag: unix.MS_NODIRATIME},
	"dirsync":       {kind: optFlag, flag: unix.MS_DIRSYNC},
	"exec":          {kind: optClear, flag: unix.MS_NOEXEC},
	"iversion":      {kind: optFlag, flag: unix.MS_I_VERSION},
	"lazytime":      {kind: optFlag, flag: unix.MS_LAZYTIME},
	"loud":          {kind: optClear, flag: unix.MS_SILENT},
	"mand":          {kind: optFlag, flag: unix.MS_MANDLOCK},
	"noatime":       {kind: optFlag, flag: unix.MS_NOATIME},
	"nodev":         {kind: optFlag, flag: unix.MS_NODEV},
	"nodiratime":    {kind: optFlag, flag: unix.MS_NODIRATIME},
	"noexec":        {kind: optFlag, flag: unix.MS_NOEXEC},
	"noiversion":    {kind: optClear, flag: unix.MS_I_VERSION},
	"nolazytime":    {kind: optClear, flag: unix.MS_LAZYTIME},
	"nomand":        {kind: optClear, flag: unix.MS_MANDLOCK},
	"norelatime":    {kind: optClear, flag: unix.MS_RELATIME},
	"nostrictatime": {kind: optClear, flag: unix.MS_STRICTATIME},
	"nosuid":        {kind: optFlag, flag: unix.MS_NOSUID},
	"nosymfollow":   {kind: optFlag, flag: unix.MS_NOSYMFOLLOW},
	"rbind":         {kind: optFlag, flag: unix.MS_BIND | unix.MS_REC},
	"relatime":      {kind: optFlag, flag: unix.MS_RELATIME},
	"remount":       {kind: optFlag, flag: unix.MS_REMOUNT},
	"ro":            {kind: optFlag, flag: unix.MS_RDONLY},
	"rw":            {kind: optClear, flag: unix.MS_RDONLY},
	"silent":        {kind: optFlag, flag: unix.MS_SILENT},
	"strictatime":   {kind: optFlag, flag: unix.MS_STRICTATIME},
	"suid":          {kind: optClear, flag: unix.MS_NOSUID},
	"sync":          {kind: optFlag, flag: unix.MS_SYNCHRONOUS},
	"symfollow":     {kind: optClear, flag: unix.MS_NOSYMFOLLOW},

	"private":     {kind: optPropagation, flag: unix.MS_PRIVATE},
	"rprivate":    {kind: optPropagation, flag: unix.MS_PRIVATE | unix.MS_REC},
	"shared":      {kind: optPropagation, flag: unix.MS_SHARED},
	"rshared":     {kind: optPropagation, flag: unix.MS_SHARED | unix.MS_REC},
	"slave":       {kind: optPropagation, flag: unix.MS_SLAVE},
	"rslave":      {kind: optPropagation, flag: unix.MS_SLAVE | unix.MS_REC},
	"unbindable":  {kind: optPropagation, flag: unix.MS_UNBINDABLE},
	"runbindable": {kind: optPropagation, flag: unix.MS_UNBINDABLE | unix.MS_REC},

	"rro":          {kind: optRecAttr, set: unix.MOUNT_ATTR_RDONLY},
	"rrw":          {kind: optRecAttr, clr: unix.MOUNT_ATTR_RDONLY},
	"rnosuid":      {kind: optRecAttr, set: unix.MOUNT_ATTR_NOSUID},
	"rsuid":        {kind: optRecAttr, clr: unix.MOUNT_ATTR_NOSUID},
	"rnodev":       {kind: optRecAttr, set: unix.MOUNT_ATTR_NODEV},
	"rdev":         {kind: optRecAttr, clr: unix.MOUNT_ATTR_NODEV},
	"rnoexec":      {kind: optRecAttr, set: unix.MOUNT_ATTR_NOEXEC},
	"rexec":        {kind: optRecAttr, clr: unix.MOUNT_ATTR_NOEXEC},
	"rnodiratime":  {kind: optRecAttr, set: unix.MOUNT_ATTR_NODIRATIME},
	"rdiratime":    {kind: optRecAttr, clr: unix.MOUNT_ATTR_NODIRATIME},
	"rrelatime":    {kind: optRecAttr, set: unix.MOUNT_ATTR_RELATIME, clr: unix.MOUNT_ATTR__ATIME},
	"rnorelatime":  {kind: optRecAttr, clr: unix.MOUNT_ATTR__ATIME},
	"rnoatime":     {kind: optRecAttr, set: unix.MOUNT_ATTR_NOATIME, clr: unix.MOUNT_ATTR__ATIME},
	"ratime":       {kind: optRecAttr, clr: unix.MOUNT_ATTR__ATIME},
	"rstrictatime": {kind: optRecAttr, set: unix.MOUNT_ATTR_STRICTATIME, clr: unix.MOUNT_ATTR__ATIME},
	"rnosymfollow": {kind: optRecAttr, set: unix.MOUNT_ATTR_NOSYMFOLLOW},
	"rsymfollow":   {kind: optRecAttr, clr: unix.MOUNT_ATTR_NOSYMFOLLOW},

	"idmap":  {kind: optIDMap},
	"ridmap": {kind: optIDMap, rec: true},

	// Podman asks for it on the tmpfs it puts on /run, /tmp and /var/tmp
	// (--read-only, --read-only-tmpfs); passing it to mount(2) is EINVAL.
	"tmpcopyup": {kind: optTmpCopyUp},
}

// parseMountOptions turns an OCI options list into mount(2) flags,
// propagation changes, mount_setattr(2) attributes and a data string.
// Later options override earlier ones, as with mount(8).
func parseMountOptions(opts []string) (mountOpts, error) {
	var m mountOpts
	for _, o := range opts {
		spec, ok := mountOptTable[o]
		if !ok {
			if o == "" {
				return m, fmt.Errorf("empty mount option")
			}
			m.data = append(m.data, o)
			continue
		}
		switch spec.kind {
		case optFlag:
			m.flags |= spec.flag
			m.clear &^= spec.flag
		case optClear:
			m.flags &^= spec.flag
			m.clear |= spec.flag
		case optPropagation:
			m.propagation = append(m.propagation, spec.flag)
		case optRecAttr:
			if m.recAttr == nil {
				m.recAttr = &unix.MountAttr{}
			}
			// An atime option replaces whatever atime mode an earlier one set.
			if spec.clr&unix.MOUNT_ATTR__ATIME != 0 {
				m.recAttr.Attr_set &^= unix.MOUNT_ATTR__ATIME
			}
			m.recAttr.Attr_set = m.recAttr.Attr_set&^spec.clr | spec.set
			m.recAttr.Attr_clr = m.recAttr.Attr_clr&^spec.set | spec.clr
		case optTmpCopyUp:
			m.tmpcopyup = true
		case optIDMap:
			if spec.rec {
				m.ridmap = true
			} else {
				m.idmap = true
			}
		}
	}
	return m, nil
}

func (m mountOpts) dataString() string { return strings.Join(m.data, ",") }

// hasData reports whether a key ("size") or key=value option is present.
func (m mountOpts) hasData(key string) bool {
	for _, d := range m.data {
		if d == key || strings.HasPrefix(d, key+"=") {
			return true
		}
	}
	return false
}
