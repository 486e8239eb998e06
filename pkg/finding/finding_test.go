package finding

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestParseSeverity(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Severity
		bad  bool
	}{
		{"critical", Critical, false}, {"HIGH", High, false}, {" medium", Medium, false},
		{"low", Low, false}, {"info", Info, false}, {"severe", 0, true}, {"", 0, true},
	} {
		got, err := ParseSeverity(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseSeverity(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestReportSortsAndCounts(t *testing.T) {
	r := NewReport("audit", "x", "oci", nil, []Finding{
		{ID: "b", Severity: Low}, {ID: "a", Severity: Critical}, {ID: "c", Severity: Low}, {ID: "d", Severity: Medium},
	})
	var ids []string
	for _, f := range r.Findings {
		ids = append(ids, f.ID)
	}
	if got := strings.Join(ids, ","); got != "a,d,b,c" {
		t.Errorf("order %s, want a,d,b,c", got)
	}
	if r.Counts["low"] != 2 || r.Counts["critical"] != 1 || r.Counts["high"] != 0 {
		t.Errorf("counts %v", r.Counts)
	}
	if AtOrAbove(r.Findings, Medium) != 2 || AtOrAbove(r.Findings, High) != 1 {
		t.Errorf("AtOrAbove wrong")
	}
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Findings[0].Severity != Critical || back.Schema != SchemaVersion || !strings.Contains(buf.String(), `"severity": "critical"`) {
		t.Errorf("round trip: %s", buf.String())
	}
	buf.Reset()
	if err := r.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Index(out, "critical  a") > strings.Index(out, "medium") || !strings.Contains(out, "4 findings: 1 critical, 1 medium, 2 low") {
		t.Errorf("table:\n%s", out)
	}
}
