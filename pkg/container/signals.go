package container

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Signals is what a foreground run or exec forwards to its process.
//
// Go's signal.Notify costs two handoffs between OS threads per signal (the
// runtime updates its signal mask on a locked thread and waits for it), and
// signal.Stop as many again: about 25 µs a signal here, 1.5 ms each way for
// all 64, which was a tenth of a foreground `run`. So the signals people and
// engines send to end a container are registered at once, the rest on
// another goroutine while create proceeds (Wait before the payload starts,
// so every signal sent after that is forwarded), and a CLI that exits right
// after never unregisters them.
type Signals struct {
	C     chan os.Signal
	ready chan struct{}
}

// stopSignals are caught synchronously: their default action would kill
// the runtime before it forwards them.
var stopSignals = []os.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT}

// NotifySignals starts catching every signal for forwarding.
func NotifySignals() *Signals {
	s := &Signals{C: make(chan os.Signal, 32), ready: make(chan struct{})}
	signal.Notify(s.C, stopSignals...)
	go func() {
		defer close(s.ready)
		rest := make([]os.Signal, 0, 64)
		for n := unix.Signal(1); n <= 64; n++ {
			switch n {
			case unix.SIGKILL, unix.SIGSTOP, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT:
				continue
			}
			rest = append(rest, n)
		}
		signal.Notify(s.C, rest...)
	}()
	return s
}

// Wait returns once every signal is caught.
func (s *Signals) Wait() { <-s.ready }

// Stop unregisters; only a caller that goes on living needs it.
func (s *Signals) Stop() {
	s.Wait()
	signal.Stop(s.C)
}

// ParseSignal accepts 9, KILL, SIGKILL and kill, as runc's kill does.
func ParseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal number %d", n)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	if sig == 0 {
		return 0, fmt.Errorf("unknown signal %q", s)
	}
	return sig, nil
}
