package finding

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// SchemaVersion is the JSON report's schema; it changes only when a field
// is renamed or removed or changes meaning (adding one does not).
const SchemaVersion = 1

// Report is what a command prints.
type Report struct {
	Schema int `json:"schemaVersion"`
	// Command is "audit" or "check".
	Command string `json:"command"`
	// Target is what was examined: a path, "-" for stdin, or "/" (the host).
	Target string `json:"target"`
	// Format is how the target was read (oci, docker, kubernetes, rootfs, host).
	Format string `json:"format"`
	// Facts are what the command measured on the way, worth printing even
	// when nothing is wrong: kernel release, cgroup version, LSMs.
	Facts    map[string]string `json:"facts,omitempty"`
	Findings []Finding         `json:"findings"`
	// Counts has every severity name, zero or not, so a CI script can read
	// counts.high without checking that the key exists.
	Counts map[string]int `json:"counts"`
}

// NewReport sorts fs and fills in the counts.
func NewReport(command, target, format string, facts map[string]string, fs []Finding) *Report {
	if fs == nil {
		fs = []Finding{}
	}
	Sort(fs)
	counts := map[string]int{}
	for _, n := range severityNames {
		counts[n] = 0
	}
	for _, f := range fs {
		counts[f.Severity.String()]++
	}
	return &Report{Schema: SchemaVersion, Command: command, Target: target, Format: format, Facts: facts, Findings: fs, Counts: counts}
}

// WriteJSON writes r indented, with a final newline.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes r for a person: the facts, a table of the findings
// most severe first, each followed by why it matters and the fix, and a
// one-line summary.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s (%s)\n", r.Command, r.Target, r.Format)
	for _, k := range sortedKeys(r.Facts) {
		fmt.Fprintf(&b, "  %s: %s\n", k, r.Facts[k])
	}
	b.WriteString("\n")
	if len(r.Findings) == 0 {
		b.WriteString("no findings\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	head := []string{"SEVERITY", "ID", "WHERE", "FINDING"}
	rows := [][]string{head}
	for _, f := range r.Findings {
		where := f.Where
		if f.Subject != "" {
			where = f.Subject + ": " + where
		}
		rows = append(rows, []string{f.Severity.String(), f.ID, where, f.Message})
	}
	width := make([]int, len(head)-1)
	for _, row := range rows {
		for i := range width {
			width[i] = max(width[i], utf8.RuneCountInString(row[i]))
		}
	}
	for i, row := range rows {
		for j, c := range row[:len(row)-1] {
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", width[j]-utf8.RuneCountInString(c)+2))
		}
		b.WriteString(row[len(row)-1])
		b.WriteString("\n")
		if i == 0 {
			continue
		}
		f := r.Findings[i-1]
		indent := strings.Repeat(" ", width[0]+2)
		fmt.Fprintf(&b, "%swhy: %s\n", indent, f.Reason)
		if f.Fix != "" {
			fmt.Fprintf(&b, "%sfix: %s\n", indent, f.Fix)
		}
	}
	var parts []string
	for s := Critical; s >= Info; s-- {
		if n := r.Counts[s.String()]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	noun := "findings"
	if len(r.Findings) == 1 {
		noun = "finding"
	}
	fmt.Fprintf(&b, "\n%d %s: %s\n", len(r.Findings), noun, strings.Join(parts, ", "))
	_, err := io.WriteString(w, b.String())
	return err
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
