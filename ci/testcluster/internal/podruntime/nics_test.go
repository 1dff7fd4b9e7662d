package podruntime

import (
	"context"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	resourcev1 "k8s.io/api/resource/v1"
)

func TestClaimNICsAndNetnsCommands(t *testing.T) {
	claim := &resourcev1.ResourceClaim{Status: resourcev1.ResourceClaimStatus{Allocation: &resourcev1.AllocationResult{
		Devices: resourcev1.DeviceAllocationResult{Results: []resourcev1.DeviceRequestAllocationResult{
			{Request: "nic", Driver: NICDriverName, Pool: "gpu-0", Device: "ens2f0np0"},
			{Request: "gpu", Driver: "gpu.nvidia.com", Pool: "gpu-0", Device: "gpu-0"},
			{Request: "other", Driver: NICDriverName, Pool: "gpu-2", Device: "ens1f0np0"},
		}},
	}}}
	got := claimNICs(claim, "gpu-0", 0)
	if len(got) != 1 || got[0].IfName != "ens2f0np0" || got[0].IP != "100.64.0.2" {
		t.Fatalf("claim NICs %+v", got)
	}
	pod, fabric := podNetnsCommands("/proc/1/fd/7", 3, "198.18.2.5", got)
	want := []string{
		"link set lo up",
		"link add eth0 type veth peer name p3 netns /proc/1/fd/7",
		"addr add 198.18.2.5/15 dev eth0",
		"link set eth0 up",
		"link add name ens2f0np0 address 02:64:00:00:01:01 type veth peer name f3-0 netns /proc/1/fd/7",
		"addr add 100.64.0.2/16 dev ens2f0np0",
		"link set ens2f0np0 up",
	}
	if strings.Join(pod, "\n") != strings.Join(want, "\n") {
		t.Errorf("pod commands:\n%s", strings.Join(pod, "\n"))
	}
	if strings.Join(fabric, ";") != "link set dev p3 master pods up;link set dev f3-0 master fabric up" {
		t.Errorf("fabric commands %v", fabric)
	}
	// Without NICs (the fault) and with a loopback pod address: only eth0, a host address.
	pod, fabric = podNetnsCommands("/f", 1, "127.17.0.2", nil)
	if len(pod) != 4 || pod[2] != "addr add 127.17.0.2/32 dev eth0" || len(fabric) != 1 {
		t.Errorf("commands %v %v", pod, fabric)
	}
}

// TestPodNetnsHasItsNIC builds the fabric and one pod namespace for
// real (root only) and checks the pod sees its NIC with its address.
func TestPodNetnsHasItsNIC(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	ctx := context.Background()
	fabric, err := newNetns()
	if err != nil {
		t.Fatal(err)
	}
	defer fabric.Close()
	if err := fabric.ipBatch(ctx, []string{"link add fabric type bridge", "link set fabric up", "link add pods type bridge", "link set pods up"}); err != nil {
		t.Fatal(err)
	}
	pod, err := newNetns()
	if err != nil {
		t.Fatal(err)
	}
	defer pod.Close()
	podCmds, fabricCmds := podNetnsCommands(fabric.path(), 1, "198.18.0.9", NICDevices(0)[:1])
	if err := pod.ipBatch(ctx, podCmds); err != nil {
		t.Fatal(err)
	}
	if err := fabric.ipBatch(ctx, fabricCmds); err != nil {
		t.Fatal(err)
	}
	// The pod's /proc/net/dev lists its own interfaces only.
	dev := readInNetns(t, pod, "/proc/thread-self/net/dev")
	for _, want := range []string{"lo:", "eth0:", "ens1f0np0:"} {
		if !strings.Contains(dev, want) {
			t.Errorf("pod /proc/net/dev lacks %s:\n%s", want, dev)
		}
	}
	if strings.Contains(dev, "p1:") || strings.Contains(dev, "fabric:") {
		t.Errorf("pod sees fabric interfaces:\n%s", dev)
	}
	if host, _ := os.ReadFile("/proc/self/net/dev"); strings.Contains(string(host), "ens1f0np0:") {
		t.Errorf("the host sees the pod's NIC")
	}
}

func readInNetns(t *testing.T, ns *netns, path string) string {
	t.Helper()
	out := make(chan string, 1)
	onThrowawayThread(func() {
		if err := unix.Setns(ns.fd(), unix.CLONE_NEWNET); err != nil {
			t.Error(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Error(err)
		}
		out <- string(b)
	})
	return <-out
}

// TestNICsCarryPodToPodTraffic connects two pod namespaces through the
// fabric (root only): data sent to the other pod's NIC address leaves on the
// sender's NIC, not on its eth0.
func TestNICsCarryPodToPodTraffic(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	ctx := context.Background()
	fabric, err := newNetns()
	if err != nil {
		t.Fatal(err)
	}
	defer fabric.Close()
	if err := fabric.ipBatch(ctx, []string{"link add fabric type bridge", "link set fabric up", "link add pods type bridge", "link set pods up"}); err != nil {
		t.Fatal(err)
	}
	nics := NICDevices(0)
	var pods []*netns
	for i, ip := range []string{"198.18.0.9", "198.18.0.10"} {
		ns, err := newNetns()
		if err != nil {
			t.Fatal(err)
		}
		defer ns.Close()
		podCmds, fabricCmds := podNetnsCommands(fabric.path(), i+1, ip, nics[i:i+1])
		if err := ns.ipBatch(ctx, podCmds); err != nil {
			t.Fatal(err)
		}
		if err := fabric.ipBatch(ctx, fabricCmds); err != nil {
			t.Fatal(err)
		}
		pods = append(pods, ns)
	}
	// Sockets belong to the namespace of the thread that creates them.
	lc := make(chan net.Listener, 1)
	onThrowawayThread(func() {
		if err := unix.Setns(pods[1].fd(), unix.CLONE_NEWNET); err != nil {
			t.Error(err)
		}
		l, err := net.Listen("tcp", nics[1].IP+":5201")
		if err != nil {
			t.Error(err)
		}
		lc <- l
	})
	l := <-lc
	if l == nil {
		t.FailNow()
	}
	defer l.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- -1
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		got <- n
	}()
	const size = 4 << 20
	before := readInNetns(t, pods[0], "/proc/thread-self/net/dev")
	sent := make(chan error, 1)
	onThrowawayThread(func() {
		if err := unix.Setns(pods[0].fd(), unix.CLONE_NEWNET); err != nil {
			sent <- err
			return
		}
		c, err := net.DialTimeout("tcp", nics[1].IP+":5201", 10*time.Second)
		if err != nil {
			sent <- err
			return
		}
		_, err = c.Write(make([]byte, size))
		c.Close()
		sent <- err
	})
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if n := <-got; n != size {
		t.Fatalf("received %d of %d bytes", n, size)
	}
	after := readInNetns(t, pods[0], "/proc/thread-self/net/dev")
	tx := func(dev, name string) int64 {
		for _, line := range strings.Split(dev, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == name {
				f := strings.Fields(v)
				n, _ := strconv.ParseInt(f[8], 10, 64)
				return n
			}
		}
		return -1
	}
	if d := tx(after, nics[0].IfName) - tx(before, nics[0].IfName); d < size {
		t.Errorf("%s sent %d bytes, want >= %d", nics[0].IfName, d, size)
	}
	if d := tx(after, "eth0") - tx(before, "eth0"); d >= size/2 {
		t.Errorf("eth0 sent %d bytes", d)
	}
}
