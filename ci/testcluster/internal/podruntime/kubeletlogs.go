package podruntime

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/klog/v2"
)

// The kubelet's container-log endpoint for the runtime's pods, so that the
// API server's pods/log subresource (kubectl logs) works for simulated
// nodes: GET /containerLogs/{namespace}/{pod}/{container} answers the
// container's stdout and stderr (tailLines and limitBytes honoured; follow
// answers what is there and ends). One TLS listener serves every simulated
// node: it listens on all addresses of an ephemeral port, which every node
// reports as its kubelet port (node addresses are in 127.0.0.0/8), and it
// only answers clients with a certificate of the cluster CA (the API server's
// kubelet client certificate).

// ServeContainerLogs starts the endpoint with the serving certificate and
// key files, verifying clients against the PEM CA; it stops when done is
// closed. The port is what nodes report (the simulator's SetKubeletPort).
func (rt *Runtime) ServeContainerLogs(done <-chan struct{}, certFile, keyFile string, clientCA []byte) (int32, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return 0, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(clientCA) {
		return 0, errors.New("container logs: no CA certificate")
	}
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		return 0, fmt.Errorf("container logs: %w", err)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(rt.containerLogs),
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12},
	}
	go func() {
		if err := srv.ServeTLS(ln, "", ""); err != nil && err != http.ErrServerClosed {
			klog.ErrorS(err, "container log endpoint")
		}
	}()
	go func() {
		<-done
		_ = srv.Close()
	}()
	return int32(ln.Addr().(*net.TCPAddr).Port), nil
}

// logPath is the file of a running pod's container, or why there is none.
func (rt *Runtime) logPath(ns, pod, container string) (string, error) {
	pr := rt.get(ns + "/" + pod)
	if pr == nil {
		return "", fmt.Errorf("pod %s/%s is not running on this node", ns, pod)
	}
	pr.mu.Lock()
	_, ok := pr.ctrs[container]
	pr.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("pod %s/%s has no container %q", ns, pod, container)
	}
	return filepath.Join(pr.dir, container+".log"), nil
}

func (rt *Runtime) containerLogs(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/containerLogs/"), "/")
	if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/containerLogs/") || len(parts) != 3 {
		http.NotFound(w, r)
		return
	}
	path, err := rt.logPath(parts[0], parts[1], parts[2])
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	q := r.URL.Query()
	if n, err := strconv.Atoi(q.Get("tailLines")); err == nil && n >= 0 {
		data = tailLines(data, n)
	}
	if n, err := strconv.Atoi(q.Get("limitBytes")); err == nil && n >= 0 && n < len(data) {
		data = data[:n]
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.Copy(w, bytes.NewReader(data))
}

// tailLines keeps the last n lines of data.
func tailLines(data []byte, n int) []byte {
	if n == 0 {
		return nil
	}
	var starts []int
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), len(data)+1)
	off := 0
	for sc.Scan() {
		starts = append(starts, off)
		off += len(sc.Bytes()) + 1
	}
	if n >= len(starts) {
		return data
	}
	return data[starts[len(starts)-n]:]
}
