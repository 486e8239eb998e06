package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/bulwark-sec/bulwark/internal/phase"
)

// Engines (containerd's shim) read errors from --log in runc's JSON format:
// one object per line with level, msg and time.
var (
	logOut  io.Writer = os.Stderr
	logJSON bool
)

func setupLog(path, format string, debug bool) error {
	switch format {
	case "text", "":
	case "json":
		logJSON = true
	default:
		return fmt.Errorf("--log-format: %q is neither text nor json", format)
	}
	if path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_SYNC, 0o644)
		if err != nil {
			return fmt.Errorf("--log %s: %w", path, err)
		}
		logOut = f
	}
	if debug {
		// The runtime's steps (internal/phase marks: namespaces entered,
		// cgroups applied, hooks, state saved), as runc logs its own.
		phase.Debug(func(step string) { logAt("debug", step) })
		logAt("debug", "bulwark "+strings.Join(os.Args[1:], " "))
	}
	return nil
}

func logAt(level, msg string) {
	if logJSON {
		b, _ := json.Marshal(map[string]string{"level": level, "msg": msg, "time": time.Now().UTC().Format(time.RFC3339Nano)})
		fmt.Fprintf(logOut, "%s\n", b)
		return
	}
	if logOut == os.Stderr {
		if level == "debug" {
			msg = "debug: " + msg
		}
		fmt.Fprintf(os.Stderr, "bulwark: %s\n", msg)
		return
	}
	fmt.Fprintf(logOut, "time=%q level=%s msg=%q\n", time.Now().UTC().Format(time.RFC3339Nano), level, msg)
}

func logError(err error) {
	logAt("error", err.Error())
	// With a log file the engine reads it; a person at a terminal still
	// needs to see why the command failed.
	if logOut != os.Stderr {
		fmt.Fprintf(os.Stderr, "bulwark: %v\n", err)
	}
}

func logWarn(format string, args ...any) { logAt("warning", fmt.Sprintf(format, args...)) }
