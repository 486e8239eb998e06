package userns

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

func testPool(t *testing.T, max int) *Pool {
	return &Pool{Dir: filepath.Join(t.TempDir(), "pool"), Base: DefaultBase, Size: DefaultSize, MaxRanges: max}
}

// owner returns a directory that exists, as a live container's state dir does.
func owner(t *testing.T) string {
	d := filepath.Join(t.TempDir(), "c")
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestAllocateGivesDistinctRanges(t *testing.T) {
	p := testPool(t, 64)
	var mu sync.Mutex
	seen := map[uint32]bool{}
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		o := owner(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := p.Allocate(o)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if seen[r.HostID] {
				t.Errorf("range %d handed out twice", r.HostID)
			}
			seen[r.HostID] = true
			if r.HostID < DefaultBase || r.Size != DefaultSize || (r.HostID-DefaultBase)%DefaultSize != 0 {
				t.Errorf("range %+v is not a pool slot", r)
			}
		}()
	}
	wg.Wait()
}

func TestReleaseAndReclaim(t *testing.T) {
	dead := exec.Command("/bin/true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		// prepare allocates slot 0 and returns what should happen next.
		prepare   func(p *Pool, o string)
		wantIndex int
	}{
		{name: "released range is reused", prepare: func(p *Pool, o string) {
			if err := p.Release(o); err != nil {
				t.Fatal(err)
			}
		}, wantIndex: 0},
		{name: "live owner keeps its range", prepare: func(p *Pool, o string) {}, wantIndex: 1},
		{name: "crashed owner (state dir and allocator gone) is reclaimed", prepare: func(p *Pool, o string) {
			b, _ := json.Marshal(record{Owner: o + "-gone", Pid: dead.Process.Pid, PidStart: 1})
			if err := os.WriteFile(filepath.Join(p.Dir, "0"), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}, wantIndex: 0},
		{name: "allocator alive but state dir not yet created keeps the range", prepare: func(p *Pool, o string) {
			start, _ := pidStart(os.Getpid())
			b, _ := json.Marshal(record{Owner: o + "-not-yet", Pid: os.Getpid(), PidStart: start})
			if err := os.WriteFile(filepath.Join(p.Dir, "0"), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}, wantIndex: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := testPool(t, 4)
			o := owner(t)
			r, err := p.Allocate(o)
			if err != nil || r.Index != 0 {
				t.Fatalf("first allocation: %+v %v", r, err)
			}
			tc.prepare(p, o)
			r, err = p.Allocate(owner(t))
			if err != nil {
				t.Fatal(err)
			}
			if r.Index != tc.wantIndex {
				t.Errorf("got range %d, want %d", r.Index, tc.wantIndex)
			}
		})
	}
}

func TestAllocateSkipsReservedAndReportsExhaustion(t *testing.T) {
	p := testPool(t, 3)
	// /etc/subuid-style: a user owns the ids of slot 1.
	sub := filepath.Join(t.TempDir(), "subuid")
	if err := os.WriteFile(sub, []byte("alice:"+strconv.Itoa(DefaultBase+DefaultSize+10)+":100\nbroken line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.Reserved = ReadSubIDs(sub)
	// A host account (say from LDAP) with an id in slot 3; accounts below
	// the pool's base are never reserved.
	passwd := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(passwd, []byte("root:x:0:0::/root:/bin/sh\nldap:x:"+strconv.Itoa(DefaultBase+3*DefaultSize+7)+":100::/home/ldap:/bin/sh\nbad\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	accounts := ReadAccountIDs(passwd, DefaultBase)
	if len(accounts) != 1 {
		t.Fatalf("ReadAccountIDs = %v, want only the account above the base", accounts)
	}
	p.Reserved = append(p.Reserved, accounts...)
	p.MaxRanges = 4
	var got []int
	for i := 0; i < 2; i++ {
		r, err := p.Allocate(owner(t))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r.Index)
	}
	if got[0] != 0 || got[1] != 2 {
		t.Errorf("allocated %v, want [0 2] (slot 1 overlaps /etc/subuid, slot 3 a host account)", got)
	}
	if _, err := p.Allocate(owner(t)); !errors.Is(err, ErrExhausted) {
		t.Errorf("full pool: %v, want ErrExhausted", err)
	}
}

func TestReleaseOfMissingPoolIsNoop(t *testing.T) {
	p := testPool(t, 1)
	if err := p.Release("/nowhere"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Release created the pool directory: %v", err)
	}
}

func TestPoolCheck(t *testing.T) {
	tests := []struct {
		name string
		p    Pool
	}{
		{"base 0 maps host root", Pool{Dir: "/x", Base: 0, Size: 1, MaxRanges: 1}},
		{"overflow", Pool{Dir: "/x", Base: 1 << 31, Size: 1 << 16, MaxRanges: 1 << 16}},
		{"no dir", Pool{Base: 1, Size: 1, MaxRanges: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.p.Allocate("/o"); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestParseRange(t *testing.T) {
	tests := []struct {
		in      string
		want    Range
		wantErr bool
	}{
		{in: "200000", want: Range{Index: -1, HostID: 200000, Size: 65536}},
		{in: "300000:1000", want: Range{Index: -1, HostID: 300000, Size: 1000}},
		{in: "0", wantErr: true},
		{in: "x", wantErr: true},
		{in: "5:0", wantErr: true},
		{in: "4294967000:65536", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseRange(tc.in)
			if (err != nil) != tc.wantErr || (!tc.wantErr && got != tc.want) {
				t.Errorf("ParseRange(%q) = %+v, %v", tc.in, got, err)
			}
		})
	}
}

func TestOverlapFindsLiveRangesOfOtherProcesses(t *testing.T) {
	p := testPool(t, 4)
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Range 1 belongs to a live container another bulwark created: its
	// owner directory exists. Range 2 was allocated by this process.
	owner := t.TempDir()
	b, _ := json.Marshal(record{Owner: owner, Pid: 1})
	if err := os.WriteFile(filepath.Join(p.Dir, "1"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	mine, _ := json.Marshal(record{Owner: filepath.Join(t.TempDir(), "gone"), Pid: os.Getpid()})
	if err := os.WriteFile(filepath.Join(p.Dir, "2"), mine, 0o600); err != nil {
		t.Fatal(err)
	}
	r1 := p.hostID(1)
	tests := []struct {
		name        string
		start, size uint64
		want        string
	}{
		{name: "the same range", start: r1, size: uint64(p.Size), want: owner},
		{name: "one id inside", start: r1 + 500, size: 1, want: owner},
		{name: "straddling the start", start: r1 - 10, size: 11, want: owner},
		{name: "just below", start: r1 - 10, size: 10},
		{name: "this process's own range", start: p.hostID(2), size: uint64(p.Size)},
		{name: "a free range", start: p.hostID(3), size: uint64(p.Size)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := p.Overlap(tc.start, tc.size)
			if err != nil || got != tc.want {
				t.Errorf("Overlap(%d, %d) = %q, %v; want %q", tc.start, tc.size, got, err, tc.want)
			}
		})
	}
}

// An allocation is recorded whole: the pool holds its numbered record and
// nothing else, also after a killed allocation's temporary file.
func TestAllocateRecordsWholeAndClearsAKilledOnesTemporary(t *testing.T) {
	p := testPool(t, 4)
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.Dir, ".0.tmp"), []byte(`{"owner":"/x`), 0o600); err != nil {
		t.Fatal(err)
	}
	o := owner(t)
	r, err := p.Allocate(o)
	if err != nil || r.Index != 0 {
		t.Fatalf("Allocate = %+v, %v; want slot 0", r, err)
	}
	var names []string
	ents, _ := os.ReadDir(p.Dir)
	for _, e := range ents {
		names = append(names, e.Name())
	}
	got, err := p.Allocated()
	if err != nil || got[0] != o {
		t.Errorf("Allocated = %v, %v; want slot 0 owned by %s", got, err, o)
	}
	for _, n := range names {
		if n != "0" && n != ".lock" && n != "lock" {
			t.Errorf("pool holds %q besides the record (%v)", n, names)
		}
	}
}
