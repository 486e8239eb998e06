package userface

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/learn"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/policy"
)

// LearnOptions is `bulwark learn`: a person's run (its flags as for
// `bulwark run`) recorded into a profile file.
type LearnOptions struct {
	Run    Options
	Output string // the profile file to write
	// Merge adds this run to the profile already in Output instead of
	// replacing it.
	Merge bool
	// Duration, when set, ends the workload (SIGTERM) after that long:
	// for a server exercised meanwhile.
	Duration time.Duration
	// NoCapTrials keeps every capability the base grants instead of
	// trying the workload without each.
	NoCapTrials bool
}

// durationGrace is how long a workload ended by --duration has between
// SIGTERM and SIGKILL.
const durationGrace = 5 * time.Second

// LearnResult is what a learning run produced.
type LearnResult struct {
	Profile  *learn.Profile
	Code     int      // the recorded run's exit status
	Warnings []string // for the person: the run failed, a capability trial was inconclusive
}

// Learn runs the workload once under a recording filter (pkg/learn), then,
// if the base profile grants capabilities, once more without each (the
// capability trials), and writes the profile to o.Output. A workload
// that exits non-zero still gets its profile, with a warning: what it did
// until then is all there is to learn. A run that cannot start writes
// nothing; everything it made on the host is removed as for any run, and
// a guard (learnguard.go) removes the run's containers if learn itself is
// killed before its end.
func Learn(rt *container.Runtime, o *LearnOptions, stderr io.Writer) (*LearnResult, error) {
	if o.Output == "" {
		return nil, errors.New("-o: name the profile file to write")
	}
	switch {
	case o.Run.Detach || o.Run.Keep:
		return nil, errors.New("learn runs the workload in the foreground to its end: --detach and --keep do not apply")
	case o.Run.Isolation != "" && o.Run.Isolation != "namespace":
		return nil, fmt.Errorf("--isolation %s: learn records the container's own processes; in a VM they are the VM's, so learn with the default isolation", o.Run.Isolation)
	}
	if learn.IsFile(o.Run.Profile) {
		return nil, fmt.Errorf("--profile %s: learn under a built-in profile (%v); a learned file is what learn writes", o.Run.Profile, policy.ProfileNames())
	}
	var prev *learn.Profile
	if o.Merge {
		p, err := learn.Load(o.Output)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("--merge: %w", err)
		}
		prev = p
	}
	base := o.Run.Profile
	if base == "" {
		base = "default"
	}
	if prev != nil && prev.Base != base {
		return nil, fmt.Errorf("--merge: %s was learned under --profile %s, this run is under %s: learn both under one base", o.Output, prev.Base, base)
	}
	// Everything checkable is checked before anything runs.
	s, err := Spec(&o.Run)
	if err != nil {
		return nil, err
	}
	granted := []string{}
	if s.Process != nil && s.Process.Capabilities != nil {
		granted = slices.Clone(s.Process.Capabilities.Effective)
	}

	run := o.Run
	run.learn = true
	if run.Name == "" {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		run.Name = "bw-learn-" + hex.EncodeToString(b[:])
	} else if err := oci.ValidateID(run.Name); err != nil {
		return nil, fmt.Errorf("--name: %w", err)
	}
	id := run.Name
	guard, err := startLearnGuard(rt, o.Output)
	if err != nil {
		return nil, err
	}
	defer guard.done()
	if err := guard.watch(id); err != nil {
		return nil, err
	}
	rec := learn.Attach(func() (int, bool) {
		st, err := rt.Load(id)
		if err != nil {
			return 0, false
		}
		return st.Pid, true
	})
	var ended atomic.Bool
	if o.Duration > 0 {
		// SIGTERM, then SIGKILL: a workload that is its pid namespace's
		// init without a SIGTERM handler does not die of SIGTERM.
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for i, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
				wait := o.Duration
				if i > 0 {
					wait = durationGrace
				}
				select {
				case <-stop:
					return
				case <-time.After(wait):
				}
				ended.Store(true)
				_ = rt.Kill(id, sig, true)
			}
		}()
	}
	code, runErr := Run(rt, &run)
	obs, recErr := rec.Stop()
	if runErr != nil {
		return nil, runErr
	}
	if recErr != nil {
		return nil, recErr
	}
	res := &LearnResult{Code: code}
	if ended.Load() {
		res.Warnings = append(res.Warnings, fmt.Sprintf("--duration %s ended the workload (exit status %d)", o.Duration, code))
	} else if code != 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the workload exited with status %d: the profile covers what it did until then", code))
	}

	kept, method := granted, ""
	switch {
	case len(granted) == 0:
	case o.NoCapTrials:
		method = "kept as granted (--no-cap-trials)"
	case o.Duration > 0:
		method = "kept as granted (no trials for a run ended by --duration)"
	default:
		kept = nil
		method = "each dropped in turn; kept where the exit status changed"
		for _, c := range granted {
			trial := o.Run
			trial.Name = id + "-no-" + strings.ToLower(c)
			if err := guard.watch(trial.Name); err != nil {
				return nil, err
			}
			trial.CapDrop = append(slices.Clone(trial.CapDrop), c)
			fmt.Fprintf(stderr, "bulwark: learn: trying the workload without %s\n", c)
			tc, err := Run(rt, &trial)
			if err != nil {
				return nil, fmt.Errorf("capability trial without %s: %w", c, err)
			}
			if tc != code {
				kept = append(kept, c)
			}
		}
	}

	cmds := [][]string{o.Run.Args}
	if prev != nil {
		obs.Merge(prev.Observed)
		cmds = append(slices.Clone(prev.Commands), cmds...)
		for _, c := range prev.Capabilities {
			if !slices.Contains(kept, c) {
				kept = append(kept, c)
			}
		}
	}
	p, err := learn.Build(base, obs, kept, method, cmds)
	if err != nil {
		return nil, err
	}
	p.WritableRootfs = s.Root != nil && !s.Root.Readonly
	if prev != nil {
		p.WritableRootfs = p.WritableRootfs || prev.WritableRootfs
	}
	if err := p.Write(o.Output); err != nil {
		return nil, err
	}
	res.Profile = p
	return res, nil
}

