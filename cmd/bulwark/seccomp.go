package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/learn"
	"github.com/bulwark-sec/bulwark/pkg/policy"
	"github.com/bulwark-sec/bulwark/pkg/seccomp"
	"github.com/bulwark-sec/bulwark/pkg/seccomp/bpfvm"
	"github.com/bulwark-sec/bulwark/pkg/seccomp/explain"
	"github.com/bulwark-sec/bulwark/pkg/seccomp/profiles"
	"github.com/bulwark-sec/bulwark/pkg/userface"
)

var profileSummaries = map[string]string{
	profiles.NameDefault:    "allowlist; ENOSYS for unknown syscalls; namespace, socket-family, ioctl and personality rules",
	profiles.NameStrict:     "compute only: a tiny subset, anything else kills the process",
	profiles.NameUnconfined: "no seccomp filter",
}

func seccompCommand() *cli.Command {
	return &cli.Command{
		Name:  "seccomp",
		Usage: "inspect seccomp profiles (built-in names or OCI JSON files)",
		Commands: []*cli.Command{
			{
				Name: "list", Usage: "list the built-in profiles",
				Action: func(ctx context.Context, cmd *cli.Command) error {
					for _, n := range profiles.Names() {
						fmt.Printf("%-11s %s\n", n, profileSummaries[n])
					}
					return nil
				},
			},
			{
				Name: "explain", Usage: "what PROFILE does to one syscall with these arguments, and why",
				ArgsUsage: "PROFILE SYSCALL [ARG...]",
				Action:    seccompExplain,
			},
			{
				Name: "diff", Usage: "what profile A allows that profile B does not (B: default if not given)",
				ArgsUsage: "A [B]",
				Action:    seccompDiff,
			},
			{
				Name: "export", Usage: "print the BPF program a profile compiles to",
				ArgsUsage: "PROFILE",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "format", Value: "text", Usage: "text (one instruction per line) or raw (struct sock_filter bytes)"},
				},
				Action: seccompExport,
			},
		},
	}
}

func seccompExplain(ctx context.Context, cmd *cli.Command) error {
	a := cmd.Args().Slice()
	if len(a) < 2 || len(a) > 8 {
		return errors.New("usage: bulwark seccomp explain PROFILE SYSCALL [ARG...] (up to six arguments)")
	}
	s, reasons, err := profiles.Resolve(a[0])
	if err != nil {
		return err
	}
	if err := seccomp.Validate(s); err != nil {
		return fmt.Errorf("%s: %w", a[0], err)
	}
	name := a[1]
	if !seccomp.KnownSyscall(name) {
		return fmt.Errorf("syscall %q is not known to libseccomp %s", name, seccomp.Version())
	}
	var args [6]uint64
	for i, v := range a[2:] {
		if args[i], err = parseArg(v); err != nil {
			return fmt.Errorf("argument %d: %w", i, err)
		}
	}
	r := explain.Evaluate(s, name, args)
	shown := make([]string, len(a)-2)
	for i := range shown {
		shown[i] = fmt.Sprintf("%#x", args[i])
	}
	fmt.Printf("%s(%s): %s %s\n", name, strings.Join(shown, ", "), r.Outcome(), r.Why(reasons))
	if r.Action == specs.ActAllow || r.Action == specs.ActLog {
		if c := seccompCapCaveat(a[0], name); c != "" {
			fmt.Println("seccomp allows " + name + ", " + c)
		}
	}
	if s == nil {
		return nil
	}
	got, err := seccomp.Simulate(s, name, args)
	if err != nil {
		return fmt.Errorf("cross-checking with the BPF program: %w", err)
	}
	if got != r.Kernel() {
		return fmt.Errorf("the BPF program libseccomp %s generated returns %s, not %s: this explanation is wrong for this profile, trust the BPF", seccomp.Version(), bpfvm.Verdict(got), bpfvm.Verdict(r.Kernel()))
	}
	fmt.Printf("BPF program (libseccomp %s) agrees: %s\n", seccomp.Version(), bpfvm.Verdict(got))
	return nil
}

// seccompCapCaveat is the capability line for a built-in profile's name
// that is also a bulwark profile (default, strict, netadmin): a JSON file
// says nothing about capabilities.
func seccompCapCaveat(profile, name string) string {
	ps, err := policy.Spec(profile)
	if err != nil {
		return ""
	}
	return userface.CapabilityCaveat(ps, profile, name)
}

// parseArg takes 0x.. hex, 0.. octal, decimal, or a negative number as its
// two's complement (fds like -100 for AT_FDCWD).
func parseArg(s string) (uint64, error) {
	if v, err := strconv.ParseUint(s, 0, 64); err == nil {
		return v, nil
	}
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return uint64(v), nil
}

func seccompExport(ctx context.Context, cmd *cli.Command) error {
	a := cmd.Args().Slice()
	if len(a) != 1 {
		return errors.New("usage: bulwark seccomp export [--format text|raw] PROFILE")
	}
	s, _, err := profiles.Resolve(a[0])
	if err != nil {
		return err
	}
	if s == nil {
		return fmt.Errorf("%s: no seccomp filter, nothing to export", a[0])
	}
	raw, err := seccomp.ExportBPF(s)
	if err != nil {
		return fmt.Errorf("%s: %w", a[0], err)
	}
	switch cmd.String("format") {
	case "raw":
		_, err := os.Stdout.Write(raw)
		return err
	case "text":
		prog, err := bpfvm.Decode(raw)
		if err != nil {
			return err
		}
		fmt.Println(strings.Join(bpfvm.Disassemble(prog), "\n"))
		fmt.Printf("%d instructions\n", len(prog))
		return nil
	}
	return fmt.Errorf("--format %q: want text or raw", cmd.String("format"))
}

func seccompDiff(ctx context.Context, cmd *cli.Command) error {
	a := cmd.Args().Slice()
	if len(a) == 1 {
		a = append(a, profiles.NameDefault)
	}
	if len(a) != 2 {
		return errors.New("usage: bulwark seccomp diff A [B]")
	}
	var ss [2]*specs.LinuxSeccomp
	for i, n := range a {
		s, _, err := profiles.Resolve(n)
		if err != nil {
			return err
		}
		if err := seccomp.Validate(s); err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		ss[i] = s
	}
	for _, d := range [][2]int{{0, 1}, {1, 0}} {
		lines := learn.Diff(ss[d[0]], ss[d[1]])
		fmt.Printf("%s allows, %s does not (%d):\n", a[d[0]], a[d[1]], len(lines))
		for _, l := range lines {
			fmt.Println("  " + l)
		}
	}
	return nil
}
