package procstat

import (
	"os"
	"strconv"
	"testing"
	"time"
)

func TestParseReadsPastTheCommandName(t *testing.T) {
	for _, c := range []struct {
		what, line             string
		ok                     bool
		comm, state, ppid, pgr string
		start                  uint64
		cpu                    time.Duration
	}{
		{"plain", "42 (sh) S 1 42 42 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 12345 0 0", true, "sh", "S", "1", "42", 12345, 110 * time.Millisecond},
		{"a name that forges fields", "42 (x) R 1 1 1 0 -1 0 0 0 0 0 999 999 0 0 0 0 0 0 999 0 0) S 7 42 42 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 12345 0 0", true, "x) R 1 1 1 0 -1 0 0 0 0 0 999 999 0 0 0 0 0 0 999 0 0", "S", "7", "42", 12345, 110 * time.Millisecond},
		{"a name with spaces", "42 (a b c) Z 3 9 9 0 -1 0 0 0 0 0 0 250 0 0 20 0 1 0 777", true, "a b c", "Z", "3", "9", 777, 2500 * time.Millisecond},
		{"no name", "42 S 1 42", false, "", "", "", "", 0, 0},
		{"nothing after the name", "42 (sh)", false, "", "", "", "", 0, 0},
	} {
		s, ok := Parse([]byte(c.line))
		if ok != c.ok {
			t.Errorf("%s: ok = %v, want %v", c.what, ok, c.ok)
			continue
		}
		if !ok {
			continue
		}
		if s.Field(3) != c.state || s.Field(4) != c.ppid || s.Field(5) != c.pgr {
			t.Errorf("%s: state %q ppid %q pgrp %q, want %q %q %q", c.what, s.Field(3), s.Field(4), s.Field(5), c.state, c.ppid, c.pgr)
		}
		if s.Comm() != c.comm {
			t.Errorf("%s: Comm = %q, want %q", c.what, s.Comm(), c.comm)
		}
		if cpu, err := s.CPUTime(); err != nil || cpu != c.cpu {
			t.Errorf("%s: CPUTime = %v, %v; want %v", c.what, cpu, err, c.cpu)
		}
		if st, err := s.StartTime(); err != nil || st != c.start {
			t.Errorf("%s: StartTime = %d, %v; want %d", c.what, st, err, c.start)
		}
		if s.Dead() != (c.state == "Z") {
			t.Errorf("%s: Dead = %v", c.what, s.Dead())
		}
	}
}

func TestFieldPastTheEndIsEmpty(t *testing.T) {
	s, ok := Parse([]byte("1 (init) S 0 1 1"))
	if !ok {
		t.Fatal("Parse refused a short line")
	}
	if s.Field(22) != "" || s.Field(1) != "" || s.Field(2) != "" {
		t.Errorf("Field(22, 1, 2) = %q %q %q, want all empty", s.Field(22), s.Field(1), s.Field(2))
	}
	if _, err := s.StartTime(); err == nil {
		t.Error("StartTime of a line without field 22: no error")
	}
	if _, err := s.CPUTime(); err == nil {
		t.Error("CPUTime of a line without fields 14 and 15: no error")
	}
}

func TestReadOurselves(t *testing.T) {
	s, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.Field(4) != strconv.Itoa(os.Getppid()) {
		t.Errorf("ppid field %q, want %d", s.Field(4), os.Getppid())
	}
	if st, err := s.StartTime(); err != nil || st == 0 {
		t.Errorf("StartTime = %d, %v", st, err)
	}
	if s.Dead() {
		t.Errorf("a running test is dead: state %q", s.Field(3))
	}
	if _, err := Read(-1); err == nil {
		t.Error("Read(-1): no error")
	}
}
