package oci

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseMountOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    []string
		want    ParsedMountOptions
		wantErr string
	}{
		{name: "none", opts: nil, want: ParsedMountOptions{}},
		{
			name: "runc /dev tmpfs",
			opts: []string{"nosuid", "strictatime", "mode=755", "size=65536k"},
			want: ParsedMountOptions{Flags: unix.MS_NOSUID | unix.MS_STRICTATIME, Data: "mode=755,size=65536k"},
		},
		{
			name: "devpts data keeps order and commas",
			opts: []string{"nosuid", "noexec", "newinstance,ptmxmode=0666", "mode=0620", "gid=5"},
			want: ParsedMountOptions{Flags: unix.MS_NOSUID | unix.MS_NOEXEC, Data: "newinstance,ptmxmode=0666,mode=0620,gid=5"},
		},
		{name: "ro then rw clears", opts: []string{"ro", "rw"}, want: ParsedMountOptions{ClearedFlags: unix.MS_RDONLY}},
		{name: "rw then ro sets", opts: []string{"rw", "ro"}, want: ParsedMountOptions{Flags: unix.MS_RDONLY}},
		{
			name: "clearing pairs",
			opts: []string{"suid", "dev", "exec", "async", "nomand", "atime", "diratime", "norelatime", "nostrictatime"},
			want: ParsedMountOptions{ClearedFlags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_SYNCHRONOUS |
				unix.MS_MANDLOCK | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME | unix.MS_STRICTATIME},
		},
		{
			name: "setting flags",
			opts: []string{"nodev", "noexec", "sync", "dirsync", "remount", "mand", "noatime", "nodiratime", "relatime"},
			want: ParsedMountOptions{Flags: unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_SYNCHRONOUS | unix.MS_DIRSYNC |
				unix.MS_REMOUNT | unix.MS_MANDLOCK | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME},
		},
		{name: "bind", opts: []string{"bind"}, want: ParsedMountOptions{Flags: unix.MS_BIND}},
		{name: "rbind", opts: []string{"rbind", "ro"}, want: ParsedMountOptions{Flags: unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY}},
		{
			name: "propagation in order",
			opts: []string{"rbind", "rprivate", "shared", "rslave", "unbindable", "private", "rshared", "slave", "runbindable"},
			want: ParsedMountOptions{Flags: unix.MS_BIND | unix.MS_REC, Propagation: []uintptr{
				unix.MS_PRIVATE | unix.MS_REC, unix.MS_SHARED, unix.MS_SLAVE | unix.MS_REC, unix.MS_UNBINDABLE,
				unix.MS_PRIVATE, unix.MS_SHARED | unix.MS_REC, unix.MS_SLAVE, unix.MS_UNBINDABLE | unix.MS_REC,
			}},
		},
		{
			name: "recursive attributes",
			opts: []string{"rro", "rnosuid", "rnodev", "rnoexec", "rnosymfollow", "rnodiratime"},
			want: ParsedMountOptions{RecAttrSet: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV |
				unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_NOSYMFOLLOW | unix.MOUNT_ATTR_NODIRATIME},
		},
		{
			name: "recursive clears",
			opts: []string{"rro", "rrw", "rsuid", "rdev", "rexec", "rsymfollow", "rdiratime"},
			want: ParsedMountOptions{RecAttrClr: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV |
				unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_NOSYMFOLLOW | unix.MOUNT_ATTR_NODIRATIME},
		},
		{
			name: "rnoatime clears the whole atime field",
			opts: []string{"rnoatime"},
			want: ParsedMountOptions{RecAttrSet: unix.MOUNT_ATTR_NOATIME, RecAttrClr: unix.MOUNT_ATTR__ATIME},
		},
		{
			name: "rstrictatime",
			opts: []string{"rstrictatime"},
			want: ParsedMountOptions{RecAttrSet: unix.MOUNT_ATTR_STRICTATIME, RecAttrClr: unix.MOUNT_ATTR__ATIME},
		},
		{
			name: "rrelatime is the zero atime value",
			opts: []string{"rnoatime", "rrelatime"},
			want: ParsedMountOptions{RecAttrSet: unix.MOUNT_ATTR_NOATIME, RecAttrClr: unix.MOUNT_ATTR__ATIME},
		},
		{name: "ratime", opts: []string{"ratime"}, want: ParsedMountOptions{RecAttrClr: unix.MOUNT_ATTR__ATIME}},
		{name: "rnorelatime", opts: []string{"rnorelatime"}, want: ParsedMountOptions{RecAttrClr: unix.MOUNT_ATTR__ATIME}},
		{name: "rnostrictatime", opts: []string{"rnostrictatime"}, want: ParsedMountOptions{RecAttrClr: unix.MOUNT_ATTR__ATIME | unix.MOUNT_ATTR_STRICTATIME}},
		{name: "idmap", opts: []string{"bind", "idmap"}, want: ParsedMountOptions{Flags: unix.MS_BIND, Extensions: ExtIDMap}},
		{name: "ridmap", opts: []string{"rbind", "ridmap"}, want: ParsedMountOptions{Flags: unix.MS_BIND | unix.MS_REC, Extensions: ExtIDMap | ExtRecursiveIDMap}},
		{name: "tmpcopyup", opts: []string{"tmpcopyup", "mode=755"}, want: ParsedMountOptions{Extensions: ExtTmpCopyUp, Data: "mode=755"}},
		{name: "defaults is a no-op", opts: []string{"defaults"}, want: ParsedMountOptions{}},
		{name: "acl goes to the filesystem", opts: []string{"acl"}, want: ParsedMountOptions{Data: "acl"}},
		{name: "symfollow", opts: []string{"nosymfollow", "symfollow"}, want: ParsedMountOptions{ClearedFlags: unix.MS_NOSYMFOLLOW}},
		{name: "empty option", opts: []string{"ro", ""}, wantErr: "mount option 1 is empty"},
		{name: "NUL", opts: []string{"size=1\x00,mode=777"}, wantErr: "contains a NUL byte"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMountOptions(tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalidConfig) {
					t.Fatalf("err = %v, want ErrInvalidConfig containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseMountOptions(%q)\n got %+v\nwant %+v", tt.opts, got, tt.want)
			}
		})
	}
}