// profileOptions are the options of --profile: a built-in name or a
// learned profile file.
func profileOptions(name string, devices []string) ([]policy.Option, error) {
	if !learn.IsFile(name) {
		return policy.Profile(name, devices...)
	}
	p, err := learn.Load(name)
	if err != nil {
		return nil, err
	}
	return p.Options(devices...)
}

// profileSpec is the spec of --profile for explain.
func profileSpec(name string) (*specs.Spec, error) {
	if !learn.IsFile(name) {
		return policy.Spec(name)
	}
	p, err := learn.Load(name)
	if err != nil {
		return nil, err
	}
	return p.Spec()
}

// learnedReasons are a learned profile file's reasons per seccomp rule.
func learnedReasons(name string) []string {
	if !learn.IsFile(name) {
		return nil
	}
	p, err := learn.Load(name)
	if err != nil {
		return nil
	}
	return p.SeccompReasons
}

// explainWritable is the line for p under a learned profile's narrowed
// writes (oci.AnnotationLandlockWritable); "" without one.
func explainWritable(s *specs.Spec, p string) string {
	v, ok := s.Annotations[oci.AnnotationLandlockWritable]
	if !ok {
		return ""
	}
	if under(p, "/proc") || under(p, "/sys") || under(p, "/dev") {
		return ""
	}
	dirs := strings.Split(v, ",")
	if v == "" {
		dirs = nil
	}
	for _, d := range dirs {
		if under(p, d) {
			return fmt.Sprintf("landlock: writes allowed: the learned workload wrote under %s", d)
		}
	}
	if len(dirs) == 0 {
		return "landlock: writes refused with EACCES: the learned workload wrote no files"
	}
	return fmt.Sprintf("landlock: writes refused with EACCES: the learned workload wrote only under %s; learn again with --merge from a run that writes here", strings.Join(dirs, ", "))
}
