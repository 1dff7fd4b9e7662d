package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"aiconform.dev/testcluster/internal/pki"
	"aiconform.dev/testcluster/internal/realnode"
)

// RealNodeName is the name of the kubelet-backed node.
const RealNodeName = "real-0"

// realNodeStatusFile (in the data dir) holds the line printed on stdout:
// "REAL-NODE on <node> <ip>" or "REAL-NODE off: <reason>".
const realNodeStatusFile = "real-node"

// startRealNode starts the real node per o.RealNode ("auto", "on", "off").
// With "auto" a machine that cannot run it gets a one-line reason and the
// cluster starts without it; with "on" that is an error.
// The API server also serves on the node's bridge gateway (through api) so
// its pods reach it through the kubernetes Service at svcAddr.
func startRealNode(ctx context.Context, o *Options, certs *pki.Files, server, dataDir string, client kubernetes.Interface,
	api *multiListener, svcAddr string) (*realnode.Node, error) {
	report := func(line string) {
		line = "REAL-NODE " + strings.Join(strings.Fields(line), " ")
		_ = os.WriteFile(filepath.Join(dataDir, realNodeStatusFile), []byte(line+"\n"), 0o644)
		o.progress("%s", line)
	}
	mode := o.RealNode
	if mode == "" {
		mode = "off"
	}
	if mode == "off" {
		report("off: disabled (--real-node=off)")
		return nil, nil
	}
	binDir := o.RealNodeBinDir
	if binDir == "" {
		if exe, err := os.Executable(); err == nil {
			binDir = filepath.Dir(exe)
		}
	}
	logDir := filepath.Join(dataDir, "realnode")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	ropts := realnode.Options{
		Name:          RealNodeName,
		KubeletBin:    filepath.Join(binDir, "kubelet"),
		PauseArchive:  filepath.Join(binDir, "pause-image.tar"),
		ImageArchives: o.ImageArchives,
		Server:        server,
		CACert:        certs.CACert,
		CAKey:         certs.CAKey,
		LogDir:        logDir,
		Progress:      o.progress,
		ServiceAddr:   svcAddr,
		ServeAPI: func(ip string) (int, func(), error) {
			port, err := api.Listen(ip)
			return port, func() { api.Unlisten(ip) }, err
		},
	}
	if err := realnode.Check(ropts); err != nil {
		report("off: " + err.Error())
		if mode == "on" {
			return nil, fmt.Errorf("real node requested (--real-node=on) but this machine cannot run it: %w", err)
		}
		return nil, nil
	}
	start := time.Now()
	n, err := realnode.Start(ctx, ropts)
	if err == nil {
		err = n.WaitReady(ctx, client)
		if err != nil {
			n.Stop()
			n = nil
		}
	}
	if err != nil {
		report("off: failed to start: " + err.Error())
		if mode == "on" {
			return nil, fmt.Errorf("real node: %w", err)
		}
		return nil, nil
	}
	o.progress("real node %s Ready (kubelet + containerd) in %.1fs", n.Name(), time.Since(start).Seconds())
	report(fmt.Sprintf("on %s %s", n.Name(), n.NodeIP()))
	return n, nil
}
