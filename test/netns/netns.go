// Package netns makes a network namespace joined to the host by a veth
// pair, for test backends: the API server refuses loopback addresses in
// EndpointSlices, and tests must not use the machine's own address. The
// namespace's address is reachable from the host and from nowhere else.
package netns

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// prefix starts the names of the namespaces this package makes; the rest
// is the owning process's id, so that leftovers of dead processes can be
// found and removed.
const prefix = "sluice-"

// Namespace is a network namespace with one veth pair to the host.
type Namespace struct {
	// Name of the namespace.
	Name string
	// HostIP is the host's end of the veth pair.
	HostIP string
	// IP is the namespace's end, where its processes listen.
	IP string
}

// Create makes a namespace for this process. Its /30 network is chosen by
// the process id among 10.77.0.0/16, so that test packages running at once
// do not collide. Call Close when done, on failure too.
func Create() (*Namespace, error) {
	removeStale()
	pid := os.Getpid()
	block := pid % 16384
	ns := &Namespace{
		Name:   prefix + strconv.Itoa(pid),
		HostIP: fmt.Sprintf("10.77.%d.%d", block/64, (block%64)*4+1),
		IP:     fmt.Sprintf("10.77.%d.%d", block/64, (block%64)*4+2),
	}
	host, peer := fmt.Sprintf("slh%d", pid), fmt.Sprintf("slp%d", pid)
	steps := [][]string{
		{"netns", "add", ns.Name},
		{"link", "add", host, "type", "veth", "peer", "name", peer},
		{"link", "set", peer, "netns", ns.Name},
		{"addr", "add", ns.HostIP + "/30", "dev", host},
		{"link", "set", host, "up"},
		{"-n", ns.Name, "addr", "add", ns.IP + "/30", "dev", peer},
		{"-n", ns.Name, "link", "set", peer, "up"},
		{"-n", ns.Name, "link", "set", "lo", "up"},
	}
	for _, args := range steps {
		if err := ip(args...); err != nil {
			return nil, errors.Join(err, ns.Close())
		}
	}
	return ns, nil
}

// Command returns a command that runs inside the namespace.
func (n *Namespace) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// Close removes the namespace and with it the veth pair.
func (n *Namespace) Close() error {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return fmt.Errorf("list network namespaces: %w", err)
	}
	if !bytes.Contains(out, []byte(n.Name)) {
		return nil // already gone
	}
	return ip("netns", "del", n.Name)
}

// removeStale deletes the namespaces of processes that are gone.
func removeStale() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		pid, err := strconv.Atoi(strings.TrimPrefix(name, prefix))
		if !strings.HasPrefix(name, prefix) || err != nil {
			continue
		}
		if syscall.Kill(pid, 0) == nil {
			continue
		}
		_ = ip("netns", "del", name)
	}
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
