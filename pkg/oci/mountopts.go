package oci

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Extension marks mount options that the kernel does not know and the
// runtime implements itself.
type Extension uint

const (
	// ExtTmpCopyUp copies the existing contents of the destination into a
	// freshly mounted tmpfs (crun and runc's "tmpcopyup").
	ExtTmpCopyUp Extension = 1 << iota
	// ExtIDMap makes a bind mount id-mapped with the mount's uid/gid mappings.
	ExtIDMap
	// ExtRecursiveIDMap is ExtIDMap applied to every submount as well.
	ExtRecursiveIDMap
)

// MountFlag describes what one mount option does. An option is either a plain MS_* flag,
// a Propagation change, a Recursive attribute, or an Extension; an entry with
// none of these ("defaults") is accepted and does nothing.
type MountFlag struct {
	// Flag is the MS_* bit(s) passed to mount(2); for Propagation options it
	// is the propagation type (MS_PRIVATE, MS_SHARED, ... optionally |MS_REC).
	Flag uintptr
	// Clear means the option removes Flag (or Attr) rather than adding
	// it: "rw" clears MS_RDONLY, "rsuid" clears MOUNT_ATTR_NOSUID.
	Clear bool
	// Propagation options need a separate mount(2) call with only the
	// propagation flag; they cannot be combined with the other flags.
	Propagation bool
	// Recursive options set or clear Attr, a MOUNT_ATTR_* value applied
	// with mount_setattr(2) and AT_RECURSIVE, so it also reaches submounts
	// of an rbind (MS_* flags on a bind remount reach the top mount only).
	// A separate bool is needed because MOUNT_ATTR_RELATIME is 0.
	Recursive bool
	Attr      uint64
	// Extension is a runtime-implemented option.
	Extension Extension
}

// MountOptions is the single table of mount options Bulwark understands:
// pkg/rootfs applies mounts with it and Features advertises its keys. Any
// option not in it is filesystem-specific and passed as mount(2) data.
//
// It follows runc's tables so that configs behave the same under both
// runtimes; "acl" is deliberately absent (MS_POSIXACL is a superblock flag
// the kernel ignores from userspace, see runc#3738), so it reaches the
// filesystem as data.
var MountOptions = map[string]MountFlag{
	"async":         {Flag: unix.MS_SYNCHRONOUS, Clear: true},
	"atime":         {Flag: unix.MS_NOATIME, Clear: true},
	"bind":          {Flag: unix.MS_BIND},
	"defaults":      {},
	"dev":           {Flag: unix.MS_NODEV, Clear: true},
	"diratime":      {Flag: unix.MS_NODIRATIME, Clear: true},
	"dirsync":       {Flag: unix.MS_DIRSYNC},
	"exec":          {Flag: unix.MS_NOEXEC, Clear: true},
	"iversion":      {Flag: unix.MS_I_VERSION},
	"lazytime":      {Flag: unix.MS_LAZYTIME},
	"loud":          {Flag: unix.MS_SILENT, Clear: true},
	"mand":          {Flag: unix.MS_MANDLOCK},
	"noatime":       {Flag: unix.MS_NOATIME},
	"nodev":         {Flag: unix.MS_NODEV},
	"nodiratime":    {Flag: unix.MS_NODIRATIME},
	"noexec":        {Flag: unix.MS_NOEXEC},
	"noiversion":    {Flag: unix.MS_I_VERSION, Clear: true},
	"nolazytime":    {Flag: unix.MS_LAZYTIME, Clear: true},
	"nomand":        {Flag: unix.MS_MANDLOCK, Clear: true},
	"norelatime":    {Flag: unix.MS_RELATIME, Clear: true},
	"nostrictatime": {Flag: unix.MS_STRICTATIME, Clear: true},
	"nosuid":        {Flag: unix.MS_NOSUID},
	"nosymfollow":   {Flag: unix.MS_NOSYMFOLLOW},
	"rbind":         {Flag: unix.MS_BIND | unix.MS_REC},
	"relatime":      {Flag: unix.MS_RELATIME},
	"remount":       {Flag: unix.MS_REMOUNT},
	"ro":            {Flag: unix.MS_RDONLY},
	"rw":            {Flag: unix.MS_RDONLY, Clear: true},
	"silent":        {Flag: unix.MS_SILENT},
	"strictatime":   {Flag: unix.MS_STRICTATIME},
	"suid":          {Flag: unix.MS_NOSUID, Clear: true},
	"symfollow":     {Flag: unix.MS_NOSYMFOLLOW, Clear: true},
	"sync":          {Flag: unix.MS_SYNCHRONOUS},

	"private":     {Flag: unix.MS_PRIVATE, Propagation: true},
	"rprivate":    {Flag: unix.MS_PRIVATE | unix.MS_REC, Propagation: true},
	"shared":      {Flag: unix.MS_SHARED, Propagation: true},
	"rshared":     {Flag: unix.MS_SHARED | unix.MS_REC, Propagation: true},
	"slave":       {Flag: unix.MS_SLAVE, Propagation: true},
	"rslave":      {Flag: unix.MS_SLAVE | unix.MS_REC, Propagation: true},
	"unbindable":  {Flag: unix.MS_UNBINDABLE, Propagation: true},
	"runbindable": {Flag: unix.MS_UNBINDABLE | unix.MS_REC, Propagation: true},

	"rro":            {Recursive: true, Attr: unix.MOUNT_ATTR_RDONLY},
	"rrw":            {Recursive: true, Attr: unix.MOUNT_ATTR_RDONLY, Clear: true},
	"rnosuid":        {Recursive: true, Attr: unix.MOUNT_ATTR_NOSUID},
	"rsuid":          {Recursive: true, Attr: unix.MOUNT_ATTR_NOSUID, Clear: true},
	"rnodev":         {Recursive: true, Attr: unix.MOUNT_ATTR_NODEV},
	"rdev":           {Recursive: true, Attr: unix.MOUNT_ATTR_NODEV, Clear: true},
	"rnoexec":        {Recursive: true, Attr: unix.MOUNT_ATTR_NOEXEC},
	"rexec":          {Recursive: true, Attr: unix.MOUNT_ATTR_NOEXEC, Clear: true},
	"rnodiratime":    {Recursive: true, Attr: unix.MOUNT_ATTR_NODIRATIME},
	"rdiratime":      {Recursive: true, Attr: unix.MOUNT_ATTR_NODIRATIME, Clear: true},
	"rrelatime":      {Recursive: true, Attr: unix.MOUNT_ATTR_RELATIME},
	"rnorelatime":    {Recursive: true, Attr: unix.MOUNT_ATTR_RELATIME, Clear: true},
	"rnoatime":       {Recursive: true, Attr: unix.MOUNT_ATTR_NOATIME},
	"ratime":         {Recursive: true, Attr: unix.MOUNT_ATTR_NOATIME, Clear: true},
	"rstrictatime":   {Recursive: true, Attr: unix.MOUNT_ATTR_STRICTATIME},
	"rnostrictatime": {Recursive: true, Attr: unix.MOUNT_ATTR_STRICTATIME, Clear: true},
	"rnosymfollow":   {Recursive: true, Attr: unix.MOUNT_ATTR_NOSYMFOLLOW},
	"rsymfollow":     {Recursive: true, Attr: unix.MOUNT_ATTR_NOSYMFOLLOW, Clear: true},

	"tmpcopyup": {Extension: ExtTmpCopyUp},
	"idmap":     {Extension: ExtIDMap},
	"ridmap":    {Extension: ExtIDMap | ExtRecursiveIDMap},
}

