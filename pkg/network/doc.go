// Package network attaches a person's container to a network through CNI
// (libcni driving the containernetworking-plugins binaries) and detaches it
// exactly: `bulwark run --net bridge|NAME|macvlan:IF|ipvlan:IF|
// dedicated:IF|cni:NAME -p ...` and `bulwark network ls|create|rm|inspect`.
//
// Threats it defends against:
//   - A container reconfiguring its network to impersonate another: the
//     network namespace is made here, by host root, so it belongs to the
//     host's user namespace. The container's root lives in a user namespace
//     of its own and holds no capability over it: it cannot change its
//     address, MAC or routes, nor open raw or packet sockets, whatever
//     capabilities its profile adds.
//   - One group of containers reaching another: traffic routed between two
//     bulwark bridges is dropped (the BULWARK-ISOLATION chain); only
//     traffic within one bridge passes.
//   - A container reaching services the host binds to 127.0.0.1: portmap
//     sets route_localnet on the bridge so that published ports answer on
//     the host's loopback, which would also let a neighbour route packets
//     to 127.0.0.0/8 through it (CVE-2020-8558); packets from a bulwark
//     bridge to 127.0.0.0/8 that are not replies or port-mapped are
//     dropped.
//   - Leaks: every host-side effect (netns, veth, IPAM lease, portmap and
//     masquerade rules, hosts entries) hangs from one record under /run,
//     written before the first change; the container owns it (State.Owns,
//     OwnedNetwork), its delete runs CNI DEL, and `bulwark gc` finds the
//     records of runs killed before their container existed.
//
// When not to use it: engines (Docker, Podman, containerd) bring their own
// networking and never come here; rootless runs cannot make bridges.
package network
