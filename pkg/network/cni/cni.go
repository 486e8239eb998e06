// Package cni runs the CNI plugins of an attachment through libcni: ADD
// and DEL of one config list for one container. It is linked only into
// bulwark-tools (pkg/userface/tools): libcni compiles regexps and
// registers its result types at package init, a cost the bulwark binary,
// which every container start maps and re-executes, does not pay.
// pkg/network calls it through internal/toolsproto.
//
// Threat: the plugins run as root with the config list the record holds;
// the record lives in a root-only directory, written by bulwark.
package cni

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// Call is one ADD or DEL (pkg/network's Call, in the same JSON).
type Call struct {
	List        json.RawMessage `json:"list"`
	ContainerID string          `json:"containerID"`
	Netns       string          `json:"netns"`
	IfName      string          `json:"ifName"`
	Ports       json.RawMessage `json:"ports,omitempty"`
	PluginPath  []string        `json:"pluginPath"`
	CacheDir    string          `json:"cacheDir"`
}

// Result is what ADD gives back.
type Result struct {
	IP string `json:"ip,omitempty"`
}

func (c *Call) prepare() (*libcni.CNIConfig, *libcni.NetworkConfigList, *libcni.RuntimeConf, error) {
	l, err := libcni.ConfListFromBytes(c.List)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("CNI config list: %w", err)
	}
	rc := &libcni.RuntimeConf{ContainerID: c.ContainerID, NetNS: c.Netns, IfName: c.IfName}
	if len(c.Ports) > 0 {
		rc.CapabilityArgs = map[string]any{"portMappings": c.Ports}
	}
	return libcni.NewCNIConfigWithCacheDir(c.PluginPath, c.CacheDir, &pluginExec{}), l, rc, nil
}

// Add attaches: the plugins' ADD, in order, after checking each speaks
// the list's CNI version.
func Add(ctx context.Context, c Call) (*Result, error) {
	cfg, l, rc, err := c.prepare()
	if err != nil {
		return nil, err
	}
	if _, err := cfg.ValidateNetworkList(ctx, l); err != nil {
		return nil, fmt.Errorf("plugins: %w", err)
	}
	res, err := cfg.AddNetworkList(ctx, l, rc)
	if err != nil {
		return nil, err
	}
	out := &Result{}
	if r, err := types100.NewResultFromResult(res); err == nil {
		for _, ip := range r.IPs {
			if ip.Address.IP.To4() != nil {
				out.IP = ip.Address.IP.String()
				break
			}
		}
	}
	return out, nil
}

// Del detaches: the plugins' DEL, in reverse order.
func Del(ctx context.Context, c Call) error {
	cfg, l, rc, err := c.prepare()
	if err != nil {
		return err
	}
	return cfg.DelNetworkList(ctx, l, rc)
}