// KnownMountOptions returns the keys of MountOptions, sorted.
func KnownMountOptions() []string { return sortedKeys(MountOptions) }

// ParsedMountOptions is the result of ParseMountOptions.
type ParsedMountOptions struct {
	// Flags are the MS_* flags for mount(2).
	Flags uintptr
	// ClearedFlags are MS_* flags the options explicitly turned off. A bind
	// remount inherits the source's flags, so the applier needs to know
	// which ones the config asked to drop as opposed to merely not set.
	ClearedFlags uintptr
	// Propagation lists propagation changes in the order given.
	Propagation []uintptr
	// Data is the comma-joined filesystem-specific options ("size=65536k").
	Data string
	// RecAttrSet and RecAttrClr are the attr_set and attr_clr arguments for
	// mount_setattr(2) with AT_RECURSIVE.
	RecAttrSet, RecAttrClr uint64
	// Extensions are the runtime-implemented options present.
	Extensions Extension
}

// IsBind reports whether the options ask for a bind mount.
func (p *ParsedMountOptions) IsBind() bool { return p.Flags&unix.MS_BIND != 0 }

// IsIDMapped reports whether "idmap" or "ridmap" was given.
func (p *ParsedMountOptions) IsIDMapped() bool { return p.Extensions&ExtIDMap != 0 }

// ParseMountOptions turns the options of one OCI mount into mount(2) and
// mount_setattr(2) arguments using the MountOptions table. Later options
// override earlier ones ("ro","rw" is read-write), as with mount(8).
//
// It fails only on options that cannot be passed to the kernel faithfully:
// an empty option, or one containing a NUL byte, which C would silently
// truncate so that the kernel sees different options from the ones checked.
func ParseMountOptions(opts []string) (ParsedMountOptions, error) {
	var (
		p    ParsedMountOptions
		data []string
	)
	for i, o := range opts {
		if o == "" {
			return ParsedMountOptions{}, fmt.Errorf("%w: mount option %d is empty", ErrInvalidConfig, i)
		}
		if strings.IndexByte(o, 0) >= 0 {
			return ParsedMountOptions{}, fmt.Errorf("%w: mount option %d (%q) contains a NUL byte", ErrInvalidConfig, i, o)
		}
		f, known := MountOptions[o]
		switch {
		case !known:
			data = append(data, o)
		case f.Propagation:
			p.Propagation = append(p.Propagation, f.Flag)
		case f.Recursive:
			if f.Clear {
				p.RecAttrClr |= f.Attr
				p.RecAttrSet &^= f.Attr
			} else {
				p.RecAttrSet |= f.Attr
				p.RecAttrClr &^= f.Attr
			}
			// The atime attributes are an enum inside MOUNT_ATTR__ATIME:
			// mount_setattr(2) requires the whole field in attr_clr when
			// changing it, otherwise it fails with EINVAL. (rrelatime is the
			// value 0, so clearing the field is all it does.)
			if f.Attr&unix.MOUNT_ATTR__ATIME == f.Attr {
				p.RecAttrClr |= unix.MOUNT_ATTR__ATIME
			}
		case f.Extension != 0:
			p.Extensions |= f.Extension
		case f.Clear:
			p.Flags &^= f.Flag
			p.ClearedFlags |= f.Flag
		default:
			p.Flags |= f.Flag
			p.ClearedFlags &^= f.Flag
		}
	}
	p.Data = strings.Join(data, ",")
	return p, nil
}