func TestMountOptionsTableConsistent(t *testing.T) {
	// Every entry must be exactly one kind, or the parser's switch would
	// silently pick one meaning.
	for name, f := range MountOptions {
		kinds := 0
		if f.Flag != 0 && !f.Propagation {
			kinds++
		}
		if f.Propagation {
			kinds++
		}
		if f.Recursive {
			kinds++
		}
		if f.Extension != 0 {
			kinds++
		}
		if kinds > 1 || (kinds == 0 && name != "defaults") {
			t.Errorf("MountOptions[%q] = %+v has %d kinds, want exactly 1", name, f, kinds)
		}
		if f.Recursive && f.Flag != 0 {
			t.Errorf("MountOptions[%q]: recursive entry also sets an MS_ flag", name)
		}
	}
	if got := KnownMountOptions(); !slices.IsSorted(got) || len(got) != len(MountOptions) {
		t.Fatalf("KnownMountOptions not sorted or incomplete: %v", got)
	}
}

func FuzzParseMountOptions(f *testing.F) {
	f.Add("nosuid|strictatime|mode=755|size=65536k")
	f.Add("rbind|rprivate|rro|rnoatime|idmap")
	f.Add("ro|rw|suid|nodev|tmpcopyup|newinstance,ptmxmode=0666")
	f.Add("rrelatime|ratime|rstrictatime|rnostrictatime")
	f.Fuzz(func(t *testing.T, in string) {
		opts := strings.Split(in, "|")
		p, err := ParseMountOptions(opts)
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
			}
			return
		}
		if p.Flags&p.ClearedFlags != 0 {
			t.Fatalf("flags %#x both set and cleared (%#x)", p.Flags, p.ClearedFlags)
		}
		if p.RecAttrSet&p.RecAttrClr&^unix.MOUNT_ATTR__ATIME != 0 {
			t.Fatalf("recursive attrs %#x both set and cleared (%#x)", p.RecAttrSet, p.RecAttrClr)
		}
		var data []string
		for _, o := range opts {
			if _, ok := MountOptions[o]; !ok {
				data = append(data, o)
			}
		}
		if want := strings.Join(data, ","); p.Data != want {
			t.Fatalf("Data = %q, want %q", p.Data, want)
		}
		if strings.IndexByte(p.Data, 0) >= 0 {
			t.Fatalf("Data contains NUL: %q", p.Data)
		}
	})
}
