package realnode

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// CleanupStale removes what runs whose owner process is gone left behind
// (the owner was SIGKILLed or crashed): their pods are removed through a
// temporary containerd on the old state, then processes, mounts, the bridge
// and the state directory.
func CleanupStale() {
	entries, _ := os.ReadDir(BaseDir)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := unix.Kill(pid, 0); err != unix.ESRCH {
			continue // still running (or not ours to judge)
		}
		dir := filepath.Join(BaseDir, e.Name())
		klog.InfoS("realnode: cleaning up after a previous run", "dir", dir)
		killProcessesUsing(dir, false)
		if n, err := startContainerdOnly(dir); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := removeAllPods(ctx, n.sock); err != nil {
				klog.InfoS("realnode: removing stale pods", "err", err)
			}
			cancel()
			stopProcess(n.containerd, 10*time.Second)
		}
		bridge, _ := os.ReadFile(filepath.Join(dir, "bridge"))
		teardown(dir, strings.TrimSpace(string(bridge)))
	}
}

// teardown removes everything that can remain of a run once its pods are gone
// (or could not be removed): processes (kubelet, containerd, shims and their
// containers), mounts under dir, the kubernetes Service rules, the bridge and
// dir itself.
func teardown(dir, bridge string) {
	killProcessesUsing(dir, true)
	unmountUnder(dir)
	removeService(bridge)
	if bridge != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := os.Stat("/sys/class/net/" + bridge); err == nil {
			if err := run(ctx, "ip", "link", "del", bridge); err != nil {
				klog.InfoS("realnode: deleting bridge", "err", err)
			}
		}
		cancel()
	}
	if err := os.RemoveAll(dir); err != nil {
		klog.InfoS("realnode: removing state dir", "dir", dir, "err", err)
	}
}

// killProcessesUsing SIGKILLs every process whose command line mentions dir
// (kubelet, containerd and, with shims, the runc shims with every process
// below them: the containers).
func killProcessesUsing(dir string, shims bool) {
	parent := map[int]int{}
	var targets []int
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", p.Name(), "stat")); err == nil {
			s := string(stat)
			if i := strings.LastIndexByte(s, ')'); i >= 0 {
				if f := strings.Fields(s[i+1:]); len(f) > 1 {
					parent[pid], _ = strconv.Atoi(f[1])
				}
			}
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil {
			continue
		}
		c := string(cmdline)
		if !strings.Contains(c, dir+"/") && !strings.Contains(c, dir+"\x00") {
			continue
		}
		if strings.Contains(c, "containerd-shim") && !shims {
			continue
		}
		targets = append(targets, pid)
	}
	// Descendants first, so no container process is orphaned and survives.
	kill := map[int]bool{}
	for _, t := range targets {
		kill[t] = true
	}
	for changed := true; changed; {
		changed = false
		for pid, pp := range parent {
			if kill[pp] && !kill[pid] {
				kill[pid] = true
				changed = true
			}
		}
	}
	for pid := range kill {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// unmountUnder detaches every mount at or below dir, deepest first.
func unmountUnder(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mounts = append(mounts, mp)
		}
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			klog.InfoS("realnode: unmount", "path", m, "err", err)
		}
	}
}

// unescapeMount decodes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
