package realnode

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// nodeClientCert signs a client certificate for the kubelet's node identity
// (CN=system:node:<name>, O=system:nodes) with the cluster CA.
func nodeClientCert(caCertFile, caKeyFile, name string) (certPEM, keyPEM []byte, err error) {
	caPEM, err := os.ReadFile(caCertFile)
	if err != nil {
		return nil, nil, err
	}
	caKeyPEM, err := os.ReadFile(caKeyFile)
	if err != nil {
		return nil, nil, err
	}
	cb, _ := pem.Decode(caPEM)
	kb, _ := pem.Decode(caKeyPEM)
	if cb == nil || kb == nil {
		return nil, nil, fmt.Errorf("cannot decode the cluster CA")
	}
	ca, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	caKey, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		if k, err2 := x509.ParseECPrivateKey(kb.Bytes); err2 == nil {
			caKey = k
		} else {
			return nil, nil, fmt.Errorf("cluster CA key: %v", err)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "system:node:" + name, Organization: []string{"system:nodes"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}

func (n *Node) kubeconfig(certPEM, keyPEM []byte) (string, error) {
	ca, err := os.ReadFile(n.o.CACert)
	if err != nil {
		return "", err
	}
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: aiconform-testcluster
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: kubelet
  context: {cluster: aiconform-testcluster, user: %s}
current-context: kubelet
`, n.o.Server, b64(ca), n.o.Name, b64(certPEM), b64(keyPEM), n.o.Name), nil
}

func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// kubeletConfig is the KubeletConfiguration: no QoS cgroups or node
// allocatable enforcement (the host's cgroups are not the kubelet's to
// manage), webhook authn/z with the cluster CA (the API server presents its
// kubelet client certificate), no image GC (images are imported, never
// pulled), eviction only in emergencies, and a NoSchedule taint so only pods
// that ask for the real node land on it.
func (n *Node) kubeletConfig(port, healthz int) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %q
port: %d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %d
containerRuntimeEndpoint: %q
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %q}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "50Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
maxPods: 30
serializeImagePulls: false
resolvConf: /etc/resolv.conf
rotateCertificates: false
serverTLSBootstrap: false
makeIPTablesUtilChains: false
registerWithTaints:
- {key: %q, value: "true", effect: NoSchedule}
`, n.nodeIP, port, healthz, "unix://"+n.sock, n.o.CACert, TaintKey)
}

func (n *Node) startKubelet() error {
	certPEM, keyPEM, err := nodeClientCert(n.o.CACert, n.o.CAKey, n.o.Name)
	if err != nil {
		return fmt.Errorf("node certificate: %w", err)
	}
	kc, err := n.kubeconfig(certPEM, keyPEM)
	if err != nil {
		return err
	}
	kcPath := filepath.Join(n.dir, "kubelet.kubeconfig")
	if err := writeFile(kcPath, kc); err != nil {
		return err
	}
	port, err := freePort(n.nodeIP)
	if err != nil {
		return err
	}
	healthz, err := freePort("127.0.0.1")
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(n.dir, "kubelet.yaml")
	if err := writeFile(cfgPath, n.kubeletConfig(port, healthz)); err != nil {
		return err
	}
	args := []string{
		"--config=" + cfgPath,
		"--kubeconfig=" + kcPath,
		"--root-dir=" + filepath.Join(n.dir, "kubelet"),
		"--cert-dir=" + filepath.Join(n.dir, "kubelet/pki"),
		"--hostname-override=" + n.o.Name,
		"--node-ip=" + n.nodeIP,
		"--node-labels=" + LabelRealNode + "=true",
		"--v=" + strconv.Itoa(1),
	}
	cmd, err := n.startProcess(n.o.KubeletBin, args, "kubelet.log")
	if err != nil {
		return err
	}
	n.kubelet = cmd
	return nil
}
