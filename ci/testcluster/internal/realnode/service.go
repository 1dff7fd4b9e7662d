package realnode

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"k8s.io/klog/v2"
)

// The kubernetes Service for the real node's pods. kube-apiserver listens on
// loopback; pods reach it as in a real cluster, through the ClusterIP of the
// kubernetes Service that the kubelet puts in their environment
// (KUBERNETES_SERVICE_HOST/PORT): a DNAT rule, the one kube-proxy would write
// for that Service, sends it to the API server serving on the node's bridge
// gateway. The rule lives in a chain of its own, entered only from the node's
// bridge, so several test clusters on one machine (all with the same service
// CIDR) do not see each other's pods; kube-proxy itself is not used because
// its chains (KUBE-SERVICES, ...) are global to the machine and would be
// rewritten by every cluster's kube-proxy.

// serviceChain is the nat chain of a node's bridge (at most 28 characters).
func serviceChain(bridge string) string { return "AICONFORM-" + strings.ToUpper(bridge) }

const serviceComment = "aiconform-testcluster real node: kubernetes Service"

func iptables(ctx context.Context, args ...string) error {
	return run(ctx, "iptables", append([]string{"-w", "5", "-t", "nat"}, args...)...)
}

// setupService serves the API server on the bridge gateway and maps the
// kubernetes Service (o.ServiceAddr) to it for traffic from the bridge.
func (n *Node) setupService(ctx context.Context) error {
	if n.o.ServiceAddr == "" || n.o.ServeAPI == nil {
		return nil
	}
	host, port, err := net.SplitHostPort(n.o.ServiceAddr)
	if err != nil {
		return fmt.Errorf("kubernetes Service address %q: %w", n.o.ServiceAddr, err)
	}
	apiPort, stop, err := n.o.ServeAPI(n.nodeIP)
	if err != nil {
		return fmt.Errorf("serving the API server on %s: %w", n.nodeIP, err)
	}
	n.stopServing = stop
	// Teardown finds the chain from the bridge name, even if a step below fails.
	chain := serviceChain(n.bridge)
	dest := net.JoinHostPort(n.nodeIP, strconv.Itoa(apiPort))
	steps := [][]string{
		{"-N", chain},
		{"-A", chain, "-d", host + "/32", "-p", "tcp", "--dport", port,
			"-m", "comment", "--comment", serviceComment, "-j", "DNAT", "--to-destination", dest},
		{"-I", "PREROUTING", "-i", n.bridge, "-m", "comment", "--comment", serviceComment, "-j", chain},
	}
	for _, s := range steps {
		if err := iptables(ctx, s...); err != nil {
			return err
		}
	}
	n.progress("real node pods reach the API server: %s -> %s (iptables nat chain %s)", n.o.ServiceAddr, dest, chain)
	return nil
}

// removeService deletes the node's chain and every jump to it.
func removeService(bridge string) {
	if bridge == "" {
		return
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		return
	}
	chain := serviceChain(bridge)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if iptables(ctx, "-S", chain) != nil {
		return // no such chain
	}
	for i := 0; i < 16; i++ {
		if iptables(ctx, "-D", "PREROUTING", "-i", bridge, "-m", "comment", "--comment", serviceComment, "-j", chain) != nil {
			break
		}
	}
	if err := iptables(ctx, "-F", chain); err != nil {
		klog.InfoS("realnode: flushing iptables chain", "chain", chain, "err", err)
	}
	if err := iptables(ctx, "-X", chain); err != nil {
		klog.InfoS("realnode: deleting iptables chain", "chain", chain, "err", err)
	}
}
