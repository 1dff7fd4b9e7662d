package podruntime

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Network namespaces without names: each is held by an open file of this
// process (created on a locked thread with unshare, then opened through
// /proc), so nothing is mounted under /run/netns and everything goes away
// with the process, even after SIGKILL: the kernel destroys a namespace once
// no file and no process refers to it, and its veth pairs with it.

// netns is one network namespace held open by this process.
type netns struct {
	f        *os.File
	cleanups []func() // run by Close, last first
}

// newNetns creates an empty network namespace (only a down loopback).
func newNetns() (*netns, error) {
	type result struct {
		f   *os.File
		err error
	}
	ch := make(chan result, 1)
	onThrowawayThread(func() {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("unshare(CLONE_NEWNET): %w", err)}
			return
		}
		f, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		ch <- result{f: f, err: err}
	})
	r := <-ch
	if r.err != nil {
		return nil, r.err
	}
	host, err := sameNetns(r.f, "/proc/self/ns/net")
	if err != nil || host {
		r.f.Close()
		return nil, fmt.Errorf("the new network namespace is the host's (%v)", err)
	}
	return &netns{f: r.f}, nil
}

// sameNetns reports whether f is the namespace at path.
func sameNetns(f *os.File, path string) (bool, error) {
	var a, b unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &a); err != nil {
		return false, err
	}
	if err := unix.Stat(path, &b); err != nil {
		return false, err
	}
	return a.Dev == b.Dev && a.Ino == b.Ino, nil
}

// path names the namespace for other processes (`ip ... netns PATH`).
func (n *netns) path() string { return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), n.f.Fd()) }

// fd is the descriptor for setns.
func (n *netns) fd() int { return int(n.f.Fd()) }

// onClose registers fn to run when the namespace is released (sockets in
// it and host routes towards it: they would keep it or its address alive).
func (n *netns) onClose(fn func()) { n.cleanups = append(n.cleanups, fn) }

// Close releases the namespace: the kernel destroys it (and its interfaces)
// once no process runs in it and no socket refers to it.
func (n *netns) Close() {
	if n == nil {
		return
	}
	for i := len(n.cleanups) - 1; i >= 0; i-- {
		n.cleanups[i]()
	}
	n.cleanups = nil
	if n.f != nil {
		n.f.Close()
	}
}

// ipBatch runs `ip -batch -` with the given commands inside the namespace
// (from a thread that entered it, so the child inherits it).
func (n *netns) ipBatch(ctx context.Context, cmds []string) error {
	errc := make(chan error, 1)
	onThrowawayThread(func() {
		if err := unix.Setns(n.fd(), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		cmd := exec.CommandContext(ctx, "ip", "-batch", "-")
		cmd.Stdin = strings.NewReader(strings.Join(cmds, "\n") + "\n")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			errc <- fmt.Errorf("ip -batch (%s): %v: %s", strings.Join(cmds, "; "), err, strings.TrimSpace(out.String()))
			return
		}
		errc <- nil
	})
	return <-errc
}

// onThrowawayThread runs fn on a goroutine locked to an OS thread that
// exits afterwards, so fn may change that thread's namespaces. Never the
// main thread: the runtime keeps it (wedged) instead of exiting it, and
// /proc/self shows its namespaces.
func onThrowawayThread(fn func()) {
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// Hold the main thread so that the retry lands elsewhere.
			done := make(chan struct{})
			onThrowawayThread(func() { fn(); close(done) })
			<-done
			runtime.UnlockOSThread()
			return
		}
		// No UnlockOSThread: the thread exits with this goroutine.
		fn()
	}()
}
