package killlog

import (
	"testing"
)

func TestParseReadsOnlySeccompKills(t *testing.T) {
	tests := []struct {
		name string
		rec  string
		want Kill
		ok   bool
	}{
		{"kmsg record", `5,1662,9294382280,-;audit: type=1326 audit(1796585024.066:1662): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=31535 comm="syscall" exe="/usr/local/bin/syscall" sig=31 arch=c000003e syscall=41 compat=0 ip=0x408b0e code=0x80000000`,
			Kill{PID: 31535, Comm: "syscall", Exe: "/usr/local/bin/syscall", Syscall: 41, Name: "socket"}, true},
		{"dmesg line", `[ 9294.544932] audit: type=1326 audit(1796585024.226:1663): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=31554 comm="syscall" exe="/usr/local/bin/syscall" sig=31 arch=c000003e syscall=165 compat=0 ip=0x408b0e code=0x80000000`,
			Kill{PID: 31554, Comm: "syscall", Exe: "/usr/local/bin/syscall", Syscall: 165, Name: "mount"}, true},
		{"a logged errno is no kill", `audit: type=1326 audit(1:2): pid=5 comm="x" sig=0 syscall=41 code=0x50000`, Kill{}, false},
		{"another record type", `audit: type=1400 audit(1:2): pid=5 sig=31 syscall=41`, Kill{}, false},
		{"an unknown number keeps no name", `audit: type=1326 audit(1:2): pid=5 comm="x" exe="/x" sig=31 syscall=99999 code=0`, Kill{PID: 5, Comm: "x", Exe: "/x", Syscall: 99999}, true},
		{"the first of repeated keys", `audit: type=1326 audit(1:2): pid=5 comm="x" sig=31 syscall=1 syscall=2`, Kill{PID: 5, Comm: "x", Syscall: 1, Name: "write"}, true},
		{"garbage", `audit: type=1326 pid=x sig=31 syscall=`, Kill{}, false},
		{"empty", ``, Kill{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Parse(tc.rec)
			if ok != tc.ok || got != tc.want {
				t.Errorf("Parse = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestParseDecisionReadsEveryAction(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rec    string
		ok     bool
		denied bool
		code   uint32
	}{
		{"an errno (the kernel logs the action, not the errno)", `6,2071,22473912341,-;audit: type=1326 audit(1796598203.594:2071): auid=4294967295 uid=165536 gid=165536 ses=4294967295 pid=384 comm="python3" exe="/usr/bin/python3.11" sig=0 arch=c000003e syscall=41 compat=0 ip=0x7ff4648e7dc7 code=0x50000`, true, true, 0x50000},
		{"a kill", `audit: type=1326 audit(1:2): pid=5 comm="x" sig=31 syscall=41 code=0x80000000`, true, true, 0x80000000},
		{"a logged call let through", `audit: type=1326 audit(1:2): pid=5 comm="x" sig=0 syscall=41 code=0x7ffc0000`, true, false, 0x7ffc0000},
		{"another record type", `audit: type=1400 audit(1:2): pid=5 sig=0 syscall=41 code=0x50000`, false, false, 0},
		{"no pid", `audit: type=1326 audit(1:2): sig=0 syscall=41 code=0x50000`, false, false, 0},
	} {
		d, ok := ParseDecision(tc.rec)
		if ok != tc.ok || ok && (d.Denied() != tc.denied || d.Code != tc.code || d.Name != "socket") {
			t.Errorf("%s: %+v, %v; want ok %v, denied %v, code %#x", tc.name, d, ok, tc.ok, tc.denied, tc.code)
		}
	}
	for rec, want := range map[string]int{
		"4,2077,22585393187,-;kauditd_printk_skb: 3990 callbacks suppressed": 3990,
		"kauditd_printk_skb: x callbacks suppressed":                         0,
		"net_ratelimit: 12 callbacks suppressed":                             0,
	} {
		if n, _ := suppressed(rec); n != want {
			t.Errorf("suppressed(%q) = %d, want %d", rec, n, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(`5,1,2,-;audit: type=1326 audit(1:2): pid=3 comm="a b" sig=31 syscall=41`)
	f.Fuzz(func(t *testing.T, rec string) {
		k, ok := Parse(rec)
		if ok && (k.PID <= 0 || k.Syscall < 0) {
			t.Fatalf("accepted %q as %+v", rec, k)
		}
	})
}
