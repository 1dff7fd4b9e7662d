// Command pause is the pod sandbox's init process for the test cluster's real
// node: it holds the pod's namespaces, reaps orphaned children and exits on
// SIGTERM or SIGINT. It is built statically and shipped in an image tagged as
// the runtime's sandbox image (see internal/realnode).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		os.Stdout.WriteString("pause (aiconform testcluster)\n")
		return
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		// Reap every exited child (the sandbox is PID 1 of the pod's PID namespace
		// when the pod shares it).
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
