package network

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
)

// The rules no CNI plugin writes: isolation between bulwark bridges and
// the loopback guard. They belong to the networks, not to a container, and
// live as long as the network (the default one's as long as the machine's
// uptime, like docker0's).
const isolationChain = "BULWARK-ISOLATION"

// iptables runs iptables, waiting for the xtables lock as the plugins do.
func iptables(args ...string) error {
	cmd := exec.Command("iptables", append([]string{"-w"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// ensureRule adds rule to chain of table unless it is there (at the top
// when insert).
func ensureRule(table, chain string, insert bool, rule ...string) error {
	if iptables(append([]string{"-t", table, "-C", chain}, rule...)...) == nil {
		return nil
	}
	op := "-A"
	if insert {
		op = "-I"
	}
	return iptables(append([]string{"-t", table, op, chain}, rule...)...)
}

// loopbackGuard is the rule against CVE-2020-8558, as kube-proxy writes it.
var loopbackGuard = []string{"-i", BridgePrefix + "+", "!", "-s", "127.0.0.0/8", "-d", "127.0.0.0/8",
	"-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "DROP"}

// ensureBridgeRules makes the isolation chain (traffic routed from one
// bulwark bridge to another is dropped; bridge's own traffic returns) and
// the loopback guard. Called under the lock.
func ensureBridgeRules(bridge string) error {
	if iptables("-t", "filter", "-S", isolationChain) != nil {
		if err := iptables("-t", "filter", "-N", isolationChain); err != nil {
			return err
		}
	}
	if err := ensureRule("filter", isolationChain, false, "-j", "DROP"); err != nil {
		return err
	}
	if err := ensureRule("filter", isolationChain, true, "-i", bridge, "-o", bridge, "-j", "RETURN"); err != nil {
		return err
	}
	if err := ensureRule("filter", "FORWARD", true, "-i", BridgePrefix+"+", "-o", BridgePrefix+"+", "-j", isolationChain); err != nil {
		return err
	}
	return ensureRule("filter", "INPUT", true, loopbackGuard...)
}

// removeIsolation drops the bridge's own RETURN rule (network rm).
func removeIsolation(bridge string) error {
	rule := []string{"-t", "filter", "-C", isolationChain, "-i", bridge, "-o", bridge, "-j", "RETURN"}
	if iptables(rule...) != nil {
		return nil
	}
	rule[2] = "-D"
	return iptables(rule...)
}

// deleteLink removes a bridge link if it exists.
func deleteLink(name string) error {
	if exec.Command("ip", "link", "show", "dev", name).Run() != nil {
		return nil
	}
	out, err := exec.Command("ip", "link", "del", "dev", name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip link del %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}
